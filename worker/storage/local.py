"""Local storage: objects are files under `HOME/storage/BUCKET/KEY`, URLs are file:// URLs.

For the demo and for single-machine setups. Uploads are copied to a hidden temporary file in
the target folder and renamed into place, so a reader never sees half a video and a
cancelled job leaves nothing at the key.

Keys map onto folders here, unlike in S3: `a/b.jpg/c.mp4` makes a folder `b.jpg`, and no
object can then be stored at `a/b.jpg`. Such a key is refused as an InvalidKeyError before
anything is written, and every error says what went wrong in a sentence that names the key,
never the server's own path.
"""

from __future__ import annotations

import errno
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from worker.errors import PermanentError, StorageError
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
            raise InvalidKeyError(f"storage key {_shown(key)} is not allowed: it leaves the bucket")
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
        _check_room(self.root / self.bucket, target, key)
        try:
            size = await file_size(local_path)
            progress = ThreadProgress(size, on_bytes)
            await run_stoppable(lambda stop: _publish(local_path, target, stop, progress))
        except _Blocked as exc:
            raise InvalidKeyError(
                f"storage key {_shown(key)} cannot be written: {_reason(exc.error)}"
            ) from exc.error
        except OSError as exc:
            raise StorageError(
                f"local storage could not write {_shown(key)}: {_reason(exc)}"
            ) from exc
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
        try:
            await run_stoppable(lambda stop: _publish(source, dest, stop, progress))
        except OSError as exc:
            raise StorageError(
                f"local storage could not read storage://{bucket}/{_shown(key, quoted=False)}: "
                f"{_reason(exc)}"
            ) from exc
        return dest

    async def exists(self, key: str) -> bool:
        """Whether a file is stored at `key` (a folder of that name is not an object)."""
        return self.path_for(key).is_file()

    async def delete(self, key: str) -> None:
        """Remove the file; a missing one is fine (cleanup after a failure may repeat), and a
        folder is never removed: it holds other objects."""
        path = self.path_for(key)
        try:
            if not path.is_dir():
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(
                f"local storage could not delete {_shown(key)}: {_reason(exc)}"
            ) from exc

    async def url_for(self, key: str) -> str:
        """A file:// URL: the operator's demo opens it directly."""
        return self.path_for(key).as_uri()


def _check_room(bucket: Path, target: Path, key: str) -> None:
    """Refuse a key that names a folder, or whose folders include an existing file."""
    if target.is_dir():
        raise InvalidKeyError(
            f"storage key {_shown(key)} cannot be written: a folder of that name holds other "
            "objects"
        )
    for folder in reversed(target.relative_to(bucket.resolve()).parents[:-1]):
        if (bucket / folder).exists() and not (bucket / folder).is_dir():
            raise InvalidKeyError(
                f"storage key {_shown(key)} cannot be written: {_shown(folder.as_posix())} is "
                "an object, not a folder"
            )


class _Blocked(PermanentError):
    """The file system refused the key itself (a folder or a file in the way, a name too
    long): permanent, unlike a full disk. Raised only around mkdir and the final rename, so
    a failure to read the source is never taken for one."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror)
        self.error = error


_KEY_ERRNOS = {errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}


@contextmanager
def _key_blocks() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno in _KEY_ERRNOS:
            raise _Blocked(exc) from exc
        raise


def _reason(exc: OSError) -> str:
    """`strerror` alone: str(OSError) appends the file names, which are the server's paths."""
    return (exc.strerror or type(exc).__name__).lower()


def _shown(key: str, *, quoted: bool = True) -> str:
    short = key if len(key) <= 200 else key[:200] + "…"
    return repr(short) if quoted else short


def _publish(source: Path, target: Path, stop: threading.Event, progress: ThreadProgress) -> None:
    """Copy in chunks to a temporary sibling, then atomically rename; remove it on failure.

    The temporary name keeps at most 100 bytes of the target's, so a 255-byte name still
    fits the file system's limit with the suffix added.
    """
    stem = target.name.encode()[:100].decode(errors="ignore")
    temp = target.with_name(f".{stem}.{uuid.uuid4().hex}.part")
    try:
        with _key_blocks():
            target.parent.mkdir(parents=True, exist_ok=True)
        _copy(source, temp, stop, progress)
        check_stop(stop)  # a cancelled job must not publish, even if the copy just ended
        with _key_blocks():
            os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _copy(source: Path, dest: Path, stop: threading.Event, progress: ThreadProgress) -> None:
    with source.open("rb") as reader, dest.open("wb") as writer:
        while chunk := reader.read(CHUNK):
            check_stop(stop)
            writer.write(chunk)
            progress.add(len(chunk))
