"""Whether any replica works on the queue, from what the database already records.

No registry table: a claim and every heartbeat set `heartbeat_at` on the running job, and a
finished job has `completed_at`. `enqueue --wait` asks this when its job sits ready.
"""

from __future__ import annotations

import uuid

from worker.queue.postgres import PostgresJobStore
from worker.queue.queries import QUERIES as Q


async def worker_seen(store: PostgresJobStore, seconds: int) -> bool:
    """A claim, a heartbeat or a finished job within the last `seconds`."""
    async with store.pool.connection() as conn:
        cur = await conn.execute(Q["worker_seen"], {"seconds": seconds})
        row = await cur.fetchone()
    return bool(row and row["seen"])


async def scheduled_later(store: PostgresJobStore, job_id: uuid.UUID) -> bool:
    """The job waits for its run_at (a retry's backoff): no replica should take it yet."""
    async with store.pool.connection() as conn:
        cur = await conn.execute(Q["job_scheduled_later"], {"id": job_id})
        row = await cur.fetchone()
    return bool(row and row["later"])
