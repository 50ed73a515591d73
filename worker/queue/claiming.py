"""The claim loop, and `start`: the one place where a claimed job begins to run.

The loop waits for a wake-up (a NOTIFY, a free slot, a rescued job) or POLL_INTERVAL, then
claims up to the free slots in one statement. A busy worker also claims inside the completion
of its previous job (the hot path, see job_run.py); that job's run hands what it claimed to
`start` here, so a job starts the same way whichever way it was claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

from worker.queue.context import ProgressReporter
from worker.queue.models import Job
from worker.queue.state import Abort, Running, WorkerState
from worker.queue.store import JobStore
from worker.retry import exponential
from worker.settings import Settings

Supervise = Callable[[Running], Coroutine[Any, Any, None]]


class ClaimLoop:
    def __init__(
        self, settings: Settings, store: JobStore, state: WorkerState, supervise: Supervise
    ) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self.supervise = supervise  # the per-job run (job_run.JobRun.supervise)
        self.tasks: set[asyncio.Task[None]] = set()  # one supervisor per job in flight

    async def run(self) -> None:
        """Claim until draining; a database outage pauses claiming with backoff."""
        state, failures = self.state, 0
        while not state.draining:
            state.loop_beat = time.monotonic()
            state.wake.clear()
            free = self.settings.concurrency - len(state.in_flight)
            claimed: list[Job] = []
            if free > 0:
                try:
                    claimed = await self.store.claim(state.worker_id, free)
                    state.db_up()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    state.db_down(exc)
                    await self._sleep_unless_draining(exponential(failures, base=0.5, cap=5.0))
                    continue
            for job in claimed:
                self.start(job)
            if claimed and len(claimed) == free:
                continue  # maybe more are ready; the next claim finds out (slots permitting)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval):
                    await state.wake.wait()

    async def _sleep_unless_draining(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while not self.state.draining:
                    self.state.wake.clear()
                    await self.state.wake.wait()

    def start(self, job: Job) -> None:
        """Run a claimed job: take its slot and give it a supervisor task."""
        state = self.state
        running = Running(
            job,
            ProgressReporter(
                write=lambda p, s, m: self.store.progress(job, p, s, m),
                on_lost=lambda: state.abort(job.id, Abort.LEASE_LOST),
            ),
        )
        state.in_flight[job.id] = running
        task = asyncio.create_task(self.supervise(running), name=f"job-{job.id}")
        self.tasks.add(task)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.state.wake.set()  # a slot is free
