"""Operator mistakes get one or two clear lines, a non-zero exit, and no traceback.

Each command runs as a real process with a deadline (subprocess timeout): before these
checks, a missing database hung for 30 s in the pool and then printed a 42-line traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.pg import Databases, url_for_uri
from tests.queue.procs import ROOT

DEADLINE = 20  # seconds: far above the ~5 s these take, far below the old 30 s hang


def cli(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), "LOG_FORMAT": "json"}
    full.pop("S3_BUCKET", None)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        stdin=subprocess.DEVNULL,
    )


def problem_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr's lines, without the line that names the database in use."""
    return [
        line
        for line in proc.stderr.splitlines()
        if line.strip() and not line.startswith("video-worker: database:")
    ]


def assert_one_clear_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = problem_lines(proc)
    text = "\n".join(lines)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(lines) <= 2, proc.stderr
    for needle in needles:
        assert needle in text, text
    return text


@pytest.fixture
def empty_db(databases: Databases) -> Iterator[str]:
    """A database that exists but was never migrated."""
    name = f"vw_empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(databases.admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield url_for_uri(databases.admin_url, name)
    finally:
        with psycopg.connect(databases.admin_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.mark.parametrize("command", [["status"], ["run", "--no-migrate"]])
def test_a_database_that_does_not_exist_is_named(db_url, command):
    missing = f"vw_missing_{uuid.uuid4().hex[:8]}"
    url = make_conninfo(db_url, dbname=missing)
    proc = cli(url, *command, PORT="0")
    text = assert_one_clear_line(proc, f"the database '{missing}' does not exist")
    assert "DATABASE_URL" in text and "fix the name after the last /" in text
    password = conninfo_to_dict(db_url).get("password")
    assert not password or password not in proc.stderr + proc.stdout


def closed_port() -> int:
    """A loopback port this test bound and released: nothing listens there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_is_named_with_its_password_masked():
    port = closed_port()
    url = f"postgresql://app:hunter2-secret@127.0.0.1:{port}/app"
    proc = cli(url, "status")
    text = assert_one_clear_line(proc, f"nothing is listening on 127.0.0.1:{port}")
    assert f"app@127.0.0.1:{port}/app" in text
    assert "hunter2-secret" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("command", [["status"], ["run"]])
def test_a_url_that_is_not_a_connection_string_says_what_one_looks_like(command):
    proc = cli("garbage", *command, PORT="0")
    assert_one_clear_line(
        proc, "DATABASE_URL is not a Postgres connection string", "postgresql://USER:PASSWORD@"
    )
    assert proc.returncode == 2


@pytest.mark.parametrize("command", [["status"], ["cancel", str(uuid.uuid4())], ["cleanup"]])
def test_a_database_never_migrated_says_run_migrate(empty_db, command):
    proc = cli(empty_db, *command)
    assert_one_clear_line(proc, "no video_jobs table", "run `video-worker migrate`")


def test_run_with_no_migrate_on_a_fresh_database_says_run_migrate(empty_db):
    proc = cli(empty_db, "run", "--no-migrate", PORT="0")
    assert_one_clear_line(proc, "run `video-worker migrate`")


def test_a_reader_that_leaves_early_is_not_an_error_trace(db_url):
    """`status … | head -1`: the pipe closes before the command writes."""
    env = {**os.environ, "DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "status", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(DEADLINE) == 141
    assert "BrokenPipeError" not in err and "Traceback" not in err, err


async def test_cancel_tells_an_unknown_job_from_a_finished_one(store, db_url):
    unknown = uuid.uuid4()
    proc = cli(db_url, "cancel", str(unknown))
    assert_one_clear_line(proc, f"no job {unknown}: nothing to cancel")
    job_id, _ = await store.enqueue({"clips": [{"url": "https://x.example/a.mp4"}]})
    async with store.pool.connection() as conn:
        await conn.execute(
            "update video_jobs set status = 'completed', completed_at = now() where id = %s",
            (job_id,),
        )
    proc = cli(db_url, "cancel", str(job_id))
    assert_one_clear_line(proc, f"job {job_id} already ended completed; nothing to cancel")
    # every command names the database it uses, on stderr, password masked
    named = [
        line for line in proc.stderr.splitlines() if line.startswith("video-worker: database:")
    ]
    assert len(named) == 1 and f"/{conninfo_to_dict(db_url)['dbname']}" in named[0], proc.stderr


def test_run_on_a_port_another_program_holds_says_so_and_exits_at_once(db_url):
    """A second local worker on the default port once hung for good (the pool half-open,
    SIGTERM ignored); now the port is checked before anything else starts."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = cli(db_url, "run", PORT=str(port))
    assert proc.returncode == 2, proc.stderr
    assert_one_clear_line(proc, f"PORT {port} cannot be used", "set PORT to a free port")


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_outside_the_tcp_range_is_refused(db_url, port):
    proc = cli(db_url, "run", PORT=port)
    assert proc.returncode == 2, proc.stderr
    assert_one_clear_line(proc, "PORT must be at")


def test_under_log_format_json_a_refused_start_is_a_json_line(db_url):
    """A log pipeline reads every line as JSON: the reason a command stops must be one too."""
    import json

    proc = cli(db_url, "run", PORT="99999", LOG_FORMAT="json")
    assert proc.returncode == 2
    [line] = [line for line in proc.stderr.splitlines() if line.strip()]
    event = json.loads(line)
    assert event["event"] == "command_refused" and event["level"] == "error"
    assert event["error"] == "PORT must be at most 65535, got 99999" and event["exit"] == 2
    plain = cli(db_url, "run", PORT="99999", LOG_FORMAT="console")
    assert plain.stderr.strip() == "video-worker: PORT must be at most 65535, got 99999"
