"""The heartbeat: every LEASE_SECONDS/6 (or at once, when a NOTIFY says a job of ours was asked
to cancel) it renews the leases of the jobs in flight in one statement. A job missing from the
answer lost its lease and is aborted without a write; a job whose row has cancel_requested_at
is cancelled. Without the database a lease cannot be renewed: a job whose lease has surely run
out by our own clock is aborted, since another replica may have it by now."""

from __future__ import annotations

import asyncio
import contextlib
import time

from worker.queue.state import Abort, Running, WorkerState
from worker.queue.store import JobStore
from worker.settings import Settings


class Heartbeat:
    def __init__(self, settings: Settings, store: JobStore, state: WorkerState) -> None:
        self.settings = settings
        self.store = store
        self.state = state

    async def run(self) -> None:
        beat_now = self.state.beat_now
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.heartbeat_interval):
                    await beat_now.wait()
            beat_now.clear()
            await self.once()

    async def once(self) -> None:
        state = self.state
        running = [r for r in state.in_flight.values() if r.abort_reason is None]
        if not running:
            return
        try:
            beat = await self.store.heartbeat([r.job for r in running])
        except Exception as exc:
            state.db_down(exc)
            self._abort_unrenewed(running)
            return
        state.db_up()
        now = time.monotonic()
        for r in running:
            if r.job.id not in beat.held:
                state.abort(r.job.id, Abort.LEASE_LOST)
            elif r.job.id in beat.cancel_requested:
                state.abort(r.job.id, Abort.CANCELLED)
            else:
                r.renewed = now

    def _abort_unrenewed(self, running: list[Running]) -> None:
        limit = time.monotonic() - self.settings.lease_seconds
        for r in running:
            if r.renewed < limit:
                self.state.abort(r.job.id, Abort.LEASE_LOST)
