"""The `video-worker` command against a real database, run as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

from tests.handlers import scripted
from tests.queue.helpers import running
from tests.queue.procs import ROOT


def cli(
    db_url: str, *args: str, check: bool = True, **settings: str
) -> subprocess.CompletedProcess[str]:
    """`python -m worker ARGS` with DATABASE_URL and any other settings given as keywords."""
    env = {**os.environ, "DATABASE_URL": db_url, "LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)}
    env.pop("S3_BUCKET", None)
    env.update(settings)
    proc = subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_migrate_reports_up_to_date_on_a_migrated_database(db_url):
    assert cli(db_url, "migrate").stdout.strip() == "up to date"


def test_enqueue_builds_the_payload_from_clip_urls(db_url):
    out = cli(
        db_url,
        "enqueue",
        "https://cdn.example.com/a.mp4",
        "https://cdn.example.com/b.mp4",
        "--audio",
        "https://cdn.example.com/m.mp3",
        "--volume",
        "0.3",
        "--duck",
        "--width",
        "1080",
        "--height",
        "1920",
        "--priority",
        "5",
        "--idempotency-key",
        "k1",
    ).stdout
    assert out.startswith("enqueued ")
    job_id = out.split()[1]
    row = json.loads(cli(db_url, "status", job_id, "--json").stdout)
    assert row["payload"] == {
        "clips": [
            {"url": "https://cdn.example.com/a.mp4"},
            {"url": "https://cdn.example.com/b.mp4"},
        ],
        "audio": {"url": "https://cdn.example.com/m.mp3", "duck": True, "volume": 0.3},
        "output": {"width": 1080, "height": 1920},
    }
    assert row["priority"] == 5 and row["status"] == "pending"
    again = cli(db_url, "enqueue", "https://cdn.example.com/a.mp4", "--idempotency-key", "k1")
    assert again.stdout.strip() == f"already enqueued {job_id}"
    assert cli(db_url, "status").stdout.strip().startswith("pending 1 ")


def test_status_of_an_unknown_job_fails_clearly(db_url):
    proc = cli(db_url, "status", str(uuid.uuid4()), check=False)
    assert proc.returncode == 1 and "no job" in proc.stderr


def test_enqueue_without_clips_is_a_usage_error(db_url):
    proc = cli(db_url, "enqueue", check=False)
    assert proc.returncode == 2 and "clip" in proc.stderr


def test_cancel_then_cleanup(db_url):
    job_id = cli(db_url, "enqueue", "https://x.example/a.mp4").stdout.split()[1]
    assert "cancellation requested" in cli(db_url, "cancel", job_id).stdout
    assert cli(db_url, "cancel", str(uuid.uuid4()), check=False).returncode == 1
    assert cli(db_url, "cleanup", "--days", "1").stdout.startswith("removed 0 finished job(s)")


async def test_enqueue_wait_follows_the_job_to_the_end(store, db_url):
    import asyncio

    payload = json.dumps(
        {"script": [{"progress": 50, "stage": "processing", "message": "half"}, {"sleep": 0.6}]}
    )
    async with running(store, scripted):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker",
            "enqueue",
            "--payload",
            payload,
            "--no-check",  # a scripted handler's payload, not a video payload
            "--wait",
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    assert "50%  processing: half" in text  # plain lines when not a terminal
    assert "no worker seems to be running" not in text  # one was running
    assert ": completed (attempt 1 of 3, progress 100%)" in text
    assert "video_url: file:///out/" in text


def test_bad_settings_are_reported_not_raised(db_url):
    proc = cli(db_url, "status", check=False, WORKER_CONCURRENCY="many")
    assert proc.returncode == 2
    assert "WORKER_CONCURRENCY must be a whole number" in proc.stderr


def test_event_loop_is_a_setting(db_url):
    """uvloop by default (it is a dependency); EVENT_LOOP=asyncio runs on asyncio's own loop,
    and a value that is neither is refused by name."""
    from worker.cli.parser import run_coroutine

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_coroutine(which(), "auto") == run_coroutine(which(), "uvloop") == "uvloop"
    assert run_coroutine(which(), "asyncio").startswith("asyncio.")
    assert cli(db_url, "migrate", EVENT_LOOP="asyncio").stdout.strip() == "up to date"
    proc = cli(db_url, "status", check=False, EVENT_LOOP="trio")
    assert proc.returncode == 2 and "EVENT_LOOP must be auto, uvloop or asyncio" in proc.stderr


def test_run_refuses_incomplete_storage_settings_at_start(db_url):
    proc = cli(db_url, "run", check=False, STORAGE_BACKEND="s3", PORT="0")
    assert proc.returncode == 2
    assert "S3_BUCKET is not set" in proc.stderr


def test_help_lists_every_environment_variable_the_configuration_page_documents():
    import re

    from worker.cli.parser import build_parser

    text = build_parser().format_help()
    table = (ROOT / "docs" / "configuration.md").read_text()
    names = {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    }
    assert {"DATABASE_URL", "VIDEO_WORKER_HOME", "ALLOW_EMBEDDED_DATABASE"} <= names
    assert "environment variables" in text
    assert sorted(n for n in names if n not in text) == []


async def test_status_json_gives_every_timestamp_in_one_format(store, db_url):
    import re

    job_id, _ = await store.enqueue({"clips": [{"url": "https://x.example/a.mp4"}]})
    async with store.pool.connection() as conn:
        await conn.execute("set time zone 'Asia/Kolkata'")
        await conn.execute(
            "update video_jobs set status = 'failed', completed_at = now(), errors ="
            " jsonb_build_array(jsonb_build_object('attempt', 1, 'at', now(), 'error', 'x'),"
            " jsonb_build_object('attempt', 2, 'at', '2026-01-01T12:00:00+02:00', 'error', 'y'))"
            " where id = %s",
            (job_id,),
        )
        await conn.execute("reset time zone")
    row = json.loads(cli(db_url, "status", str(job_id), "--json").stdout)
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    stamps = {k: row[k] for k in ("created_at", "run_at", "updated_at", "completed_at")}
    stamps.update({f"errors[{n}].at": e["at"] for n, e in enumerate(row["errors"])})
    assert all(iso.match(v) for v in stamps.values()), stamps
    assert row["errors"][1]["at"] == "2026-01-01T10:00:00.000Z"
    assert row["heartbeat_at"] is None and "lease_token" not in row


def test_every_command_says_what_it_does_in_its_help():
    """`video-worker COMMAND --help` opens with a description of the command (they had none)."""
    from worker.cli.parser import DESCRIPTIONS, build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == set(DESCRIPTIONS)
    for name, command in commands.items():
        text = command.format_help()
        assert DESCRIPTIONS[name].split(",")[0] in " ".join(text.split()), name
