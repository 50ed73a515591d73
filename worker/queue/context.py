"""What a handler gets besides its job: progress reporting, its settings and a logger.

Progress is kept in memory at once (for /stats) and written to the row at most once per
`min_interval` per job, never backwards within an attempt; a trailing write makes sure the
latest value lands even when the handler goes quiet. Supabase Realtime checks every change
against every subscriber, so a handler calling report() in a tight loop must not become a
write per call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from worker.queue.models import Job

Writer = Callable[[int, str | None, str | None], Awaitable[bool]]


@dataclass
class ProgressState:
    progress: int = 0
    stage: str | None = "starting"
    message: str | None = None


@dataclass
class ProgressReporter:
    """Throttled, monotonic progress for one attempt of one job."""

    write: Writer
    on_lost: Callable[[], None]
    min_interval: float = 1.0
    state: ProgressState = field(default_factory=ProgressState)
    _written: tuple[int, str | None, str | None] | None = None
    _last_write: float = float("-inf")
    _trailing: asyncio.Task[None] | None = None
    _again: bool = False  # a report came while the trailing write was pending or under way
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def report(
        self, progress: float | None = None, stage: str | None = None, message: str | None = None
    ) -> None:
        self._update(progress, stage, message)
        wait = self._last_write + self.min_interval - time.monotonic()
        if wait <= 0:
            await self.flush()
        else:
            self._schedule(wait)

    def report_nowait(
        self, progress: float | None = None, stage: str | None = None, message: str | None = None
    ) -> None:
        """For synchronous callbacks (FFmpeg and download progress): update now, write soon."""
        self._update(progress, stage, message)
        self._schedule(max(0.0, self._last_write + self.min_interval - time.monotonic()))

    def _update(self, progress: float | None, stage: str | None, message: str | None) -> None:
        if progress is not None:
            self.state.progress = max(self.state.progress, min(100, max(0, int(progress))))
        if stage is not None:
            self.state.stage = stage
        if message is not None:
            self.state.message = message

    def _schedule(self, delay: float) -> None:
        if self._trailing is None or self._trailing.done():
            self._trailing = asyncio.create_task(self._flush_later(delay))
        else:
            self._again = True

    async def _flush_later(self, delay: float) -> None:
        """Write after `delay`, and again after the interval if a report came while that write
        was on its way: that report found this task running and left its value to it."""
        while True:
            await asyncio.sleep(delay)
            self._again = False
            await self.flush()
            if not self._again:
                return
            delay = max(0.0, self._last_write + self.min_interval - time.monotonic())

    async def flush(self) -> None:
        """Write the current state if it differs from what the row has."""
        async with self._lock:
            snapshot = (self.state.progress, self.state.stage, self.state.message)
            if snapshot == self._written:
                return
            self._last_write = time.monotonic()
            try:
                held = await self.write(*snapshot)
            except Exception:  # a progress write is best effort; the heartbeat owns the lease
                return
            self._written = snapshot
            if not held:
                self.on_lost()

    def close(self) -> None:
        if self._trailing is not None:
            self._trailing.cancel()


class JobContext:
    """Handed to the handler with its job."""

    def __init__(self, job: Job, settings: Any, reporter: ProgressReporter, log: Any) -> None:
        self.job = job
        self.settings = settings
        self.log = log
        self._reporter = reporter

    async def report(
        self, progress: float | None = None, stage: str | None = None, message: str | None = None
    ) -> None:
        """Record progress (0..100), the current stage and a human-readable message."""
        await self._reporter.report(progress, stage, message)

    def report_nowait(
        self, progress: float | None = None, stage: str | None = None, message: str | None = None
    ) -> None:
        """The same from synchronous code (progress callbacks); the write follows shortly."""
        self._reporter.report_nowait(progress, stage, message)

    @property
    def progress(self) -> ProgressState:
        return self._reporter.state
