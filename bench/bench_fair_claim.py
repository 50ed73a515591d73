"""The fair-share claim's cost against the claim it replaced, run by hand (never a test).

    .venv/bin/python bench/bench_fair_claim.py [--finished 1000000] [--pending 10000]
        [--users 1000] [--repeat 300] [--database-url URL]

One run, one Postgres (DATABASE_URL, or an embedded pgserver started for the run), one fresh
database holding `--finished` finished rows, vacuumed and analyzed. For each shape of the pending
queue below, the median wall time of one claim of one job as the worker sends it (one round
trip, on one connection), by `video_jobs_claim_v1` (first come, first served) and by
`video_jobs_claim_v2` (turns and the running cap, sql/007_fair_share.sql), alternating, each
claim rolled back so that every call meets the same queue. The target is at most 1.5x.

- users: `--pending` jobs over `--users` users in random order, 4 users with one job running;
- capped first: the same, but the 100 oldest pending jobs are one user's, who has 2 running (the
  claim skips them);
- backend: `--pending` jobs without user_id, 4 of them running (bench_queue.py's shape).

Then, on the same database, what the turns are for (the target is at most one job's duration
+ 50 ms): a real worker (worker.queue.runner.Runner, LISTEN/NOTIFY on, polling 5 s) at
concurrency 2 = MAX_RUNNING_PER_USER, one user's `--backlog` jobs of `--job-seconds` each
keeping both slots busy, and `--trials` times a job of a new user, who has nothing running: the
time from its insert's commit to its handler's first line. claim_v1 would start it after the
whole backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from worker.db.connection import connect  # noqa: E402
from worker.db.migrate import migrate  # noqa: E402

FINISHED = """
insert into public.video_jobs (payload, status, attempts, completed_at, user_id)
select '{"clips": [{"url": "https://cdn.example.com/a.mp4"}]}'::jsonb, 'completed', 1,
       now() - (g %% 1000) * interval '1 minute',
       case when g %% 3 = 0 then null else md5((g %% 1000)::text)::uuid end
from generate_series(1, %(n)s) as g
"""
# Pending rows, inserted by the owner: the pending cap's trigger counts per user, fine at 10.
PENDING_USERS = """
insert into public.video_jobs (payload, user_id)
select '{}', md5((u %% %(users)s)::text)::uuid
from (select g as u from generate_series(1, %(n)s) as g order by random()) as s
"""
PENDING_BACKEND = """
insert into public.video_jobs (payload) select '{}' from generate_series(1, %(n)s)
"""
CLAIMS = {
    "v1": "select id from public.video_jobs_claim_v1('bench', 1, 1048576)",
    "v2": "select id from public.video_jobs_claim_v2('bench', 1, 1048576)",
}


async def reset_queue(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("delete from public.video_jobs where status in ('pending', 'processing')")


async def shape_users(conn: psycopg.AsyncConnection[Any], pending: int, users: int) -> None:
    await reset_queue(conn)
    await conn.execute(PENDING_USERS, {"n": pending, "users": users})
    for _ in range(4):  # four users with one job running
        await conn.execute(
            "update public.video_jobs set status = 'processing', attempts = 1, "
            "heartbeat_at = now() where id = (select id from public.video_jobs "
            "where status = 'pending' and user_id not in (select user_id from public.video_jobs "
            "where status = 'processing') order by seq limit 1)"
        )


async def shape_capped_first(conn: psycopg.AsyncConnection[Any], pending: int, users: int) -> None:
    await shape_users(conn, pending - 102, users)
    hog = uuid.uuid4()
    await conn.execute(
        "insert into public.video_jobs (payload, user_id, run_at) "
        "select '{}', %s, now() - interval '1 hour' from generate_series(1, 102)",
        (hog,),
    )
    await conn.execute(
        "update public.video_jobs set status = 'processing', heartbeat_at = now() "
        "where id in (select id from public.video_jobs where user_id = %s limit 2)",
        (hog,),
    )


async def shape_backend(conn: psycopg.AsyncConnection[Any], pending: int, _users: int) -> None:
    await reset_queue(conn)
    await conn.execute(PENDING_BACKEND, {"n": pending})
    await conn.execute(
        "update public.video_jobs set status = 'processing', heartbeat_at = now() "
        "where id in (select id from public.video_jobs where status = 'pending' limit 4)"
    )


SHAPES = {"users": shape_users, "capped first": shape_capped_first, "backend": shape_backend}
WAIT_SLACK = 0.050  # the target: at most one job's duration + 50 ms


async def until(ready: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} after {seconds:g} s")
        await asyncio.sleep(0.01)


class BacklogWorker:
    """A Runner at concurrency 2 = MAX_RUNNING_PER_USER whose handler sleeps `seconds` for the
    hog's jobs and notes when any other job started."""

    def __init__(self, url: str, hog: uuid.UUID, seconds: float) -> None:
        self.url, self.hog, self.seconds = url, hog, seconds
        self.started: dict[int, asyncio.Future[float]] = {}

    async def handler(self, job: Any, ctx: Any) -> None:
        at = time.perf_counter()
        if job.user_id == self.hog:
            await asyncio.sleep(self.seconds)
            return
        self.started[job.payload["k"]].set_result(at)

    async def __aenter__(self) -> BacklogWorker:
        from worker.db.connection import make_pool
        from worker.queue.postgres import PostgresJobStore
        from worker.queue.runner import Runner
        from worker.settings import Settings

        settings = replace(
            Settings(),
            concurrency=2,
            max_running_per_user=2,
            max_pending_per_user=100_000,
            poll_interval_ms=5000,
            worker_id="bench-wait",
            port=0,
        )
        self.pool = make_pool(self.url, max_size=8)
        await self.pool.open(wait=True)
        self.store = PostgresJobStore(self.pool)
        self.runner = Runner(settings, self.store, self.handler, database_url=self.url)
        self.task = asyncio.create_task(self.runner.run())
        await until(lambda: self.runner.listener_state == "listening", "the worker listening")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.runner.request_stop()
        await self.task
        await self.pool.close()

    async def hog_running(self) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select count(*) as n from public.video_jobs "
                "where status = 'processing' and user_id = %s",
                (self.hog,),
            )
            row = await cur.fetchone()
        return int(row["n"]) if row else 0

    async def one_wait(self, k: int) -> float:
        """A new user's job, inserted at a random moment of the hog's jobs: seconds to start."""
        await asyncio.sleep(random.uniform(0, self.seconds))
        self.started[k] = asyncio.get_running_loop().create_future()
        await self.store.enqueue({"k": k}, user_id=uuid.uuid4())
        t0 = time.perf_counter()
        return await asyncio.wait_for(self.started[k], 10 * self.seconds + 5) - t0


async def wait_behind_backlog(url: str, backlog: int, seconds: float, trials: int) -> list[float]:
    hog = uuid.uuid4()
    conn = await connect(url)
    await conn.execute(
        "insert into public.video_jobs (payload, user_id) "
        "select '{\"k\": -1}', %s from generate_series(1, %s)",
        (hog, backlog),
    )
    await conn.execute("vacuum analyze public.video_jobs")
    await conn.close()
    async with BacklogWorker(url, hog, seconds) as worker:
        deadline = time.monotonic() + 10
        while await worker.hog_running() < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not start the backlog's jobs")
            await asyncio.sleep(0.01)
        return [await worker.one_wait(k) for k in range(trials)]


async def print_wait_behind_backlog(url: str, args: argparse.Namespace) -> None:
    waits = await wait_behind_backlog(url, args.backlog, args.job_seconds, args.trials)
    target = args.job_seconds + WAIT_SLACK
    worst = max(waits)
    print(
        f"a user with nothing running, behind {args.backlog} jobs of another "
        f"({args.job_seconds * 1000:.0f} ms each, concurrency 2 = MAX_RUNNING_PER_USER), "
        f"{args.trials} trials: wait median {statistics.median(waits) * 1000:.0f} ms, "
        f"max {worst * 1000:.0f} ms (target <= {target * 1000:.0f} ms: "
        f"{'MET' if worst <= target else 'MISSED'})"
    )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def one_claim_us(conn: psycopg.AsyncConnection[Any], query: str) -> float:
    await conn.execute("begin")
    t0 = time.perf_counter()
    cur = await conn.execute(query)
    rows = await cur.fetchall()
    elapsed = time.perf_counter() - t0
    await conn.execute("rollback")
    assert len(rows) == 1, rows
    return elapsed * 1e6


async def measure(url: str, repeat: int) -> dict[str, float]:
    conn = await connect(url)
    try:
        samples: dict[str, list[float]] = {name: [] for name in CLAIMS}
        for _ in range(20):  # warm both plans and the cache
            for query in CLAIMS.values():
                await one_claim_us(conn, query)
        for _ in range(repeat):
            for name, query in CLAIMS.items():
                samples[name].append(await one_claim_us(conn, query))
        return {name: statistics.median(s) for name, s in samples.items()}
    finally:
        await conn.close()


async def run(admin_url: str, args: argparse.Namespace) -> None:
    finished, pending, users, repeat = args.finished, args.pending, args.users, args.repeat
    print(f"load average at the start: {load()}", flush=True)
    name = f"vw_bench_fair_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = make_conninfo(admin_url, dbname=name)
    try:
        conn = await connect(url)
        await migrate(conn)
        # the shapes below insert as a backend would, past the default pending cap
        await conn.execute("update public.video_jobs_settings set max_pending_per_user = 100000")
        t0 = time.perf_counter()
        await conn.execute(FINISHED, {"n": finished})
        print(f"{finished} finished rows in {time.perf_counter() - t0:.0f} s", flush=True)
        print(f"{'queue':<14} {'v1 µs':>8} {'v2 µs':>8} {'v2/v1':>6}")
        for label, shape in SHAPES.items():
            await shape(conn, pending, users)
            await conn.execute("vacuum analyze public.video_jobs")
            medians = await measure(url, repeat)
            ratio = medians["v2"] / medians["v1"]
            print(f"{label:<14} {medians['v1']:>8.0f} {medians['v2']:>8.0f} {ratio:>6.2f}x")
        await reset_queue(conn)
        await conn.close()
        await print_wait_behind_backlog(url, args)
        print(f"load average at the end: {load()} (compare figures within one run only)")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--job-seconds", type=float, default=0.2)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    from worker.log import configure

    configure("json", level=logging.WARNING)  # the worker of the wait's row logs every job
    if args.database_url:
        asyncio.run(run(args.database_url, args))
        return 0
    import pgserver

    with tempfile.TemporaryDirectory(prefix="vw-bench-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            asyncio.run(run(server.get_uri(), args))
        finally:
            server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
