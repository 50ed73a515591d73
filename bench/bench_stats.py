"""What the operator's reads cost as history grows, run by hand (never a test).

    .venv/bin/python bench/bench_stats.py [--small 1000] [--large 1000000] [--repeat 40]
        [--database-url URL]

One run, one Postgres (DATABASE_URL, or an embedded pgserver started for the run). Two fresh
databases, each migrated, holding `--small` and `--large` finished rows (completed, failed and
cancelled over the last 30 days) plus the same 20 pending and 4 processing jobs, vacuumed and
analyzed as autovacuum would leave them. For each, the median wall time of every read behind
the operator's pages: the store's queue counts, recent failures and oldest ready job, and the
real HTTP endpoints /stats and /metrics of a worker's app (served on 127.0.0.1, fetched with
aiohttp). The last column is large/small: the target is at most 2x.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from worker.db.connection import connect, make_pool  # noqa: E402
from worker.db.migrate import migrate  # noqa: E402
from worker.http.server import bound_port, create_app, serve  # noqa: E402
from worker.queue.postgres import PostgresJobStore  # noqa: E402
from worker.queue.runner import Runner  # noqa: E402
from worker.settings import Settings  # noqa: E402

FILL = """
insert into public.video_jobs (payload, status, attempts, created_at, started_at, completed_at,
                               error, result)
select '{"clips": [{"url": "https://cdn.example.com/a.mp4"}]}'::jsonb,
       case when g %% 50 = 0 then 'failed' when g %% 97 = 0 then 'cancelled' else 'completed' end,
       1, t - interval '1 minute', t - interval '1 minute', t,
       case when g %% 50 = 0 then 'clips[0]: the URL returned 404 Not Found' end,
       case when g %% 50 <> 0 and g %% 97 <> 0 then '{"bytes": 1000000}'::jsonb end
from generate_series(1, %(n)s) as g,
     lateral (select now() - (g::float8 / %(n)s) * interval '30 days' as t) as at
"""
ACTIVE = """
insert into public.video_jobs (payload, status, attempts, worker_id, lease_token, heartbeat_at)
select '{"clips": [{"url": "https://cdn.example.com/a.mp4"}]}'::jsonb,
       case when g <= 4 then 'processing' else 'pending' end,
       case when g <= 4 then 1 else 0 end,
       case when g <= 4 then 'bench' end,
       case when g <= 4 then gen_random_uuid() end,
       case when g <= 4 then now() end
from generate_series(1, 24) as g
"""


async def build(admin_url: str, name: str, rows: int) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = make_conninfo(admin_url, dbname=name)
    conn = await connect(url)
    try:
        await migrate(conn)
        await conn.execute(FILL, {"n": rows})
        await conn.execute(ACTIVE)
        await conn.execute("vacuum analyze public.video_jobs")
    finally:
        await conn.close()
    return url


async def median_ms(fn: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await fn()  # warm caches and plans
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def measure(url: str, repeat: int) -> dict[str, float]:
    pool = make_pool(url, max_size=4)
    await pool.open(wait=True)
    store = PostgresJobStore(pool)

    async def noop(_job: Any, _ctx: Any) -> None:
        return None

    runner = Runner(Settings(worker_id="bench", port=0), store, noop, listen=False)
    site = await serve(create_app(runner.status), 0, host="127.0.0.1")
    base = f"http://127.0.0.1:{bound_port(site)}"
    figures: dict[str, float] = {}
    try:
        async with aiohttp.ClientSession() as http:

            async def get(path: str) -> None:
                async with http.get(base + path) as resp:
                    assert resp.status == 200, (path, resp.status)
                    await resp.read()

            reads: dict[str, Callable[[], Awaitable[Any]]] = {
                "store.counts()": store.counts,
                "store.recent_failures(10)": lambda: store.recent_failures(10),
                "store.oldest_pending_seconds()": store.oldest_pending_seconds,
                "GET /stats": lambda: get("/stats"),
                "GET /metrics": lambda: get("/metrics"),
            }
            for name, fn in reads.items():
                figures[name] = await median_ms(fn, repeat)
    finally:
        await site.cleanup()
        await pool.close()
    return figures


async def run(admin_url: str, small: int, large: int, repeat: int) -> None:
    tag = uuid.uuid4().hex[:6]
    names = {small: f"bench_stats_{small}_{tag}", large: f"bench_stats_{large}_{tag}"}
    results: dict[int, dict[str, float]] = {}
    try:
        for rows, name in names.items():
            started = time.perf_counter()
            url = await build(admin_url, name, rows)
            print(f"built {rows:>9,} finished rows in {time.perf_counter() - started:.1f} s")
            results[rows] = await measure(url, repeat)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for name in names.values():
                admin.execute(f'drop database if exists "{name}" with (force)')
    print(f"\nmedian of {repeat} calls, ms | {small:,} rows | {large:,} rows | ratio")
    for read in results[small]:
        a, b = results[small][read], results[large][read]
        print(f"{read:<32} | {a:8.2f} | {b:8.2f} | {b / a:5.2f}x")
    print(f"\nload average: {os.getloadavg()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(run(args.database_url, args.small, args.large, args.repeat))
        return 0
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")
        try:
            asyncio.run(run(str(server.get_uri()), args.small, args.large, args.repeat))
        finally:
            server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
