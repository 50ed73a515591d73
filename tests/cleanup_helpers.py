"""Finished jobs with stored files, for the `cleanup` tests (local storage and S3)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from worker.queue.postgres import PostgresJobStore


async def finished_job(
    store: PostgresJobStore,
    *,
    days_ago: float,
    status: str = "completed",
    result: dict[str, Any] | None = None,
) -> uuid.UUID:
    """A job that ended `days_ago` days ago, with `result` as the pipeline would write it."""
    job_id, _ = await store.enqueue({"clips": [{"url": "https://cdn.example.com/a.mp4"}]})
    async with store.pool.connection() as conn:
        await conn.execute(
            "update video_jobs set status = %s, result = %s::jsonb,"
            " completed_at = now() - make_interval(secs => %s) where id = %s",
            (status, json.dumps(result) if result else None, days_ago * 86400, job_id),
        )
    return job_id


def stored(
    key: str, size: int, bucket: str, poster: str | None = None, captions: str | None = None
) -> dict[str, Any]:
    result = {"storage_path": key, "bucket": bucket, "bytes": size, "thumbnail_path": poster}
    return result | ({"captions_path": captions} if captions else {})


async def job_ids(store: PostgresJobStore) -> set[uuid.UUID]:
    async with store.pool.connection() as conn:
        cur = await conn.execute("select id from video_jobs")
        return {r["id"] for r in await cur.fetchall()}
