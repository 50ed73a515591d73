"""The maintenance loop: once a second it keeps the claim's plan on its index (ANALYZE after a
burst of inserts, see `stats_stale` in queries.sql); every few seconds, one replica at a time
rescues expired leases and ends cancelled pending jobs; every PERIODIC_EVERY it runs the slow
sweeps it was given (webhook retries, automatic cleanup)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from worker.log import get_logger
from worker.queue.hooks import FinishedHooks
from worker.queue.models import Status
from worker.queue.state import WorkerState
from worker.queue.store import JobStore
from worker.settings import Settings

Periodic = Callable[[], Coroutine[Any, Any, None]]

MAINTENANCE_EVERY = 5.0
STATS_EVERY = 1.0  # a one-row look at pg_stat_user_tables
PERIODIC_EVERY = 15.0  # webhook retries and other slow sweeps

log = get_logger("video-worker.runner")


class MaintenanceLoop:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        state: WorkerState,
        hooks: FinishedHooks,
        periodic: Periodic | None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self.hooks = hooks
        self.periodic = periodic

    async def run(self) -> None:
        last_periodic = last_maintain = float("-inf")
        every = min(MAINTENANCE_EVERY, self.settings.lease_seconds / 4)
        while True:
            if time.monotonic() - last_maintain >= every:
                last_maintain = time.monotonic()
                await self.maintain_once()
            await self._refresh_stats()
            if self.periodic is not None and time.monotonic() - last_periodic >= PERIODIC_EVERY:
                last_periodic = time.monotonic()
                try:
                    await self.periodic()
                except Exception as exc:
                    log.warning("periodic_task_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(STATS_EVERY)

    async def _refresh_stats(self) -> None:
        try:
            if await self.store.analyze_if_stale():
                log.info("analyzed_video_jobs")
        except Exception as exc:
            self.state.db_down(exc)

    async def maintain_once(self) -> None:
        try:
            result = await self.store.maintain(self.settings.lease_seconds)
        except Exception as exc:
            self.state.db_down(exc)
            return
        for finished in result.rescued:
            log.warning(
                "lease_expired_rescued", job_id=str(finished.id), status=finished.status.value
            )
            if finished.status.terminal:
                self.hooks.fire(finished)
        for finished in result.cancelled:
            log.info("job_cancelled", job_id=str(finished.id), started=False)
            self.hooks.fire(finished)
        if any(f.status is Status.PENDING for f in result.rescued):
            self.state.wake.set()
