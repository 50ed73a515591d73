"""The outbox's statements (queries.sql, beside this file) over the worker's connection pool.

A delivery's state lives on the job's row (`webhook_attempts`, `webhook_next_at`,
`webhook_delivered_at`, `webhook_error`; sql/002_webhook_deliveries.sql), so there is no second
table to keep in step with `video_jobs`. Each method is one short autocommit statement.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from worker.db.queries import load

QUERIES = load(Path(__file__).with_name("queries.sql"))


class OutboxStore:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def _all(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(QUERIES[name], params)
            return await cur.fetchall() if cur.description else []

    async def claim(
        self, job_id: uuid.UUID, *, lease: float, max_rounds: int
    ) -> dict[str, Any] | None:
        """Take the job's next delivery round for `lease` seconds: its row, or None when it
        was delivered already, is not due, or another replica has it."""
        rows = await self._all(
            "webhook_claim", {"id": job_id, "lease": lease, "max_rounds": max_rounds}
        )
        return rows[0] if rows else None

    async def delivered(self, job_id: uuid.UUID) -> None:
        await self._all("webhook_delivered", {"id": job_id})

    async def failed(
        self, job_id: uuid.UUID, error: str, *, delay: float, max_rounds: int, final: bool = False
    ) -> None:
        """Record a failed round; `final` gives the delivery up (no later round can help)."""
        await self._all(
            "webhook_failed",
            {
                "id": job_id,
                "error": error,
                "delay": delay,
                "max_rounds": max_rounds,
                "final": final,
            },
        )

    async def due(self, *, max_rounds: int, limit: int = 20) -> list[uuid.UUID]:
        """Jobs whose next round is due, or whose first round never ran (its replica died)."""
        rows = await self._all("webhook_due", {"max_rounds": max_rounds, "limit": limit})
        return [r["id"] for r in rows]
