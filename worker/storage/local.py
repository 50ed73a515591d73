"""Local storage: objects are files under `HOME/storage/BUCKET/KEY`, URLs are file:// URLs.

For the demo and for single-machine setups. Uploads are copied to a hidden temporary file in
the target folder and renamed into place, so a reader never sees half a video and a
cancelled job leaves nothing at the key.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

from worker.errors import StorageError
from worker.storage._threads import ThreadProgress, check_stop, file_size, run_stoppable
from worker.storage.base import (
    VIDEO_MP4,
    ByteProgress,
    InvalidKeyError,
    ObjectNotFound,
    ObjectTooLarge,
    StoredObject,
    check_bucket,
    check_key,
)

CHUNK = 1024 * 1024


class LocalStorage:
    """Files on this machine, one folder per bucket."""

    name = "local"

    def __init__(self, root: Path, bucket: str) -> None:
        self.root = root.resolve()
        self.bucket = check_bucket(bucket)

    def path_for(self, key: str, bucket: str | None = None) -> Path:
        """The file that holds `key`, refused if it would land outside the bucket folder."""
        base = self.root / check_bucket(bucket or self.bucket)
        path = (base / check_key(key)).resolve()
        if not path.is_relative_to(base.resolve()):
            raise InvalidKeyError(f"storage key {key!r} is not allowed: it leaves the bucket")
        return path

    async def upload(
        self,
        local_path: Path,
        key: str,
        content_type: str = VIDEO_MP4,
        *,
        on_bytes: ByteProgress | None = None,
    ) -> StoredObject:
        """Copy `local_path` to a temporary file beside the key, then rename it into place."""
        target = self.path_for(key)
        size = await file_size(local_path)
        progress = ThreadProgress(size, on_bytes)
        await run_stoppable(lambda stop: _publish(local_path, target, stop, progress))
        return StoredObject(self.bucket, key, target.as_uri(), size, content_type)

    async def download(self, bucket: str | None, key: str, dest: Path, max_bytes: int) -> Path:
        """Copy a stored object to `dest`, refusing one over `max_bytes` before copying."""
        bucket = bucket or self.bucket
        source = self.path_for(key, bucket)
        if not source.is_file():
            raise ObjectNotFound(bucket, key)
        if source.stat().st_size > max_bytes:
            raise ObjectTooLarge(bucket, key, max_bytes)
        progress = ThreadProgress(source.stat().st_size, None)
        await run_stoppable(lambda stop: _publish(source, dest, stop, progress))
        return dest

    async def delete(self, key: str) -> None:
        """Remove the file; a missing one is fine (cleanup after a failure may repeat)."""
        try:
            self.path_for(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"could not delete {key!r} from local storage: {exc}") from exc

    async def url_for(self, key: str) -> str:
        """A file:// URL: the operator's demo opens it directly."""
        return self.path_for(key).as_uri()


def _publish(source: Path, target: Path, stop: threading.Event, progress: ThreadProgress) -> None:
    """Copy in chunks to a temporary sibling, then atomically rename; remove it on failure."""
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy(source, temp, stop, progress)
        check_stop(stop)  # a cancelled job must not publish, even if the copy just ended
        os.replace(temp, target)
    except OSError as exc:
        raise StorageError(f"local storage could not write {target.name}: {exc}") from exc
    finally:
        temp.unlink(missing_ok=True)


def _copy(source: Path, dest: Path, stop: threading.Event, progress: ThreadProgress) -> None:
    with source.open("rb") as reader, dest.open("wb") as writer:
        while chunk := reader.read(CHUNK):
            check_stop(stop)
            writer.write(chunk)
            progress.add(len(chunk))
