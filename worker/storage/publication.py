"""Publishing one attempt's objects, and undoing exactly that when the attempt fails.

A publish may write over an object at its own key (a retried job replaces its earlier
output: Supabase uploads upsert, S3 and local storage replace), but undoing it must never
remove an object this attempt did not create: another job's video at the same key, or this
job's poster from an attempt that completed before. So each key is recorded as created
only when no object was there just before this attempt wrote it, and `undo` deletes only
those. Every key is checked against the job's `Tenancy` before anything is sent.

What is left open: another writer that stores an object at the same key between our
existence check and our upload (two attempts of one job, or two jobs of one owner, naming
one key at the same instant) is taken for ours, and removed if this attempt then fails.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from worker.log import get_logger
from worker.storage.base import VIDEO_MP4, ByteProgress, Storage, StoredObject
from worker.storage.tenancy import Tenancy

log = get_logger("video-worker.storage")


class Publication:
    """The objects one attempt publishes into `storage`, under `tenancy`'s rule."""

    def __init__(self, storage: Storage, tenancy: Tenancy) -> None:
        self.storage = storage
        self.tenancy = tenancy
        self.created: list[str] = []
        self.replaced: list[str] = []

    async def put(
        self,
        path: Path,
        key: str,
        content_type: str = VIDEO_MP4,
        *,
        on_bytes: ByteProgress | None = None,
    ) -> StoredObject:
        """Publish `path` at `key`; remember it as created if nothing was there before."""
        self.tenancy.check_write(key)
        if await self.storage.exists(key):
            self.replaced.append(key)
        else:
            self.created.append(key)  # before the upload: a cancel mid-upload must clean up
        return await self.storage.upload(path, key, content_type, on_bytes=on_bytes)

    async def undo(self) -> None:
        """Delete what this attempt created, newest first; best effort, and shielded, since
        it runs while the job is being cancelled. Replaced objects stay."""
        while self.created:
            key = self.created.pop()
            try:
                await asyncio.shield(self.storage.delete(key))
            except Exception as exc:  # the job's own error matters more than this one
                log.warning("unpublish_failed", key=key, error=str(exc))
        if self.replaced:
            log.info("unpublish_kept", keys=self.replaced)
