"""Running blocking SDK calls in a thread so that cancelling the caller really stops them.

`asyncio.to_thread` alone abandons the thread on cancellation: the upload would go on and
publish an object after the job was cancelled. Here the thread gets a `threading.Event`
that it checks between chunks, and the cancelled caller waits for the thread to notice and
clean up (abort the multipart upload, remove the temporary file) before re-raising.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from worker.errors import RetryableError
from worker.storage.base import VIDEO_MP4, ByteProgress, StoredObject, check_bucket, check_key

T = TypeVar("T")


class Cancelled(RetryableError):
    """Raised inside the worker thread when the awaiting task was cancelled.

    It ends the thread and goes no further: the task that awaited the thread was cancelled,
    and that cancellation is what the runner records. Retryable, as a transfer cut short is."""


async def run_stoppable(fn: Callable[[threading.Event], T]) -> T:
    """Run `fn(stop)` in a thread; on cancellation set `stop` and wait for `fn` to end."""
    stop = threading.Event()
    task = asyncio.ensure_future(asyncio.to_thread(fn, stop))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.wait([task])
        raise


async def file_size(path: Path) -> int:
    """The size of `path`, read off the event loop (a network file system can be slow)."""
    return await asyncio.to_thread(lambda: path.stat().st_size)


def check_stop(stop: threading.Event) -> None:
    """Call between chunks in a worker thread: raise Cancelled if the caller gave up."""
    if stop.is_set():
        raise Cancelled("the transfer was cancelled")


class ThreadProgress:
    """Counts bytes in a worker thread and reports them on the event loop.

    Callers' progress callbacks touch asyncio state, so they must never run in the
    thread; `call_soon_threadsafe` hands each report to the loop.
    """

    def __init__(self, total: int, on_bytes: ByteProgress | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._total = total
        self._on_bytes = on_bytes
        self._sent = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self._sent += n
            sent = self._sent
        if self._on_bytes is not None:
            self._loop.call_soon_threadsafe(self._on_bytes, sent, self._total)


class StoppableFile(io.BufferedReader):
    """A binary file that raises Cancelled from `read` once `stop` is set, and counts bytes.

    For SDKs that read a file object themselves (httpx multipart bodies): they then abort
    mid-body and the server never sees a complete object. It is a real `BufferedReader`
    because storage3 checks the type before it streams instead of opening a path itself.
    """

    def __init__(self, path: Path, stop: threading.Event, progress: ThreadProgress) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self._stop = stop
        self._progress = progress

    def read(self, size: int | None = -1, /) -> bytes:
        check_stop(self._stop)
        data = super().read(size)
        self._progress.add(len(data))
        return data


class ThreadedTransfers:
    """`upload` and `download` for backends whose SDK blocks: the SDK call runs in a stoppable
    thread, and a download lands under a `.part` name that is renamed only when complete.

    Subclasses provide `bucket`, `url_for(key)`, `_upload(path, key, content_type, stop,
    progress)` and `_download(bucket, key, part, max_bytes, stop)`, which must check `stop`
    between chunks (see `check_stop`).
    """

    bucket: str

    def _check_key(self, key: str) -> str:
        """The backend's rule for keys: `check_key`, and more where the SDK needs it."""
        return check_key(key)

    async def url_for(self, key: str) -> str:
        raise NotImplementedError

    def _upload(
        self,
        path: Path,
        key: str,
        content_type: str,
        stop: threading.Event,
        progress: ThreadProgress,
    ) -> None:
        raise NotImplementedError

    def _download(
        self, bucket: str, key: str, part: Path, max_bytes: int, stop: threading.Event
    ) -> None:
        raise NotImplementedError

    async def download(self, bucket: str | None, key: str, dest: Path, max_bytes: int) -> Path:
        """Stream object `key` of `bucket` (default: ours) to `dest`, within `max_bytes`."""
        bucket = check_bucket(bucket or self.bucket)
        self._check_key(key)
        part = dest.with_name(dest.name + ".part")
        try:
            await run_stoppable(lambda stop: self._download(bucket, key, part, max_bytes, stop))
            part.replace(dest)
        finally:
            part.unlink(missing_ok=True)
        return dest

    async def upload(
        self,
        local_path: Path,
        key: str,
        content_type: str = VIDEO_MP4,
        *,
        on_bytes: ByteProgress | None = None,
    ) -> StoredObject:
        """Stream `local_path` to `key` with its real content type, then return its URL."""
        self._check_key(key)
        size = await file_size(local_path)
        progress = ThreadProgress(size, on_bytes)
        await run_stoppable(
            lambda stop: self._upload(local_path, key, content_type, stop, progress)
        )
        return StoredObject(self.bucket, key, await self.url_for(key), size, content_type)
