"""A chaos soak: real worker processes run the real video pipeline on a few dozen tiny jobs
while one replica is killed, one is frozen past its lease, Postgres restarts, the workers'
backends are terminated and the S3 store goes away and comes back.

Afterwards nothing may be lost (every job terminal, none left `processing`), doubled (each
completed job published exactly one video and one poster, at its own key; no attempt of a job
ran twice), or orphaned (no object of a failed or cancelled job, no unfinished multipart upload,
no temporary folder of a replica that ended normally).

What at-least-once delivery allows, and the test therefore accepts: a job whose replica was
killed, frozen or cut off runs again, so a job may show several handler runs (one per attempt
number, never two runs of the same attempt: a lease has one holder at a time). The effect stays
single because the output key is the job's own and a re-run writes the same object again.

Each phase waits on a condition (a replica holding a job, an outage being noticed, a lease being
rescued) with a deadline; nothing is timed. The replicas get their own homes, as separate
machines would, so each one's temporary folders can be checked on their own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import http.server
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from psycopg.conninfo import make_conninfo

from tests.handlers import scripted
from tests.queue.helpers import running, status_is
from tests.queue.procs import OwnPostgres, Replica
from worker.db.connection import make_pool
from worker.db.migrate import migrate
from worker.media.ffmpeg import ffmpeg_exe
from worker.queue.postgres import PostgresJobStore
from worker.queue.queries import QUERIES

BUCKET = "chaos"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"}
PIPELINE = "worker.pipeline:handle_job"
GOOD_ATTEMPTS = 10  # enough that every fault of the soak can cost a good job an attempt
WAVE = 7  # good jobs per phase; each phase also adds one job that fails for good
TERMINAL = ("completed", "failed", "cancelled")


# --- the parts the chaos acts on ------------------------------------------------------------


class S3:
    """A moto S3 server on a fixed loopback port that can go away and come back. Moto keeps
    its objects in the process, so a restarted server still has them, like a real store after
    an outage."""

    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, self.port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{self.port}"
        self.admin = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
        )

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def keys(self) -> set[str]:
        pages = self.admin.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    def unfinished_uploads(self) -> list[Any]:
        return list(self.admin.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ClipServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a replica killed mid-download breaks its pipe: expected here


@contextlib.contextmanager
def clip_server(folder: Path) -> Iterator[str]:
    """Serves the folder on 127.0.0.1 from a thread of its own (the test's event loop blocks
    on pg_ctl and moto now and then; the workers' downloads must not)."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = _ClipServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_clips(folder: Path) -> None:
    """Two tiny clips of one format (so the join is a stream copy): a job costs little CPU."""
    folder.mkdir()
    for name, pattern, freq in (("a.mp4", "testsrc2", 440), ("b.mp4", "testsrc", 880)):
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
             f"{pattern}=s=128x96:r=15:d=0.5", "-f", "lavfi", "-i",
             f"sine=frequency={freq}:sample_rate=48000:duration=0.5",
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-shortest", str(folder / name)],
            check=True,
        )  # fmt: skip


# --- waiting on conditions ------------------------------------------------------------------


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy. Errors count as "not yet": the
    test's own connections go through the same outages as the workers'."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except Exception as exc:  # the database restarting, a terminated backend
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


class Fleet:
    """The replicas, and what their logs say."""

    def __init__(self, url: str, tmp: Path, env: dict[str, str]) -> None:
        self.url, self.tmp, self.env = url, tmp, env
        self.replicas: dict[str, Replica] = {}

    def home(self, name: str) -> Path:
        return self.tmp / f"home-{name}"

    def start(self, name: str) -> Replica:
        home = self.home(name)
        # connections named after the replica, so the test can tell whose backend is whose
        url = f"{self.url}{'&' if '?' in self.url else '?'}application_name={name}"
        replica = Replica(url, name, self.tmp, handler=PIPELINE, VIDEO_WORKER_HOME=home, **self.env)
        self.replicas[name] = replica
        return replica

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for r in self.replicas.values() for e in r.events() if e.get("event") == name]

    def runs(self) -> list[tuple[str, int, str]]:
        """(job id, attempt, replica) for every handler start."""
        return [
            (e["job_id"], e["attempt"], name)
            for name, r in self.replicas.items()
            for e in r.events()
            if e.get("event") == "job_started"
        ]

    async def noticed(self, name: str, before: int, what: str) -> None:
        await until(lambda: _true(len(self.events(name)) > before), what)

    def stop_all(self) -> None:
        for r in self.replicas.values():
            with contextlib.suppress(ProcessLookupError):
                r.proc.send_signal(signal.SIGCONT)  # a frozen replica cannot act on SIGTERM
            r.stop()


async def _true(value: bool) -> bool:
    return value


@contextlib.asynccontextmanager
async def own_store(url: str) -> AsyncIterator[PostgresJobStore]:
    """The test's store, on connections named apart from the workers' (so terminating the
    workers' backends spares it)."""
    pool = make_pool(make_conninfo(url, application_name="chaos-test"), max_size=4)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            await migrate(conn)
        yield PostgresJobStore(pool)
    finally:
        await pool.close()


async def held_by(store: PostgresJobStore, worker: str) -> uuid.UUID | None:
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "select id from public.video_jobs where status = 'processing' and worker_id = %s"
            " limit 1",
            (worker,),
        )
        row = await cur.fetchone()
    return row["id"] if row else None


async def any_processing(store: PostgresJobStore) -> bool:
    return (await store.counts())["processing"] > 0


async def all_terminal(store: PostgresJobStore, ids: list[uuid.UUID]) -> bool:
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "select count(*) as n from public.video_jobs where id = any(%s)"
            " and status in ('completed', 'failed', 'cancelled')",
            (ids,),
        )
        row = await cur.fetchone()
    return bool(row and row["n"] == len(ids))


# --- the soak -------------------------------------------------------------------------------


@pytest.mark.slow
async def test_chaos_soak_loses_doubles_and_orphans_nothing(tmp_path: Path):
    make_clips(tmp_path / "clips")
    pg = OwnPostgres()
    s3 = S3()
    fleet: Fleet | None = None
    try:
        s3.admin.create_bucket(Bucket=BUCKET)
        with clip_server(tmp_path / "clips") as base:
            async with own_store(pg.url) as store:
                env = {
                    "STORAGE_BACKEND": "s3",
                    "S3_BUCKET": BUCKET,
                    "S3_ENDPOINT_URL": s3.endpoint,
                    "AWS_REGION": "us-east-1",
                    **KEYS,
                    "ALLOW_PRIVATE_URLS": "true",
                    "LEASE_SECONDS": "4",
                }
                fleet = Fleet(pg.url, tmp_path, env)
                jobs = await soak(store, fleet, pg, s3, base)
                await check(store, fleet, s3, jobs)
    finally:
        if fleet is not None:
            fleet.stop_all()
        s3.stop()
        pg.close()


class Jobs:
    def __init__(self) -> None:
        self.good: list[uuid.UUID] = []
        self.bad: list[uuid.UUID] = []
        self.cancelled: list[uuid.UUID] = []
        # the jobs the killed and the frozen replica held when the signal came
        self.held: dict[str, uuid.UUID] = {}
        self.thawed_in_maintenance = 0  # freezes retried (see freeze_holding_a_job)

    @property
    def all(self) -> list[uuid.UUID]:
        return [*self.good, *self.bad, *self.cancelled]


async def wave(store: PostgresJobStore, jobs: Jobs, base: str) -> None:
    """WAVE good jobs and one whose second clip is missing (a 404: it fails for good)."""
    clips = [{"url": f"{base}/a.mp4"}, {"url": f"{base}/b.mp4"}]
    for _ in range(WAVE):
        job_id, _ = await store.enqueue({"clips": clips}, max_attempts=GOOD_ATTEMPTS)
        jobs.good.append(job_id)
    bad = [clips[0], {"url": f"{base}/missing.mp4"}]
    jobs.bad.append((await store.enqueue({"clips": bad}, max_attempts=GOOD_ATTEMPTS))[0])


async def soak(store: PostgresJobStore, fleet: Fleet, pg: OwnPostgres, s3: S3, base: str) -> Jobs:
    jobs = Jobs()
    for name in ("killed", "frozen", "c", "d"):
        fleet.start(name)
    for r in fleet.replicas.values():  # all up first, so the load is shared from the start
        await asyncio.to_thread(r.wait_event, "worker_started", 60)

    # 1. SIGKILL a replica in the middle of a job: no hand-back, the lease must bring it back.
    await wave(store, jobs, base)
    for _ in range(2):  # cancelled by the app: one before it starts, if not already running
        job_id, _ = await store.enqueue({"clips": [{"url": f"{base}/a.mp4"}]})
        await store.request_cancel(job_id)
        jobs.cancelled.append(job_id)
    job_id = await until(lambda: mid_job(store, jobs, base, fleet, "killed"), "killed mid-job")
    fleet.replicas["killed"].proc.kill()
    if await _held(store, job_id, "killed"):  # not finished in the instant before the kill
        jobs.held["killed"] = job_id

    # 2. SIGSTOP a replica holding a job until its lease is rescued, then SIGCONT: it wakes up
    # holding a job that is no longer its own and must write nothing (fenced) and stop.
    await wave(store, jobs, base)
    frozen = fleet.replicas["frozen"]
    job_id = jobs.held["frozen"] = await freeze_holding_a_job(store, jobs, base, frozen)
    await until(lambda: _not_held(store, job_id, "frozen"), "the frozen job rescued", 60)
    frozen.signal(signal.SIGCONT)

    # 3. Postgres restarts under running jobs.
    await wave(store, jobs, base)
    await until(lambda: any_processing(store), "a job running before the restart")
    before = len(fleet.events("listener_lost"))
    await asyncio.to_thread(pg.stop)
    await fleet.noticed("listener_lost", before, "the replicas noticing Postgres gone")
    await asyncio.to_thread(pg.start)

    # 4. Every worker backend terminated (an admin, a failover, a pooler recycling).
    await wave(store, jobs, base)
    await until(lambda: any_processing(store), "a job running before the terminations")
    names = list(fleet.replicas)
    killed = await until(lambda: _terminate(store, names), "worker backends to terminate")
    assert killed > 0

    # 5. The S3 store goes away while jobs upload, and comes back.
    await wave(store, jobs, base)
    await until(lambda: any_processing(store), "a job running before the storage outage")
    before = len(fleet.events("job_will_retry"))
    await asyncio.to_thread(s3.stop)
    # (whatever its wording: nothing else fails an attempt of a good job in this phase)
    await fleet.noticed("job_will_retry", before, "an upload failing on the missing store")
    await asyncio.to_thread(s3.start)

    await until(lambda: all_terminal(store, jobs.all), "every job terminal", 120)
    return jobs


async def feed_until_held(
    store: PostgresJobStore, jobs: Jobs, base: str, worker: str
) -> uuid.UUID | None:
    """The job `worker` holds, if any; another wave when the others took every job."""
    held = await held_by(store, worker)
    if held is None and (await store.counts())["pending"] == 0:
        await wave(store, jobs, base)
    return held


async def mid_job(
    store: PostgresJobStore, jobs: Jobs, base: str, fleet: Fleet, worker: str
) -> uuid.UUID | None:
    """The job `worker` holds once its temporary folder is on disk (downloading or later)."""
    held = await feed_until_held(store, jobs, base, worker)
    if held is not None and any((fleet.home(worker) / "tmp").glob(f"job-{held}-*")):
        return held
    return None


async def freeze_holding_a_job(
    store: PostgresJobStore, jobs: Jobs, base: str, replica: Replica
) -> uuid.UUID:
    """SIGSTOP `replica` while it holds a job, and outside a transaction. Frozen inside the
    statistics check's short transaction it would hold only the ANALYZE lock (which blocks no
    rescue; maintenance is one statement since the soak found a frozen replica holding its
    lock: test_a_replica_frozen_in_maintenance_does_not_block_rescue below), but this soak is
    about other faults, so it thaws the replica and tries again at another moment."""
    name = replica.name
    for _ in range(20):
        job_id = await until(lambda: feed_until_held(store, jobs, base, name), f"a job on {name}")
        replica.signal(signal.SIGSTOP)
        # a statement sent just before the signal still runs: wait for it to end
        await until(lambda: _no_backend(store, name, "active"), f"{name}'s statements done")
        if await _held(store, job_id, name) and await _no_backend(
            store, name, "idle in transaction"
        ):
            return job_id
        replica.signal(signal.SIGCONT)
        jobs.thawed_in_maintenance += 1
        await until(
            lambda: _no_backend(store, name, "idle in transaction"), f"{name} out of its tx"
        )
    raise AssertionError(f"could not freeze {name} while it held a job")


async def _held(store: PostgresJobStore, job_id: uuid.UUID, worker: str) -> bool:
    row = await store.get(job_id)
    return bool(row and row["status"] == "processing" and row["worker_id"] == worker)


async def _not_held(store: PostgresJobStore, job_id: uuid.UUID, worker: str) -> bool:
    return not await _held(store, job_id, worker)


async def _no_backend(store: PostgresJobStore, replica: str, state: str) -> bool:
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "select count(*) as n from pg_stat_activity where application_name = %s and state = %s",
            (replica, state),
        )
        row = await cur.fetchone()
    return bool(row and row["n"] == 0)


async def _terminate(store: PostgresJobStore, replicas: list[str]) -> int:
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "select count(*) filter (where pg_terminate_backend(pid)) as n"
            " from pg_stat_activity where application_name = any(%s)",
            (replicas,),
        )
        row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def check(store: PostgresJobStore, fleet: Fleet, s3: S3, jobs: Jobs) -> None:
    for name, r in fleet.replicas.items():  # SIGTERM: every live replica exits cleanly
        if name != "killed":
            await asyncio.to_thread(r.stop)
            assert r.proc.returncode == 0, (name, r.log_path.read_text()[-3000:])
    rows = {j: await store.get(j) for j in jobs.all}
    assert (await store.counts())["processing"] == 0
    check_nothing_lost(rows, jobs)
    objects = await check_nothing_doubled(rows, s3)
    runs = check_runs(rows, jobs, fleet.runs())
    check_no_temp_files(fleet, jobs)
    per_job = collections.Counter(j for j, _, _ in runs)
    print(  # the soak's figures, for the report (pytest -s)
        f"\n[chaos] jobs {len(rows)}: "
        + ", ".join(f"{s} {sum(r['status'] == s for r in rows.values())}" for s in TERMINAL)
        + f"; handler runs {len(runs)}; jobs run more than once "
        + str(sum(n > 1 for n in per_job.values()))
        + f"; objects {objects}; folders the killed replica left "
        + str(len(list((fleet.home("killed") / "tmp").glob("*"))))
        + f"; freezes retried {jobs.thawed_in_maintenance}"
    )


Rows = dict[uuid.UUID, dict[str, Any]]


def check_nothing_lost(rows: Rows, jobs: Jobs) -> None:
    """Every good job completed; every bad one failed at once, naming its input."""
    for j in jobs.good:
        assert rows[j]["status"] == "completed", _explain(rows[j])
    for j in jobs.bad:
        r = rows[j]
        assert (r["status"], r["attempts"]) == ("failed", 1), _explain(r)
        assert "clips[1]" in r["error"], r["error"]
    for j in jobs.cancelled:  # completed only if it ended before the cancel reached it
        assert rows[j]["status"] in ("cancelled", "completed"), _explain(rows[j])


async def check_nothing_doubled(rows: Rows, s3: S3) -> int:
    """Exactly the completed jobs' videos and posters are in the store, each at the job's own
    key; nothing of a failed or cancelled job; no multipart upload left open."""
    expected = set()
    for r in rows.values():
        if r["status"] == "completed":
            expected |= {r["result"]["storage_path"], r["result"]["thumbnail_path"]}
            assert str(r["id"]) in r["result"]["storage_path"]
    assert await asyncio.to_thread(s3.keys) == expected
    assert await asyncio.to_thread(s3.unfinished_uploads) == []
    return len(expected)


def check_runs(rows: Rows, jobs: Jobs, runs: list[tuple[str, int, str]]) -> list[Any]:
    """At least once, never two runs of one attempt (a lease has one holder); the killed and
    the frozen replica's jobs finished in a later attempt (the frozen one, woken up, wrote
    nothing for the attempt it had lost; it may well be the replica that claims and finishes
    the later attempt, once it is a live replica again)."""
    per_attempt = collections.Counter((j, a) for j, a, _ in runs)
    assert max(per_attempt.values()) == 1, [k for k, n in per_attempt.items() if n > 1]
    per_job = collections.Counter(j for j, _, _ in runs)
    for j, r in rows.items():
        assert per_job[str(j)] <= r["attempts"], _explain(r)
        if r["status"] == "completed":
            assert (str(j), r["attempts"]) in per_attempt, _explain(r)
    for name, j in jobs.held.items():
        r = rows[j]
        finisher = [w for jid, a, w in runs if jid == str(j) and a == r["attempts"]]
        assert r["status"] == "completed" and r["attempts"] >= 2, _explain(r)
        assert finisher, (name, finisher, _explain(r))
    return runs


def check_no_temp_files(fleet: Fleet, jobs: Jobs) -> None:
    """A replica that ended normally removed every temporary folder. The one killed with
    SIGKILL could not: the folder of the job it was running stays until a worker starts again
    on that home (tests/test_scratch.py); only that folder may be there."""
    for name in fleet.replicas:
        left = sorted(p.name for p in (fleet.home(name) / "tmp").glob("*"))
        if name == "killed":
            assert {p[4:40] for p in left} <= {str(jobs.held.get("killed"))}, left
        else:
            assert left == [], (name, left)


def _explain(row: dict[str, Any]) -> str:
    keys = ("id", "status", "attempts", "worker_id", "stage", "error", "errors")
    return repr({k: row.get(k) for k in keys})


# --- what the soak found --------------------------------------------------------------------


class _FreezeAfterMaintenance:
    """A connection that stops dead right after its maintenance statement: the worker's
    process frozen (SIGSTOP, a VM pause, a partition that keeps the socket up) at that point."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def transaction(self) -> Any:
        return self._conn.transaction()

    async def execute(self, query: Any, params: Any = None) -> Any:
        cur = await self._conn.execute(query, params)
        if query == QUERIES["maintain"]:
            self.frozen.set()
            await asyncio.Event().wait()  # frozen; the test cancels it at the end
        return cur

    frozen = asyncio.Event()


class _FreezingPool:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        async with self._pool.connection(timeout=timeout) as conn:
            yield _FreezeAfterMaintenance(conn)


async def test_a_replica_frozen_in_maintenance_does_not_block_rescue(store, db_url):
    """Found by the soak: one replica frozen inside its maintenance transaction kept the
    advisory lock (the backend waited, idle in transaction, for a client that was stopped), so
    the other replicas skipped maintenance and no expired lease was rescued until it woke up.
    Maintenance is now one statement: however a replica freezes, the lock is gone with the
    statement, and the others rescue the lease."""
    _FreezeAfterMaintenance.frozen = asyncio.Event()
    frozen = asyncio.create_task(PostgresJobStore(_FreezingPool(store.pool)).maintain(60))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(_FreezeAfterMaintenance.frozen.wait(), 10)
        assert not await _lock_held(store)  # frozen, and holding nothing
        job_id, _ = await store.enqueue({"script": []})
        async with store.pool.connection() as conn:
            await conn.execute(
                "update public.video_jobs set status = 'processing', attempts = 1,"
                " worker_id = 'frozen', lease_token = gen_random_uuid(),"
                " heartbeat_at = now() - interval '1 hour' where id = %s",
                (job_id,),
            )
        async with running(store, scripted, lease_seconds=2):
            await status_is(store, job_id, "completed", timeout=30)
    finally:
        frozen.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await frozen


async def _lock_held(store: PostgresJobStore) -> bool:
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "select count(*) as n from pg_locks where locktype = 'advisory' and granted"
        )
        row = await cur.fetchone()
    return bool(row and row["n"] > 0)
