"""The daemon: claims jobs, runs handlers, keeps leases alive, and shuts down cleanly.

The runner puts together a few rooms, each a module of its own, on one event loop; the
background ones are supervised here (a crash is logged and the task restarted):

    claiming.py     the claim loop, and `start`, where every claimed job begins to run
    job_run.py      one job: the handler under supervision (timeout, cancel, abort) and the
                    outcome written to the row (final_write.py retries it through outages)
    heartbeat.py    renews the leases of the jobs in flight, notices cancel requests
    maintenance.py  rescues expired leases, ends cancelled pending jobs, keeps statistics fresh
    listener.py     LISTEN/NOTIFY wake-ups
    ../loop_lag.py  how late the event loop runs (one loop for all, the HTTP side included)
    state.py        what the rooms share; status.py is its read-only view for /health and /stats

This module holds the life cycle: start the rooms, stop claiming on SIGTERM, let running jobs
finish within SHUTDOWN_GRACE and hand the rest back, and end.

A replica whose handler ignored cancellation is half-dead (see job_run.py): /health says so
(503), it stops claiming, lets its other jobs finish within the grace period or hands them
back, and `run()` returns with `stuck` set, for the process to exit non-zero and the platform
to start a fresh one (worker/app.py).
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from worker.log import SecretMasker, get_logger
from worker.loop_lag import LoopLag
from worker.metrics import WorkerMetrics
from worker.queue.claiming import ClaimLoop
from worker.queue.final_write import LAST_ATTEMPT
from worker.queue.heartbeat import Heartbeat
from worker.queue.hooks import FinishedHook, FinishedHooks
from worker.queue.job_run import Handler, JobRun
from worker.queue.listener import Listener
from worker.queue.maintenance import MaintenanceLoop, Periodic
from worker.queue.state import HANDBACK_WINDOW, Abort, Counters, Running, WorkerState
from worker.queue.status import RunnerStatus
from worker.queue.store import RunnerStore
from worker.retry import exponential
from worker.settings import Settings

__all__ = [
    "HANDBACK_WINDOW",
    "LAST_ATTEMPT",
    "Abort",
    "FinishedHook",
    "Handler",
    "ListenerFactory",
    "Periodic",
    "Runner",
    "cancel_until_done",
    "listener_on",
]

# Builds the listener around the runner's two wake-ups: a job is pending; a job was asked to
# cancel (see `listener_on`).
ListenerFactory = Callable[[Callable[[], None], Callable[[uuid.UUID], None]], Listener]

log = get_logger("video-worker.runner")


def listener_on(url: str) -> ListenerFactory:
    """The LISTEN/NOTIFY listener on the database at `url`, for a runner to wire up."""

    def build(on_pending: Callable[[], None], on_cancel: Callable[[uuid.UUID], None]) -> Listener:
        return Listener(url, on_pending=on_pending, on_cancel=on_cancel)

    return build


async def cancel_until_done(tasks: list[asyncio.Task[None]], every: float = 0.5) -> None:
    """Cancel `tasks` and wait until each has ended, cancelling again every `every` seconds.

    One cancel() is not always enough: on Python 3.11 `asyncio.wait_for` (psycopg_pool waits
    with it) can drop a cancellation that arrives as its inner wait completes (CPython
    gh-86296), and the task goes on. Seen in CI: a maintenance loop cancelled a few
    milliseconds after start slept on, and the worker never stopped."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)


class Runner:
    """`metrics`, `masker` and `listener` are built by worker/app.py for the whole process;
    left out (tests, benchmarks), the runner makes its own: fresh metrics, a masker of the
    settings' secrets, and a listener on `database_url` when `listen` is set."""

    def __init__(
        self,
        settings: Settings,
        store: RunnerStore,
        handler: Handler,
        *,
        database_url: str | None = None,
        on_finished: FinishedHook | None = None,
        periodic: Periodic | None = None,
        listen: bool = True,
        metrics: WorkerMetrics | None = None,
        masker: SecretMasker | None = None,
        listener: ListenerFactory | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.state = WorkerState(settings.worker_id, settings.shutdown_grace)
        self.hooks = FinishedHooks(on_finished)
        self.metrics = metrics or WorkerMetrics()
        masker = masker or SecretMasker(settings.secrets())  # errors are user-visible
        self.claims = ClaimLoop(settings, store, self.state, self._supervise_job)
        self.jobs = JobRun(
            settings,
            store,
            self.state,
            handler,
            hooks=self.hooks,
            metrics=self.metrics,
            masker=masker,
            start=self.claims.start,
        )
        self.heartbeat = Heartbeat(settings, store, self.state)
        self.maintenance = MaintenanceLoop(settings, store, self.state, self.hooks, periodic)
        if listener is None and listen and database_url:
            listener = listener_on(database_url)
        self.listener = listener(self.wake, self._on_cancel_notice) if listener else None
        self.loop_lag = LoopLag(in_flight=lambda: [str(i) for i in self.state.in_flight])
        self.status = RunnerStatus(
            settings, store, self.metrics, masker, self.state, self.listener, self.loop_lag
        )
        self._tasks: list[asyncio.Task[Any]] = []

    def _supervise_job(self, running: Running) -> Coroutine[Any, Any, None]:
        return self.jobs.supervise(running)

    # ---- lifecycle -------------------------------------------------------------------------

    def wake(self) -> None:
        self.state.wake.set()

    def request_stop(self) -> None:
        """Stop claiming now; running jobs get SHUTDOWN_GRACE to finish."""
        self.state.request_stop()

    def on_stop_signal(self) -> None:
        """SIGTERM or Ctrl-C: the first stops claiming and gives running jobs SHUTDOWN_GRACE;
        a second, while they run, hands them back at once."""
        if self.state.draining:
            self.state.stop_now()
        else:
            self.request_stop()

    def install_signal_handlers(self) -> Callable[[], None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.on_stop_signal)

        def remove() -> None:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

        return remove

    async def run(self) -> None:
        """Run until request_stop(); then drain, hand back what is left, and return."""
        self._tasks = [
            self._supervise(self.heartbeat.run, "heartbeat"),
            self._supervise(self.maintenance.run, "maintenance"),
            self._supervise(self.loop_lag.run, "loop_lag"),
        ]
        if self.listener is not None:
            self._tasks.append(self._supervise(self.listener.run, "listener"))
        log.info("worker_started", worker_id=self.worker_id, concurrency=self.settings.concurrency)
        try:
            await self.claims.run()
            await self._drain()
        finally:
            await cancel_until_done(self._tasks)
            await self.hooks.wait()
            log.info(
                "worker_stopped", processed=self.counters.processed, failed=self.counters.failed
            )

    def _supervise(self, fn: Callable[[], Awaitable[None]], name: str) -> asyncio.Task[None]:
        async def guarded() -> None:
            failures = 0
            while True:
                try:
                    await fn()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    failures += 1
                    log.exception("background_task_crashed", task=name)
                    await asyncio.sleep(exponential(failures, base=0.5, cap=30.0))

        return asyncio.create_task(guarded(), name=name)

    def _on_cancel_notice(self, job_id: uuid.UUID) -> None:
        if job_id in self.state.in_flight:
            self.state.beat_now.set()  # the heartbeat confirms against the row, then aborts
        else:
            self.state.wake.set()  # maybe a pending job: maintenance ends it

    async def _drain(self) -> None:
        """Let running jobs finish within the grace period, then hand the rest back."""
        jobs = self.claims.tasks
        if jobs:
            # the grace period runs from SIGTERM, not from the end of a claim in progress
            left = max(0.0, self.state.grace_end() - time.monotonic())
            log.info("waiting_for_jobs", count=len(jobs), grace=round(left, 1))
            await self._until_done_or_hurried(jobs, left)
        for running in list(self.in_flight.values()):
            running.abort(Abort.SHUTDOWN)
        if jobs:
            await asyncio.wait(set(jobs))

    async def _until_done_or_hurried(self, jobs: Iterable[asyncio.Task[None]], left: float) -> None:
        """Wait for `jobs` to end, at most `left` seconds, or until a second stop signal."""
        everything = asyncio.ensure_future(asyncio.wait(set(jobs)))
        hurried = asyncio.ensure_future(self.state.hurry.wait())
        try:
            await asyncio.wait({everything, hurried}, timeout=left,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            everything.cancel()  # the waiting, not the jobs
            hurried.cancel()

    # ---- what tests, the CLI and the demo read (the HTTP side reads `status`) --------------

    @property
    def on_finished(self) -> FinishedHook | None:
        return self.hooks.on_finished

    @on_finished.setter
    def on_finished(self, hook: FinishedHook | None) -> None:
        self.hooks.on_finished = hook

    @property
    def worker_id(self) -> str:
        return self.state.worker_id

    @property
    def in_flight(self) -> dict[uuid.UUID, Running]:
        return self.state.in_flight

    @property
    def counters(self) -> Counters:
        return self.state.counters

    @property
    def draining(self) -> bool:
        return self.state.draining

    @property
    def stuck(self) -> str | None:
        return self.state.stuck

    @property
    def db_ok(self) -> bool:
        return self.state.db_ok

    @property
    def db_error(self) -> str | None:
        return self.state.db_error

    @property
    def listener_state(self) -> str:
        return self.status.listener_state()

    def in_flight_view(self) -> list[dict[str, Any]]:
        return self.status.in_flight()
