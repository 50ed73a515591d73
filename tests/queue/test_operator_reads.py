"""What /stats, /metrics and the dashboard read costs the same at a million rows: active
statuses exact through the status index, finished ones estimated from planner statistics on a
large table and labelled so, recent failures through an index of their own. (The cost itself is
measured by bench/bench_stats.py, not here.)"""

from __future__ import annotations

import pytest

from tests.queue.test_store import sql
from worker.queue.postgres import FINISHED

FINISHED_ROWS = (
    "insert into video_jobs (payload, status, completed_at, error) "
    "select '{}', s, now() - g * interval '1 second', "
    "case when s = 'failed' then 'failure ' || g end "
    "from (values ('completed', 120), ('failed', 50), ('cancelled', 30)) as v(s, n), "
    "generate_series(1, n) as g"
)


async def test_a_small_table_is_counted_exactly(store):
    await sql(store, FINISHED_ROWS)
    for _ in range(3):
        await store.enqueue({})
    counts = await store.queue_counts()
    assert counts.estimated == frozenset()
    assert counts.counts == {
        "pending": 3,
        "processing": 0,
        "completed": 120,
        "failed": 50,
        "cancelled": 30,
    }


async def test_a_large_table_estimates_finished_jobs_and_counts_active_ones(store):
    await sql(store, FINISHED_ROWS)
    await sql(store, "analyze video_jobs")
    # rows that arrive after ANALYZE: the estimate cannot see them, the exact counts must
    for _ in range(4):
        await store.enqueue({})
    [claimed] = await store.claim("w", 1)
    assert claimed
    await sql(store, FINISHED_ROWS.replace("120", "1"))  # statistics now stale: still estimates

    counts = await store.queue_counts(exact_below=100)  # 200 rows counts as large here
    assert counts.estimated == FINISHED
    assert (counts.counts["pending"], counts.counts["processing"]) == (3, 1)
    # ANALYZE sampled every row, so the estimate is each status's share of the 200 it saw
    # (plus the four active rows it did not) times the row estimate: close to the truth.
    assert counts.counts["completed"] == pytest.approx(120, abs=3)
    assert counts.counts["failed"] == pytest.approx(50, abs=3)
    assert counts.counts["cancelled"] == pytest.approx(30, abs=3)


async def test_stats_and_metrics_label_estimates(store):
    from tests.queue.helpers import fast_settings
    from tests.test_http import get, http
    from worker.queue.runner import Runner

    async def noop(_job, _ctx):
        return None

    await sql(
        store,
        "insert into video_jobs (payload, status, completed_at) "
        "select '{}', 'completed', now() from generate_series(1, 12000)",
    )
    await sql(store, "analyze video_jobs")
    runner = Runner(fast_settings(), store, noop, listen=False)
    async with http(runner) as session:
        status, body = await get(session, "/stats")
        assert status == 200
        assert body["queue_estimated"] == ["cancelled", "completed", "failed"]
        assert body["queue"]["completed"] == pytest.approx(12000, rel=0.05)
        status, text = await get(session, "/metrics")
    assert 'video_worker_queue_jobs_estimated{status="completed"} 1.0' in text
    assert 'video_worker_queue_jobs_estimated{status="pending"} 0.0' in text


async def test_recent_failures_read_their_own_index(store):
    await sql(store, FINISHED_ROWS)
    await sql(store, "analyze video_jobs")
    newest = await store.recent_failures(3)
    assert [r["error"] for r in newest] == ["failure 1", "failure 2", "failure 3"]
    from worker.queue.queries import QUERIES

    query = QUERIES["recent_failures"].replace("%(limit)s", "10")
    async with store.pool.connection() as conn, conn.transaction():
        await conn.execute("set local enable_seqscan = off")  # a tiny table: force the choice
        await conn.execute("set local enable_bitmapscan = off")
        cur = await conn.execute("explain " + query)
        plan = "\n".join(r["QUERY PLAN"] for r in await cur.fetchall())
    assert "video_jobs_failed_idx" in plan and "Sort" not in plan, plan
