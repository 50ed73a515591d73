"""`cleanup --delete-files`: remove old finished jobs together with the video, poster and
captions file they stored, on whichever storage backend the settings name.

Files go first, rows after: a row whose files could not be deleted stays, so the next
cleanup tries again instead of leaving objects nobody can find. Each job's bucket comes from
its `result.bucket` (the bucket it was written to, even if STORAGE_BUCKET changed since), its
keys from `result.storage_path` and `result.thumbnail_path`. An object that another job
still records (an app that renders to the same output.path again) is left alone: it is that
job's video now.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from worker.errors import WorkerError
from worker.log import get_logger
from worker.queue.postgres import PostgresJobStore
from worker.queue.queries import QUERIES as Q
from worker.settings import Settings
from worker.storage import Storage, make_storage

BATCH = 200

log = get_logger("video-worker.cleanup")


@dataclass
class Freed:
    rows: int = 0
    objects: int = 0
    bytes: int = 0
    unknown_sizes: int = 0  # posters, captions on backends that cannot tell a size unasked
    in_use: int = 0  # objects left because a job that stays records the same key
    failed: list[str] = field(default_factory=list)
    deleted: set[tuple[str, str]] = field(default_factory=set)

    def summary(self, days: int) -> str:
        text = (
            f"removed {self.rows} finished job(s) older than {days} day(s) and "
            f"{self.objects} stored object(s), freeing {self.bytes} bytes"
        )
        if self.unknown_sizes:
            text += f" (plus {self.unknown_sizes} poster(s) of unknown size)"
        if self.in_use:
            text += f"; left {self.in_use} object(s) that newer jobs still use"
        if self.failed:
            text += f"; kept {len(self.failed)} job(s) whose files could not be deleted: "
            text += "; ".join(self.failed[:5])
        return text


async def delete_finished(store: PostgresJobStore, settings: Settings, days: int) -> Freed:
    freed = Freed()
    buckets: dict[str, Storage] = {}
    kept: set[uuid.UUID] = set()
    while True:
        rows = [r for r in await _candidates(store, days, BATCH + len(kept)) if r["id"] not in kept]
        if not rows:
            return freed
        done = []
        in_use = await _keys_in_use(store, rows)
        for row in rows:
            if await _delete_files(row, settings, buckets, freed, in_use):
                done.append(row["id"])
            else:
                kept.add(row["id"])
        freed.rows += await _delete_rows(store, done)


async def _candidates(store: PostgresJobStore, days: int, limit: int) -> list[dict[str, Any]]:
    async with store.pool.connection() as conn:
        cur = await conn.execute(Q["cleanup_candidates"], {"days": days, "limit": limit})
        rows: list[dict[str, Any]] = await cur.fetchall()
        return rows


async def _keys_in_use(store: PostgresJobStore, rows: list[dict[str, Any]]) -> set[str]:
    keys = [k for r in rows for k in _keys(r) if k]
    if not keys:
        return set()
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            Q["cleanup_keys_in_use"], {"keys": keys, "ids": [r["id"] for r in rows]}
        )
        return {r["key"] for r in await cur.fetchall()}


def _keys(row: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """The video's, the poster's and the captions' (WebVTT) keys, when the job stored them."""
    result = row["result"] if isinstance(row["result"], dict) else {}
    keys = (result.get(name) for name in ("storage_path", "thumbnail_path", "captions_path"))
    video, poster, captions = (k if isinstance(k, str) and k else None for k in keys)
    return video, poster, captions


async def _delete_rows(store: PostgresJobStore, ids: list[uuid.UUID]) -> int:
    if not ids:
        return 0
    async with store.pool.connection() as conn:
        cur = await conn.execute(Q["cleanup_delete"], {"ids": ids})
        return len(await cur.fetchall())


async def _delete_files(
    row: dict[str, Any],
    settings: Settings,
    buckets: dict[str, Storage],
    freed: Freed,
    in_use: set[str],
) -> bool:
    """Delete the job's video, poster and captions; False (and a note in `freed`) if one
    failed."""
    result = row["result"] if isinstance(row["result"], dict) else {}
    video, poster, captions = _keys(row)
    if video is None:
        return True  # failed or cancelled before anything was stored
    try:
        storage = _storage_for(result.get("bucket"), settings, buckets)
        size = int(result.get("bytes") or 0)
        await _delete_one(storage, video, size, freed, in_use)
        for extra in (poster, captions):
            if extra is not None:
                await _delete_one(storage, extra, _local_size(storage, extra), freed, in_use)
    except (WorkerError, ValueError) as exc:
        freed.failed.append(f"{row['id']}: {exc}")
        return False
    return True


async def _delete_one(
    storage: Storage, key: str, size: int | None, freed: Freed, in_use: set[str]
) -> None:
    if key in in_use:
        freed.in_use += 1
        return
    if (storage.bucket, key) in freed.deleted:
        return  # two old jobs wrote the same key: one object, counted once
    await storage.delete(key)
    freed.deleted.add((storage.bucket, key))
    freed.objects += 1
    if size is None:
        freed.unknown_sizes += 1
    else:
        freed.bytes += size


def _storage_for(bucket: Any, settings: Settings, buckets: dict[str, Storage]) -> Storage:
    """The configured backend, pointed at the bucket the job wrote to."""
    name = bucket if isinstance(bucket, str) and bucket else None
    name = name or (settings.s3_bucket if settings.storage_backend == "s3" else None)
    name = name or settings.storage_bucket
    if name not in buckets:
        if settings.storage_backend == "s3":
            buckets[name] = make_storage(replace(settings, s3_bucket=name))
        else:
            buckets[name] = make_storage(replace(settings, storage_bucket=name))
    return buckets[name]


def _local_size(storage: Storage, key: str) -> int | None:
    """A poster's or captions file's size where the backend is this machine's disk; None
    elsewhere (a HEAD request per file would double the requests for a figure the summary can
    do without)."""
    path_for = getattr(storage, "path_for", None)
    if path_for is None:
        return None
    try:
        return int(path_for(key).stat().st_size)
    except (OSError, ValueError):
        return 0


class AutoCleanup:
    """With AUTO_CLEANUP=true the worker itself removes finished jobs older than
    RETENTION_DAYS together with their files, about once an hour, from its periodic sweep.

    The seed's cost advice is to delete old videos, not only rows; pg_cron's scheduled SQL
    (docs/production.md) can only delete rows, since storage objects are not in the database.
    Every replica may run it: each step is idempotent (a second replica finds the rows and
    objects already gone), so no lock is needed, and the hour is counted per replica."""

    EVERY = 3600.0

    def __init__(self, settings: Settings, store: PostgresJobStore, clock: Any = None) -> None:
        import time

        self._settings = settings
        self._store = store
        self._clock = clock or time.monotonic
        self._last = float("-inf")

    async def maybe_run(self) -> Freed | None:
        if not self._settings.auto_cleanup or self._clock() - self._last < self.EVERY:
            return None
        self._last = self._clock()
        freed = await delete_finished(self._store, self._settings, self._settings.retention_days)
        log.info("auto_cleanup", summary=freed.summary(self._settings.retention_days))
        return freed
