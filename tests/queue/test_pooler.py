"""The worker behind a real transaction pooler: PgBouncer in `pool_mode = transaction`.

Design point 6 ("Survive poolers"): behind Supabase's transaction pooler every transaction may
run on another server connection, so prepared statements, session state and LISTEN break. These
tests start a PgBouncer of their own (own port, own config, a server pool smaller than the number
of clients, so server connections really are shared) in front of the test database and run the
worker through it. They skip when the `pgbouncer` binary is not installed (Debian: `apt-get
install pgbouncer`, which .ci/run does); the suite needs nothing but Python and pip otherwise.

What PgBouncer (1.18) does with LISTEN in transaction mode, as these tests show: LISTEN is
accepted and runs on whatever server connection the statement got, which goes straight back to
the pool. A connection that NOTIFYs itself right after usually gets that same server connection
back (the pool is quiet, idle servers are reused most recent first), so its own notification
arrives; a NOTIFY from any other client never reaches it (it goes to whichever client holds
that server connection at the time, or, on an idle one, PgBouncer drops it: "got packet 'A' from
server when not linked"). The worker must not depend on it, and does not: it polls. Its listener
probes from a second connection, so it sees that and reports `unavailable`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.queue.helpers import running, status_is, wait_for
from tests.queue.procs import Replica, runs
from worker.db.connection import CONNECT_KWARGS, connect, conninfo, make_pool
from worker.queue import listener as listener_module
from worker.queue.context import JobContext
from worker.queue.listener import CHANNEL, Listener, ListenerState
from worker.queue.models import Job, JobOutcome
from worker.queue.postgres import Beat, PostgresJobStore

SERVER_POOL_SIZE = 2  # server connections per database: fewer than the worker's clients
START_TIMEOUT = 15.0


def pgbouncer_binary() -> str | None:
    """Debian installs it in /usr/sbin, which is not on a non-root user's PATH."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"):
        candidate = Path(folder) / "pgbouncer"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as(server: dict[str, str]) -> list[str]:
    """PgBouncer refuses to run as root. As root, switch to the user that owns the server's
    socket folder (the embedded pgserver runs Postgres as its own user, in a 0700 folder), or to
    nobody for a TCP server; as anyone else, stay that user."""
    if os.geteuid() != 0:
        return []
    host = server.get("host", "")
    user = "nobody"
    if host.startswith("/"):
        owner = Path(host).stat().st_uid
        if owner != 0:
            user = pwd.getpwuid(owner).pw_name
    return ["-u", user]


@dataclass
class Pooler:
    url: str
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def pgbouncer_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    match = re.search(r"PgBouncer (\d+)\.(\d+)", out.stdout + out.stderr)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def _write_ini(tmp: Path, server: dict[str, str], port: int, version: tuple[int, ...]) -> Path:
    target = {
        "host": server.get("host") or "127.0.0.1",
        "port": server.get("port") or "5432",
        "dbname": server["dbname"],
        "user": server.get("user") or "postgres",
    }
    if server.get("password"):
        target["password"] = server["password"]
    ini = tmp / "pgbouncer.ini"
    ini.write_text(f"""\
[databases]
{server["dbname"]} = {" ".join(f"{k}={v}" for k, v in target.items())}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
; no unix socket: nothing shared with a system PgBouncer (port 6432, /tmp/.s.PGSQL.6432)
unix_socket_dir =
auth_type = any
pool_mode = transaction
; the default, spelled out: an idle server connection is reused most recently used first
server_round_robin = 0
max_client_conn = 100
default_pool_size = {SERVER_POOL_SIZE}
min_pool_size = 0
reserve_pool_size = 0
ignore_startup_parameters = extra_float_digits,options
; the log goes to stderr (captured below): after dropping root it could not write here
logfile =
pidfile =
""")
    if version >= (1, 21):
        # 1.21+ can carry protocol-level prepared statements across server connections; like
        # Supavisor's transaction mode (and PgBouncer before 1.21), this one must not.
        with ini.open("a") as f:
            f.write("max_prepared_statements = 0\n")
    return ini


def _accepts(url: str) -> bool:
    try:
        with psycopg.connect(
            url, autocommit=True, connect_timeout=2, prepare_threshold=None
        ) as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False


@pytest.fixture
def pooler(db_url: str, tmp_path: Path) -> Iterator[Pooler]:
    """A PgBouncer in transaction mode in front of this test's database."""
    binary = pgbouncer_binary()
    if binary is None:
        pytest.skip(
            "pgbouncer is not installed (Debian: apt-get install pgbouncer); "
            "the transaction-pooler tests need a real PgBouncer"
        )
    version = pgbouncer_version(binary)
    server = conninfo_to_dict(db_url)
    log_path = tmp_path / "pgbouncer.log"
    for _ in range(3):  # the free port may be taken between probing and binding it
        port = _free_port()
        ini = _write_ini(tmp_path, server, port, version)
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [binary, *_run_as(server), str(ini)], stdout=log, stderr=subprocess.STDOUT
            )
        pooled = Pooler(
            f"postgresql://{server.get('user') or 'postgres'}@127.0.0.1:{port}/{server['dbname']}",
            log_path,
            proc,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            if _accepts(pooled.url):
                break
            time.sleep(0.05)
        else:
            _stop(proc)
            if time.monotonic() < deadline:
                continue  # exited early: most likely the port; try another
            raise AssertionError(f"pgbouncer did not accept connections:\n{pooled.log()[-3000:]}")
        try:
            yield pooled
        finally:
            _stop(proc)
        return
    raise AssertionError(f"pgbouncer did not start:\n{log_path.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class CountingStore(PostgresJobStore):
    """The job store, counting the heartbeat and progress writes that went through."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.beats: list[Beat] = []
        self.progress_writes: list[bool] = []

    async def heartbeat(self, jobs: Any) -> Beat:
        beat = await super().heartbeat(jobs)
        self.beats.append(beat)
        return beat

    async def progress(
        self, job: Job, progress: int, stage: str | None, message: str | None
    ) -> bool:
        ok = await super().progress(job, progress, stage, message)
        self.progress_writes.append(ok)
        return ok


@pytest.fixture
async def store_via_pooler(pooler: Pooler) -> AsyncIterator[CountingStore]:
    pool = make_pool(pooler.url, max_size=8)
    await pool.open(wait=True)
    try:
        yield CountingStore(pool)
    finally:
        await pool.close()


async def _server_connections(db_url: str, stop: asyncio.Event) -> tuple[int, list[tuple]]:
    """The most client backends of this database seen at once (our own sampling one not
    counted), and what they were at that moment. Client backends only: an autovacuum worker
    on the table the test churns (video_jobs vacuums at 2% dead rows) is no connection of the
    pooler's, and once made this test fail with 3 of 2."""
    most, seen = 0, []
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        while not stop.is_set():
            cur = await conn.execute(
                "select backend_type, application_name, client_port from pg_stat_activity"
                " where datname = current_database() and pid <> pg_backend_pid()"
                " and backend_type = 'client backend'"
            )
            rows = await cur.fetchall()
            if len(rows) > most:
                most, seen = len(rows), rows
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
    return most, seen


# ---- LISTEN -----------------------------------------------------------------------------------


async def test_listen_behind_the_pooler_hears_only_itself(pooler):
    """What PgBouncer really does: LISTEN is accepted, a connection's NOTIFY to itself comes
    back (same idle server connection), a NOTIFY from another client never arrives."""
    listening = await connect(pooler.url)
    other = await connect(pooler.url)
    try:
        await listening.execute(f"listen {CHANNEL}")
        await listening.execute("select pg_notify(%s, 'self')", (CHANNEL,))
        heard = [n.payload async for n in listening.notifies(timeout=2.0, stop_after=1)]
        assert heard == ["self"]

        await other.execute("select pg_notify(%s, 'from-another-client')", (CHANNEL,))
        heard = [n.payload async for n in listening.notifies(timeout=1.0)]
        assert heard == [], "a NOTIFY from another client arrived through the pooler"
    finally:
        await listening.close()
        await other.close()


async def test_the_listener_gets_no_wakeups_through_the_pooler(
    pooler, store_via_pooler, monkeypatch
):
    """Whatever state it reports, an enqueue never wakes the listener behind the pooler: the
    runner must (and does, see below) find the job by polling."""
    monkeypatch.setattr(listener_module, "PROBE_TIMEOUT", 0.5)
    wakeups: list[str] = []
    listener = Listener(
        pooler.url, on_pending=lambda: wakeups.append("pending"), on_cancel=lambda _id: None
    )
    task = asyncio.create_task(listener.run())
    try:
        settled = (ListenerState.LISTENING, ListenerState.UNAVAILABLE)
        await wait_for(lambda: asyncio.sleep(0, result=listener.state in settled), timeout=10)
        wakeups.clear()  # a listener that thinks it listens wakes the runner once to catch up
        await store_via_pooler.enqueue({})
        with pytest.raises(AssertionError, match="not met"):
            await wait_for(lambda: asyncio.sleep(0, result=bool(wakeups)), timeout=1.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_listener_reports_unavailable_behind_the_pooler(pooler, monkeypatch):
    monkeypatch.setattr(listener_module, "PROBE_TIMEOUT", 0.5)
    listener = Listener(pooler.url, on_pending=lambda: None, on_cancel=lambda _id: None)
    task = asyncio.create_task(listener.run())
    try:
        settled = (ListenerState.LISTENING, ListenerState.UNAVAILABLE)
        await wait_for(lambda: asyncio.sleep(0, result=listener.state in settled), timeout=10)
        assert listener.state is ListenerState.UNAVAILABLE, f"listener says {listener.state}"
        assert listener.last_error and "pooler" in listener.last_error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# ---- the runner through the pooler ------------------------------------------------------------


async def test_a_runner_behind_the_pooler_completes_every_job_once(
    pooler, store_via_pooler, db_url
):
    """Concurrency 3 and a listener, claims, heartbeats, progress and completions from more
    clients than PgBouncer has server connections: every job runs once and completes."""
    started: collections.Counter[str] = collections.Counter()

    async def handler(job: Job, ctx: JobContext) -> JobOutcome:
        started[str(job.id)] += 1
        await ctx.report(30, "working", "first half")
        await asyncio.sleep(0.6)  # longer than a heartbeat interval (0.5 s)
        await ctx.report(90, "working", "second half")
        return JobOutcome(result={"attempt": job.attempts})

    store = store_via_pooler
    ids = [(await store.enqueue({"n": i}))[0] for i in range(9)]
    stop = asyncio.Event()
    sampler = asyncio.create_task(_server_connections(db_url, stop))
    try:
        async with running(
            store,
            handler,
            db_url=pooler.url,
            listen=True,
            poll_interval_ms=200,
            concurrency=3,
            lease_seconds=3,
        ):
            rows = [await status_is(store, job_id, "completed", timeout=30) for job_id in ids]
    finally:
        stop.set()
        most_backends, backends = await sampler

    assert started == {str(job_id): 1 for job_id in ids}, "a job ran more (or less) than once"
    assert all(r["attempts"] == 1 and r["result"] == {"attempt": 1} for r in rows)
    assert any(beat.held for beat in store.beats), "no heartbeat renewed a lease"
    assert len(store.progress_writes) >= len(ids) and all(store.progress_writes)
    assert 0 < most_backends <= SERVER_POOL_SIZE, (
        f"{most_backends} server connections: the pooler did not share them: {backends}"
    )
    assert store.pool.get_stats()["pool_size"] + 1 > SERVER_POOL_SIZE  # + the listener's
    assert "prepared statement" not in pooler.log()


# ---- prepared statements ----------------------------------------------------------------------


async def test_prepared_statements_are_off_so_many_claims_work(pooler, store_via_pooler):
    """Dozens of claims, completions and reads per client connection, well past psycopg's
    default prepare threshold (5), from several clients sharing two server connections."""
    store = store_via_pooler
    ids = {(await store.enqueue({"n": i}))[0] for i in range(40)}

    async def drain(worker_id: str) -> int:
        done = 0
        while True:
            jobs = await store.claim(worker_id, 1)
            if not jobs:
                return done
            for job in jobs:
                assert await store.progress(job, 50, "working", None)
                assert await store.heartbeat([job])
                assert await store.complete(job, JobOutcome())
                assert (await store.get(job.id))["status"] == "completed"
                done += 1

    counts = await asyncio.gather(*(drain(f"w{i}") for i in range(4)))
    assert sum(counts) == len(ids)
    for job_id in ids:
        assert (await store.get(job_id))["attempts"] == 1


async def test_the_pooler_breaks_psycopg_default_prepared_statements(pooler):
    """The control: with psycopg's default prepare_threshold the same traffic fails here, so
    the test above would catch a connection that prepares."""
    kwargs = {k: v for k, v in CONNECT_KWARGS.items() if k != "prepare_threshold"}
    a = await psycopg.AsyncConnection.connect(conninfo(pooler.url), **kwargs)
    b = await psycopg.AsyncConnection.connect(conninfo(pooler.url), **kwargs)
    try:
        assert a.prepare_threshold == 5
        with pytest.raises(
            (psycopg.errors.DuplicatePreparedStatement, psycopg.errors.InvalidSqlStatementName),
            match=r'prepared statement "_pg3_\d+"',
        ):
            for i in range(20):
                for conn in (a, b):
                    await conn.execute("select %s::int as n", (i,))
    finally:
        await a.close()
        await b.close()


# ---- a worker process -------------------------------------------------------------------------


async def test_a_worker_process_behind_the_pooler_is_healthy_and_works(
    pooler, store_via_pooler, tmp_path
):
    """`video-worker run` with DATABASE_URL = the pooler: migrations (one transaction with an
    advisory xact lock) pass, /health is 200, and jobs complete by polling."""
    store = store_via_pooler
    replica = Replica(pooler.url, "pooled", tmp_path, WORKER_CONCURRENCY=2)
    try:
        port = await asyncio.to_thread(replica.port)
        url = f"http://127.0.0.1:{port}/health"
        async with aiohttp.ClientSession() as http:

            async def health() -> tuple[int, dict[str, Any]] | None:
                async with http.get(url) as resp:
                    body = await resp.json()
                settled = body["listener"] in ("listening", "unavailable")
                return (resp.status, body) if settled else None

            status, body = await wait_for(health, timeout=10)
            assert status == 200, body
            assert body["status"] == "healthy" and not body["draining"]

            ids = [
                (
                    await store.enqueue(
                        {
                            "script": [
                                {"progress": 50, "stage": "working", "message": "half"},
                                {"sleep": 0.1},
                            ]
                        }
                    )
                )[0]
                for _ in range(4)
            ]
            for job_id in ids:
                await status_is(store, job_id, "completed", timeout=20)

            async with http.get(url) as resp:
                assert resp.status == 200
    finally:
        await asyncio.to_thread(replica.stop)
    assert replica.proc.returncode == 0, replica.log_path.read_text()[-3000:]
    per_job = collections.Counter(job_id for job_id, _, _ in runs(tmp_path))
    assert per_job == {str(job_id): 1 for job_id in ids}
    assert "prepared statement" not in replica.log_path.read_text()
