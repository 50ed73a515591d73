"""Queue benchmark, run by hand (never a test): video-worker against Procrastinate and PgQueuer.

    .venv/bin/python bench/bench_queue.py [--jobs 2000] [--latency-jobs 200] [--rounds 3]
        [--database-url URL] [--only ours|procrastinate|pgqueuer ...] [--claim-v1]
        [--loop cli|asyncio|uvloop]

One run, one Postgres (DATABASE_URL, or an embedded pgserver started for the run), and every
phase of every system in a fresh database of its own (CREATE DATABASE, dropped afterwards).

Pickup latency: an idle worker (concurrency 1, LISTEN/NOTIFY on, polling every 5 s so only
the notify path can be fast); jobs are enqueued one at a time through a separate connection,
each after the previous one started and a short pause. Latency = perf_counter() at the
handler's first line - perf_counter() right after the enqueue call returned (the commit),
both in this process.

No-op throughput: N jobs are bulk-enqueued first (not timed); the clock starts when the worker
is started and stops when the database shows all N finished (completed / succeeded / removed
from the queue), at concurrency 1 and 4. Each system runs --rounds times, the systems taking
turns, and the table gives the median with the range; a VM's speed drifts by a quarter within
minutes, so one run each says little.

Each system runs on the event loop its own command line uses (--loop cli): `video-worker run`
and PgQueuer's `pgq run` use uvloop when it is installed, `procrastinate worker` runs asyncio's
loop. --loop asyncio (or uvloop) puts all three on the same loop instead.

--claim-v1 adds one more system, video-worker driving the claim of before fair share
(video_jobs_claim_v1 and video_jobs_complete_and_claim_v1, first come first served, in the same
schema), so that what the fair-share claim costs is a ratio taken within one run.

Each system runs at its full feature set: ours with leases, heartbeat, fencing and the
progress row; Procrastinate with its worker registry, heartbeat and abort polling; PgQueuer
with its heartbeat and status-log buffers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

SYSTEMS = ("ours", "procrastinate", "pgqueuer")
LABELS = {
    "ours": "video-worker",
    "ours_v1": "video-worker claim_v1",
    "procrastinate": "Procrastinate",
    "pgqueuer": "PgQueuer",
}
POLL_SECONDS = 5.0  # every worker's fallback polling: long, so latency shows the notify path
LATENCY_CONCURRENCY = 1
LATENCY_PAUSE = 0.025  # after a job started, let the worker finish it and go idle again
PICKUP_TIMEOUT = 15.0  # one job not started by then counts as lost
WARMUP_FAST = 0.2  # a warm-up job picked up this fast proves LISTEN/NOTIFY is live
THROUGHPUT_TIMEOUT = 240.0
P95_TARGET_MS = 5.0
THROUGHPUT_TARGET = 2.0


# ---- what the handlers record ----------------------------------------------------------------


class Recorder:
    """Start times of handlers by key, and wake-ups for whoever waits on one key or on a count."""

    def __init__(self) -> None:
        self.reset()

    def reset(self, expect: int = 0) -> None:
        self.started: dict[int, float] = {}
        self.count = 0
        self.expect = expect
        self.all_started = asyncio.Event()
        self.waiters: dict[int, asyncio.Future[float]] = {}

    def mark(self, key: int, at: float) -> None:
        self.started.setdefault(key, at)
        self.count += 1
        if self.expect and self.count >= self.expect:
            self.all_started.set()
        waiter = self.waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(at)

    def expect_key(self, key: int) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[key] = fut
        return fut


REC = Recorder()
NOTES: dict[str, str] = {}  # how each system was driven, printed under the table


# ---- the three systems behind one small interface --------------------------------------------


class System:
    """One queue library in one database: schema, a worker, an enqueuer, a 'done' count."""

    name = ""

    def __init__(self, url: str) -> None:
        self.url = url

    async def setup(self) -> None: ...
    async def open_enqueuer(self) -> None: ...
    async def enqueue(self, key: int) -> None: ...
    async def enqueue_bulk(self, n: int) -> None: ...
    async def start_worker(self, concurrency: int) -> None: ...
    async def worker_ready(self) -> None:
        """Wait for whatever the library exposes about its listener; warm-ups do the rest."""

    async def stop_worker(self) -> None: ...
    async def close(self) -> None: ...
    def done_query(self, n: int) -> str:
        raise NotImplementedError


class Ours(System):
    name = "ours"
    claim_v1 = False

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.pools: list[Any] = []
        self.runner: Any = None
        self.task: asyncio.Task[None] | None = None

    async def setup(self) -> None:
        from worker.db.connection import connect
        from worker.db.migrate import migrate

        conn = await connect(self.url)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def open_enqueuer(self) -> None:
        from worker.db.connection import make_pool
        from worker.queue.postgres import PostgresJobStore

        pool = make_pool(self.url, max_size=8, name="bench-enqueue")
        await pool.open(wait=True)
        self.pools.append(pool)
        self.enqueuer = PostgresJobStore(pool)

    async def enqueue(self, key: int) -> None:
        await self.enqueuer.enqueue({"k": key})

    async def enqueue_bulk(self, n: int) -> None:
        gate = asyncio.Semaphore(8)

        async def one(key: int) -> None:
            async with gate:
                await self.enqueuer.enqueue({"k": key})

        await asyncio.gather(*(one(k) for k in range(n)))

    async def start_worker(self, concurrency: int) -> None:
        from worker.db.connection import make_pool
        from worker.queue.postgres import PostgresJobStore
        from worker.queue.runner import Runner
        from worker.settings import Settings

        settings = replace(
            Settings(),
            concurrency=concurrency,
            poll_interval_ms=int(POLL_SECONDS * 1000),
            worker_id="bench",
            port=0,
        )
        pool = make_pool(self.url, max_size=settings.concurrency + 4)
        await pool.open(wait=True)
        self.pools.append(pool)

        async def handler(job: Any, ctx: Any) -> Any:
            at = time.perf_counter()
            REC.mark(job.payload["k"], at)
            return None

        store = claim_v1_store(pool) if self.claim_v1 else PostgresJobStore(pool)
        self.runner = Runner(settings, store, handler, database_url=self.url, listen=True)
        self.task = asyncio.create_task(self.runner.run())

    async def worker_ready(self) -> None:
        deadline = time.monotonic() + 10
        while self.runner.listener_state != "listening":
            if time.monotonic() > deadline:
                raise RuntimeError(f"listener is {self.runner.listener_state}, not listening")
            await asyncio.sleep(0.01)

    async def stop_worker(self) -> None:
        if self.runner is not None and self.task is not None:
            self.runner.request_stop()
            await self.task
        self.runner = self.task = None

    async def close(self) -> None:
        await self.stop_worker()
        for pool in self.pools:
            await pool.close()
        self.pools.clear()

    def done_query(self, n: int) -> str:
        return "select count(*) from public.video_jobs where status = 'completed'"


class OursClaimV1(Ours):
    name = "ours_v1"
    claim_v1 = True


def claim_v1_store(pool: Any) -> Any:
    """A PostgresJobStore whose claim and hot path call the _v1 functions (no turns, no running
    cap)."""
    from worker.queue.postgres import PostgresJobStore
    from worker.queue.queries import QUERIES

    class ClaimV1Store(PostgresJobStore):
        async def _all(
            self, name: str, params: dict[str, Any] | None = None, *, wait: float | None = None
        ) -> list[dict[str, Any]]:
            if name not in ("claim", "complete_and_claim"):
                return await super()._all(name, params, wait=wait)
            async with self.pool.connection(timeout=wait) as conn:
                query = QUERIES[name].replace("_v2(", "_v1(")
                cur = await conn.execute(query, {"now": self.now, **(params or {})})
                return await cur.fetchall()

    return ClaimV1Store(pool)


class Procrastinate(System):
    name = "procrastinate"
    TASK = "bench_noop"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.apps: list[Any] = []
        self.task: asyncio.Task[None] | None = None

    def _app(self, max_size: int) -> Any:
        import procrastinate

        app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=self.url, min_size=1, max_size=max_size
            )
        )

        @app.task(name=self.TASK)
        async def bench_noop(k: int) -> None:
            at = time.perf_counter()
            REC.mark(k, at)

        self.apps.append(app)
        return app

    async def setup(self) -> None:
        app = self._app(2)
        await app.open_async()
        try:
            await app.schema_manager.apply_schema_async()
        finally:
            await app.close_async()
            self.apps.remove(app)

    async def open_enqueuer(self) -> None:
        self.enqueuer = self._app(8)
        await self.enqueuer.open_async()
        self.defer = self.enqueuer.tasks[self.TASK]

    async def enqueue(self, key: int) -> None:
        await self.defer.defer_async(k=key)

    async def enqueue_bulk(self, n: int) -> None:
        for start in range(0, n, 500):
            await self.defer.batch_defer_async(
                *({"k": k} for k in range(start, min(n, start + 500)))
            )

    async def start_worker(self, concurrency: int) -> None:
        self.worker_app = self._app(concurrency + 4)
        await self.worker_app.open_async()
        self.task = asyncio.create_task(
            self.worker_app.run_worker_async(
                concurrency=concurrency,
                wait=True,
                listen_notify=True,
                fetch_job_polling_interval=POLL_SECONDS,
                abort_job_polling_interval=POLL_SECONDS,
                install_signal_handlers=False,
                name="bench",
            )
        )

    async def stop_worker(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
            await self.worker_app.close_async()
            self.apps.remove(self.worker_app)

    async def close(self) -> None:
        await self.stop_worker()
        for app in self.apps:
            await app.close_async()
        self.apps.clear()

    def done_query(self, n: int) -> str:
        return "select count(*) from procrastinate_jobs where status = 'succeeded'"


class PgQueuer(System):
    name = "pgqueuer"
    ENTRYPOINT = "bench_noop"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.conns: list[psycopg.AsyncConnection[Any]] = []
        self.asyncpg_conns: list[Any] = []
        self.driver = "psycopg: PsycopgDriver LISTENing on its own connection, queries on another"
        self.qm: Any = None
        self.task: asyncio.Task[None] | None = None

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        self.conns.append(conn)
        return conn

    async def _queries(self, *, listen: bool = False) -> Any:
        from pgqueuer.queries import Queries

        if not listen:
            return Queries(psycopg_driver(await self._connect()))
        try:  # PgQueuer's own first choice, where installed: one connection does both
            import asyncpg
            from pgqueuer.db import AsyncpgDriver
        except ImportError:
            return Queries(psycopg_driver(await self._connect(), await self._connect()))
        params = conninfo_to_dict(self.url)
        conn = await asyncpg.connect(
            host=params.get("host"),
            port=int(params.get("port") or 5432),
            user=params.get("user"),
            password=params.get("password"),
            database=params.get("dbname"),
        )
        self.asyncpg_conns.append(conn)
        self.driver = "asyncpg (AsyncpgDriver)"
        return Queries(AsyncpgDriver(conn))

    async def setup(self) -> None:
        queries = await self._queries()
        await queries.install()
        self.queue_table = queries.qbe.settings.queue_table

    async def open_enqueuer(self) -> None:
        self.enqueuer = await self._queries()

    async def enqueue(self, key: int) -> None:
        await self.enqueuer.enqueue(self.ENTRYPOINT, str(key).encode())

    async def enqueue_bulk(self, n: int) -> None:
        for start in range(0, n, 500):
            keys = range(start, min(n, start + 500))
            await self.enqueuer.enqueue(
                [self.ENTRYPOINT] * len(keys), [str(k).encode() for k in keys], [0] * len(keys)
            )

    async def start_worker(self, concurrency: int) -> None:
        from pgqueuer.models import Job
        from pgqueuer.qm import QueueManager

        self.qm = QueueManager(await self._queries(listen=True))

        # concurrency_limit is enforced in the dequeue SQL (jobs picked at once); batch_size
        # lets one dequeue fill every free slot, like the other two.
        @self.qm.entrypoint(self.ENTRYPOINT, concurrency_limit=concurrency)
        async def bench_noop(job: Job) -> None:
            at = time.perf_counter()
            REC.mark(int(job.payload or b"0"), at)

        NOTES[self.name] = f"driver {self.driver}; concurrency via concurrency_limit"
        self.task = asyncio.create_task(
            self.qm.run(dequeue_timeout=timedelta(seconds=POLL_SECONDS), batch_size=concurrency)
        )

    async def worker_ready(self) -> None:
        deadline = time.monotonic() + 10
        while True:  # the listener is set up inside run(); its own probe says when it works
            try:
                await self.qm.listener_healthy(timeout=timedelta(seconds=1))
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def stop_worker(self) -> None:
        if self.qm is not None and self.task is not None:
            self.qm.shutdown.set()
            await self.task
        self.qm = self.task = None

    async def close(self) -> None:
        await self.stop_worker()
        for conn in self.conns:
            await conn.close()
        for conn in self.asyncpg_conns:
            await conn.close()
        self.conns.clear()
        self.asyncpg_conns.clear()

    def done_query(self, n: int) -> str:
        # PgQueuer deletes a finished job from its queue table (moving it to its log).
        return (
            f"select {n} - count(*) from {self.queue_table} where entrypoint = '{self.ENTRYPOINT}'"
        )


def psycopg_driver(
    conn: psycopg.AsyncConnection[Any], query_conn: psycopg.AsyncConnection[Any] | None = None
) -> Any:
    """PgQueuer's PsycopgDriver; with `query_conn`, its queries go there and only LISTEN stays
    on `conn`.

    Why: psycopg (>= 3.2) holds the connection lock for as long as a notifies() generator
    waits, and PgQueuer's driver waits on the same connection it queries, in 1 s windows. On
    one connection every dequeue and log write queues behind that window: about 1 s per
    pickup and a few jobs/s (what this bench measured before the split). With asyncpg, which
    PgQueuer prefers and which delivers notifications without a lock, one connection is fine.
    """
    from pgqueuer.db import PsycopgDriver

    if query_conn is None:
        return PsycopgDriver(conn)

    class SplitPsycopgDriver(PsycopgDriver):
        async def fetch(self, query: str, *args: object) -> list[dict[str, object]]:
            cur = psycopg.AsyncRawCursor(query_conn, row_factory=dict_row)
            await cur.execute(query, args or None)
            return await cur.fetchall()

        async def execute(self, query: str, *args: object) -> str:
            cur = psycopg.AsyncRawCursor(query_conn)
            await cur.execute(query, args or None)
            return cur.statusmessage or ""

    return SplitPsycopgDriver(conn)


FACTORIES: dict[str, Callable[[str], System]] = {
    "ours": Ours,
    "ours_v1": OursClaimV1,
    "procrastinate": Procrastinate,
    "pgqueuer": PgQueuer,
}


# ---- databases -------------------------------------------------------------------------------


def with_dbname(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


class Databases:
    """Fresh databases on one server, each dropped when done."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[str] = []

    async def create(self, label: str) -> str:
        name = f"bench_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        self.created.append(name)
        return name

    async def drop(self, name: str) -> None:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
        with contextlib.suppress(ValueError):
            self.created.remove(name)

    async def drop_all(self) -> None:
        for name in list(self.created):
            with contextlib.suppress(Exception):
                await self.drop(name)


@contextlib.asynccontextmanager
async def fresh_system(dbs: Databases, system: str, phase: str) -> Any:
    name = await dbs.create(f"{system}_{phase}")
    sut = FACTORIES[system](with_dbname(dbs.url, name))
    try:
        await sut.setup()
        await sut.open_enqueuer()
        yield sut
    finally:
        try:
            await sut.close()
        finally:
            await dbs.drop(name)


# ---- the two measurements --------------------------------------------------------------------


@dataclass
class Latency:
    samples_ms: list[float] = field(default_factory=list)
    lost: int = 0

    def pct(self, q: float) -> float:
        data = sorted(self.samples_ms)
        if not data:
            return float("nan")
        return (
            statistics.quantiles(data, n=100, method="inclusive")[int(q) - 1]
            if len(data) > 1
            else data[0]
        )


async def warm_up(sut: System) -> None:
    """Until a job is picked up within WARMUP_FAST of its commit (the notify path works), and
    at least three warm-ups have run (connections, caches, first-query planning)."""
    await sut.worker_ready()
    fast = 0
    for i in range(1, 40):
        key = -i
        waiter = REC.expect_key(key)
        await sut.enqueue(key)
        t0 = time.perf_counter()
        at = await asyncio.wait_for(waiter, PICKUP_TIMEOUT)
        fast = fast + 1 if at - t0 < WARMUP_FAST else 0
        await asyncio.sleep(LATENCY_PAUSE)
        if fast >= 3:
            return
    raise RuntimeError("no warm-up job was picked up quickly: LISTEN/NOTIFY seems not to work")


async def measure_latency(dbs: Databases, system: str, jobs: int) -> Latency:
    result = Latency()
    async with fresh_system(dbs, system, "lat") as sut:
        REC.reset()
        await sut.start_worker(LATENCY_CONCURRENCY)
        await warm_up(sut)
        for key in range(jobs):
            waiter = REC.expect_key(key)
            await sut.enqueue(key)
            t0 = time.perf_counter()
            try:
                at = await asyncio.wait_for(waiter, PICKUP_TIMEOUT)
            except TimeoutError:
                result.lost += 1
                continue
            result.samples_ms.append((at - t0) * 1000)
            await asyncio.sleep(LATENCY_PAUSE)
    return result


async def measure_throughput(dbs: Databases, system: str, jobs: int, concurrency: int) -> float:
    async with fresh_system(dbs, system, f"tp{concurrency}") as sut:
        await sut.enqueue_bulk(jobs)
        async with await psycopg.AsyncConnection.connect(sut.url, autocommit=True) as watch:
            await watch.execute("vacuum analyze")  # same starting point for every planner
            REC.reset(expect=jobs)
            t0 = time.perf_counter()
            await sut.start_worker(concurrency)
            async with asyncio.timeout(THROUGHPUT_TIMEOUT):
                await REC.all_started.wait()
                query = sut.done_query(jobs)
                while True:
                    row = await (await watch.execute(query)).fetchone()
                    if row and row[0] >= jobs:
                        break
                    await asyncio.sleep(0.002)
            elapsed = time.perf_counter() - t0
            await sut.stop_worker()
        missing = jobs - len([k for k in REC.started if k >= 0])
        if missing:
            raise RuntimeError(f"{missing} jobs never started")
    return jobs / elapsed


# ---- report ----------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b or a != a or b != b:
        return "-"
    return f"{a / b:.2f}x"


def report(
    systems: list[str],
    lat: dict[str, Latency],
    tp: dict[str, dict[int, list[float]]],
    errors: dict[str, str],
    args: argparse.Namespace,
    pg: str,
) -> None:
    head, rows = _table(systems, lat, tp)
    print()
    print(f"Postgres: {pg}")
    print(
        f"latency: {args.latency_jobs} jobs one at a time, concurrency {LATENCY_CONCURRENCY}, "
        f"polling {POLL_SECONDS:g} s, LISTEN/NOTIFY on; throughput: {args.jobs} no-op jobs "
        f"bulk-enqueued, then timed from worker start to all finished, {args.rounds} rounds"
    )
    print(
        "ratios: latency = peer / ours (>1: ours faster); throughput = ours / peer "
        "(>1: ours faster)"
    )
    _print_table(head, rows)
    if "ours" in systems:
        _print_targets(lat, tp)
    for s, note in NOTES.items():
        print(f"{LABELS[s]}: {note}")
    for s, why in errors.items():
        print(f"{LABELS[s]} could not be measured fully: {why}")


def _median(tp: dict[str, dict[int, list[float]]], s: str, c: int) -> float | None:
    runs = tp.get(s, {}).get(c)
    return statistics.median(runs) if runs else None


def _paired(tp: dict[str, dict[int, list[float]]], p: str, c: int) -> list[float]:
    """ours / peer round by round (each round ran them back to back)."""
    ours, peer = tp.get("ours", {}).get(c, []), tp.get(p, {}).get(c, [])
    return [a / b for a, b in zip(ours, peer, strict=False) if b]


def _pickup(lat: dict[str, Latency], s: str, q: float) -> float | None:
    return lat[s].pct(q) if s in lat and lat[s].samples_ms else None


def _table(
    systems: list[str], lat: dict[str, Latency], tp: dict[str, dict[int, list[float]]]
) -> tuple[list[str], list[list[str]]]:
    """The header and rows: one column per system, then (with ours) one ratio per peer."""
    peers = [s for s in systems if s != "ours"] if "ours" in systems else []
    head = ["metric"] + [LABELS[s] for s in systems] + [f"ours vs {LABELS[p]}" for p in peers]
    return head, _latency_rows(systems, peers, lat) + _throughput_rows(systems, peers, tp)


def _latency_rows(systems: list[str], peers: list[str], lat: dict[str, Latency]) -> list[list[str]]:
    rows: list[list[str]] = []
    for q in (50, 95, 99):
        row = [f"pickup p{q} (ms)"] + [fmt(_pickup(lat, s, q), 2) for s in systems]
        # peer / ours: above 1 means ours picks up faster
        row += [ratio(_pickup(lat, p, q), _pickup(lat, "ours", q)) for p in peers]
        rows.append(row)
    row = ["pickup max (ms)"] + [
        fmt(max(lat[s].samples_ms), 2) if s in lat and lat[s].samples_ms else "-" for s in systems
    ]
    rows.append(row + [""] * len(peers))
    row = ["pickup lost (>15 s)"] + [str(lat[s].lost) if s in lat else "-" for s in systems]
    rows.append(row + [""] * len(peers))
    return rows


def _throughput_rows(
    systems: list[str], peers: list[str], tp: dict[str, dict[int, list[float]]]
) -> list[list[str]]:
    rows: list[list[str]] = []
    for c in (1, 4):
        row = [f"no-op jobs/s, c={c}, median"] + [fmt(_median(tp, s, c), 0) for s in systems]
        # ours / peer: above 1 means ours is faster
        row += [ratio(_median(tp, "ours", c), _median(tp, p, c)) for p in peers]
        rows.append(row)
        row = ["  runs: min-max"] + [
            f"{min(tp[s][c]):,.0f}-{max(tp[s][c]):,.0f}" if tp.get(s, {}).get(c) else "-"
            for s in systems
        ]
        row += [f"{min(r):.2f}-{max(r):.2f}x" if (r := _paired(tp, p, c)) else "-" for p in peers]
        rows.append(row)
    return rows


def _print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    line = "  ".join("-" * w for w in widths)
    print(line)
    for i, r in enumerate([head, *rows]):
        print(
            "  ".join(
                v.ljust(w) if j == 0 else v.rjust(w)
                for j, (v, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if i == 0:
            print(line)
    print(line)


def _print_targets(lat: dict[str, Latency], tp: dict[str, dict[int, list[float]]]) -> None:
    print("targets:")
    p95 = _pickup(lat, "ours", 95)
    ok = p95 is not None and p95 <= P95_TARGET_MS
    print(
        f"  ours pickup p95 <= {P95_TARGET_MS:g} ms: {fmt(p95, 2)} ms -> "
        f"{'MET' if ok else 'MISSED'}"
    )
    for c in (1, 4):
        ours, peer = _median(tp, "ours", c), _median(tp, "procrastinate", c)
        if ours and peer:
            met = ours >= THROUGHPUT_TARGET * peer
            rounds = " ".join(f"{r:.2f}" for r in _paired(tp, "procrastinate", c))
            print(
                f"  ours >= {THROUGHPUT_TARGET:g}x Procrastinate at c={c}: "
                f"{ours / peer:.2f}x (medians; round by round {rounds}) -> "
                f"{'MET' if met else 'MISSED'}"
            )
        else:
            print(f"  ours >= {THROUGHPUT_TARGET:g}x Procrastinate at c={c}: not measured")


# ---- main ------------------------------------------------------------------------------------


def quiet_logging() -> None:
    from worker.log import configure

    configure("json", level=logging.WARNING)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for name in ("procrastinate", "pgqueuer", "psycopg", "psycopg.pool", "pgserver"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # "App is instantiated in the main Python module": true, and harmless for a script.
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def server_version(url: str) -> str:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        row = await (await conn.execute("select version()")).fetchone()
    return str(row[0]) if row else "?"


def loop_factory(system: str, choice: str) -> tuple[Callable[[], asyncio.AbstractEventLoop], str]:
    """The event loop a system runs on: with --loop cli, the one its own command line uses
    (`video-worker run` and `pgq run`: uvloop when installed; `procrastinate worker`:
    asyncio's); otherwise the one asked for, for all three alike."""
    if choice == "cli":
        choice = "asyncio" if system == "procrastinate" else "uvloop"
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            choice = "asyncio"
        else:
            return uvloop.new_event_loop, "uvloop"
    return asyncio.new_event_loop, "asyncio"


def measure(system: str, phase: str | int, args: argparse.Namespace, url: str) -> Any:
    """One phase of one system, on a fresh event loop of the kind that system runs on."""
    factory, _ = loop_factory(system, args.loop)

    async def go() -> Any:
        dbs = Databases(url)
        try:
            if phase == "latency":
                return await measure_latency(dbs, system, args.latency_jobs)
            return await measure_throughput(dbs, system, args.jobs, int(phase))
        finally:
            await dbs.drop_all()

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(go())


def run(args: argparse.Namespace, url: str, origin: str) -> int:
    systems = list(args.only or SYSTEMS)
    if args.claim_v1:
        systems.insert(1, "ours_v1")
    load_start = load()
    pg = f"{asyncio.run(server_version(url))} [{origin}]"
    print(f"Postgres: {pg}", flush=True)
    lat: dict[str, Latency] = {}
    tp: dict[str, dict[int, list[float]]] = {}
    errors: dict[str, str] = {}
    # Phase by phase and round by round, each system in turn: a change in the machine's load
    # during the run then falls on all three alike rather than on whichever ran at that moment.
    phases: list[tuple[str | int, int]] = [("latency", 1)]
    phases += [(c, r) for r in range(1, args.rounds + 1) for c in (1, 4)]
    for phase, round_no in phases:
        for system in systems:
            if system in errors:
                continue
            what = "latency" if phase == "latency" else f"throughput c={phase} round {round_no}"
            t0 = time.perf_counter()
            print(f"  {LABELS[system]}: {what} ...", end=" ", flush=True)
            try:
                result = measure(system, phase, args, url)
                if phase == "latency":
                    lat[system] = result
                    print(f"done in {time.perf_counter() - t0:.1f} s", flush=True)
                else:
                    tp.setdefault(system, {}).setdefault(int(phase), []).append(result)
                    print(f"{result:,.0f} jobs/s", flush=True)
            except Exception as exc:  # a peer that cannot run must not stop the others
                why = f"{what}: {type(exc).__name__}: {exc}".strip()[:300]
                errors[system] = why
                print(f"FAILED ({why})", flush=True)
    for system in systems:
        NOTES.setdefault(system, "")
        loop = loop_factory(system, args.loop)[1]
        NOTES[system] = f"event loop {loop}" + (f"; {NOTES[system]}" if NOTES[system] else "")
    report(systems, lat, tp, errors, args, pg)
    print(
        f"machine: {os.cpu_count()} CPUs; load average at start {load_start}, at end "
        f"{load()} (the figures are only comparable within one quiet run)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="no-op jobs per throughput run")
    parser.add_argument(
        "--latency-jobs",
        type=int,
        default=200,
        help="jobs enqueued one at a time for pickup latency",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="server to use (default: $DATABASE_URL, else an embedded pgserver)",
    )
    parser.add_argument(
        "--only", choices=SYSTEMS, nargs="+", help="measure these systems only (default: all)"
    )
    parser.add_argument(
        "--claim-v1",
        action="store_true",
        help="also video-worker on the claim of before fair share (video_jobs_claim_v1)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="throughput runs per system and concurrency"
    )
    parser.add_argument(
        "--loop",
        choices=("cli", "asyncio", "uvloop"),
        default="cli",
        help="event loop: each system's own command line's (default), or one for all",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.latency_jobs < 2 or args.rounds < 1:
        parser.error("--jobs and --rounds must be >= 1, --latency-jobs >= 2")
    quiet_logging()
    if args.database_url:
        parts = conninfo_to_dict(args.database_url)
        where = parts.get("host") or "local socket"
        return run(args, args.database_url, f"from --database-url/DATABASE_URL, host {where}")
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # platformdirs, via pgserver
    import pgserver

    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
        pgdata = Path(tmp) / "pgdata"
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        try:
            from importlib.metadata import version

            origin = (
                f"embedded: pgserver {version('pgserver')} wheel, started for this run in {pgdata}"
            )
            return run(args, str(server.get_uri()), origin)
        finally:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
