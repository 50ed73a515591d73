"""The daemon: claims jobs, runs handlers, keeps leases alive, and shuts down cleanly.

Tasks on one event loop, all supervised (a crash in one is logged and it is restarted):

    claim loop    waits for a NOTIFY, a free slot or POLL_INTERVAL, then claims up to the
                  free slots in one statement
    heartbeat     every LEASE_SECONDS/6 renews the leases of the jobs in flight in one
                  statement; a job missing from the answer lost its lease, a job with
                  cancel_requested_at is cancelled
    maintenance   one replica at a time rescues expired leases and ends cancelled pending jobs
    listener      LISTEN/NOTIFY wake-ups (see listener.py)
    per job       a supervisor task that runs the handler task, enforces JOB_TIMEOUT,
                  aborts it on cancel / lease loss / shutdown and writes the outcome

A handler is `async def handle(job: Job, ctx: JobContext) -> JobOutcome | None`. It is stopped
by asyncio cancellation and must clean up in `finally` (kill FFmpeg, remove temp files).

A handler that is still running ABORT_WAIT seconds after it was cancelled ignored the
cancellation (a thread it waits on cannot be stopped, say): its row gets its outcome, but its
slot stays taken until it really ends, since it still uses the machine. The replica is then
half-dead: /health says so (503), it stops claiming, lets its other jobs finish within the
grace period or hands them back, and `run()` returns with `stuck` set, for the process to exit
non-zero and the platform to start a fresh one (worker/app.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from worker.errors import JobTimeout, LeaseLost, as_worker_error
from worker.log import SecretMasker, get_logger
from worker.metrics import WorkerMetrics
from worker.queue.context import JobContext, ProgressReporter
from worker.queue.jobs import Finished, JobStore
from worker.queue.listener import Listener, ListenerState
from worker.queue.models import Job, JobOutcome, Status
from worker.retry import exponential, job_retry_delay
from worker.row_error import row_error
from worker.settings import Settings

Handler = Callable[[Job, JobContext], Coroutine[Any, Any, JobOutcome | None]]
FinishedHook = Callable[[Finished], Coroutine[Any, Any, None]]
Periodic = Callable[[], Coroutine[Any, Any, None]]

HANDBACK_WINDOW = 4.0  # after SHUTDOWN_GRACE, for the last writes, before the platform kills us
LAST_ATTEMPT = 2.0  # the least time a write gets once that window has passed
MAINTENANCE_EVERY = 5.0
STATS_EVERY = 1.0  # a one-row look at pg_stat_user_tables
PERIODIC_EVERY = 15.0  # webhook retries and other slow sweeps

log = get_logger("video-worker.runner")


class Abort(enum.Enum):
    CANCELLED = "cancelled"  # the app set cancel_requested_at
    LEASE_LOST = "lease_lost"  # another replica may hold the job now: write nothing
    TIMEOUT = "timeout"  # JOB_TIMEOUT passed
    SHUTDOWN = "shutdown"  # grace period over: hand the job back


@dataclass
class Running:
    job: Job
    reporter: ProgressReporter
    started: float = field(default_factory=time.monotonic)
    renewed: float = field(default_factory=time.monotonic)
    task: asyncio.Task[JobOutcome | None] | None = None
    abort_reason: Abort | None = None
    # done at the first abort: wakes the job's supervisor to time how long the handler takes
    aborted: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def abort(self, reason: Abort) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason
        if not self.aborted.done():
            self.aborted.set_result(None)
        if self.task is not None and not self.task.done():
            self.task.cancel(reason.value)


@dataclass
class Counters:
    processed: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0
    last_job_at: float | None = None  # unix time of the last job that finished here
    last_success_at: float | None = None


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
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        handler: Handler,
        *,
        database_url: str | None = None,
        on_finished: FinishedHook | None = None,
        periodic: Periodic | None = None,
        listen: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store
        self.handler = handler
        self.on_finished = on_finished
        self.periodic = periodic
        self.worker_id = settings.worker_id
        self.in_flight: dict[uuid.UUID, Running] = {}
        self.counters = Counters()
        self.metrics = WorkerMetrics()
        self._mask = SecretMasker(settings.secrets()).mask  # errors are user-visible
        self.started_at = time.time()
        self.loop_beat = time.monotonic()
        self.db_ok = True
        self.db_error: str | None = None
        self.draining = False
        self.stuck: str | None = None  # why the replica must be restarted, for /health
        self._stop_requested_at: float | None = None
        self.listener = (
            Listener(database_url, on_pending=self.wake, on_cancel=self._on_cancel_notice)
            if listen and database_url
            else None
        )
        self._wake = asyncio.Event()
        self._beat_now = asyncio.Event()
        self._stopped = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._job_tasks: set[asyncio.Task[None]] = set()
        self._hook_tasks: set[asyncio.Task[None]] = set()

    # ---- lifecycle -------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def request_stop(self) -> None:
        """Stop claiming now; running jobs get SHUTDOWN_GRACE to finish."""
        if not self.draining:
            log.info("draining", in_flight=len(self.in_flight), grace=self.settings.shutdown_grace)
            self._stop_requested_at = time.monotonic()
        self.draining = True
        self._wake.set()

    def install_signal_handlers(self) -> Callable[[], None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)

        def remove() -> None:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

        return remove

    async def run(self) -> None:
        """Run until request_stop(); then drain, hand back what is left, and return."""
        self._tasks = [
            self._supervise(self._heartbeat_loop, "heartbeat"),
            self._supervise(self._maintenance_loop, "maintenance"),
        ]
        if self.listener is not None:
            self._tasks.append(self._supervise(self.listener.run, "listener"))
        log.info("worker_started", worker_id=self.worker_id, concurrency=self.settings.concurrency)
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            await cancel_until_done(self._tasks)
            await self._wait_hooks()
            self._stopped.set()
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

    # ---- claiming --------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        failures = 0
        while not self.draining:
            self.loop_beat = time.monotonic()
            self._wake.clear()
            free = self.settings.concurrency - len(self.in_flight)
            claimed: list[Job] = []
            if free > 0:
                try:
                    claimed = await self.store.claim(self.worker_id, free)
                    self._db_up()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    self._db_down(exc)
                    await self._sleep_unless_draining(exponential(failures, base=0.5, cap=5.0))
                    continue
            for job in claimed:
                self._start(job)
            if claimed and len(claimed) == free:
                continue  # maybe more are ready; the next claim finds out (slots permitting)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval):
                    await self._wake.wait()

    async def _sleep_unless_draining(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while not self.draining:
                    self._wake.clear()
                    await self._wake.wait()

    def _db_up(self) -> None:
        if not self.db_ok:
            log.info("database_reachable_again")
        self.db_ok, self.db_error = True, None

    def _db_down(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}".strip()[:300]
        if self.db_ok:
            log.warning("database_unreachable", error=message)
        self.db_ok, self.db_error = False, message

    # ---- running one job -------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        running = Running(
            job,
            ProgressReporter(
                write=lambda p, s, m: self.store.progress(job, p, s, m),
                on_lost=lambda: self._abort(job.id, Abort.LEASE_LOST),
            ),
        )
        self.in_flight[job.id] = running
        task = asyncio.create_task(self._supervise_job(running), name=f"job-{job.id}")
        self._job_tasks.add(task)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._job_tasks.discard(task)
        self._wake.set()  # a slot is free

    async def _supervise_job(self, running: Running) -> None:
        job = running.job
        structlog.contextvars.bind_contextvars(job_id=str(job.id), attempt=job.attempts)
        log.info("job_started", max_attempts=job.max_attempts)
        ctx = JobContext(job, self.settings, running.reporter, log)
        running.task = asyncio.create_task(self._handle(job, ctx), name=f"handler-{job.id}")
        if running.abort_reason is not None:  # aborted before its task existed
            running.task.cancel(running.abort_reason.value)
        try:
            ended: set[asyncio.Future[Any]] = {running.task, running.aborted}
            done, _ = await asyncio.wait(
                ended,
                timeout=self.settings.job_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                running.abort(Abort.TIMEOUT)
            await self._settle(running)
            await self._record(running)
        except Exception:
            log.exception("job_supervisor_failed")
        finally:
            running.reporter.close()
            self._free_slot_when_ended(running)

    async def _handle(self, job: Job, ctx: JobContext) -> JobOutcome | None:
        job.check_payload_size()  # the claim withheld a payload over MAX_PAYLOAD_BYTES
        return await self.handler(job, ctx)

    async def _settle(self, running: Running) -> None:
        """Give an aborted handler ABORT_WAIT to run its finally blocks (kill FFmpeg, clean
        up); one that takes longer ignored its cancellation."""
        assert running.task is not None
        if not running.task.done():
            wait = self.settings.abort_wait
            done, _ = await asyncio.wait({running.task}, timeout=wait)
            if not done:
                self._stuck(f"a job handler ignored cancellation for {wait:g} s")

    def _stuck(self, reason: str) -> None:
        """Stop serving: a handler is out of control. Claim nothing more, let the other jobs
        finish or hand them back, and end `run()` for the process to be restarted."""
        log.error("handler_ignored_cancellation", reason=reason, then="drain and exit")
        self.stuck = self.stuck or reason
        self.request_stop()

    def _free_slot_when_ended(self, running: Running) -> None:
        """The job's slot is free when its handler has really ended, not when it was told to."""
        task = running.task
        if task is None or task.done():
            self._free_slot(running)
            return

        def ended(task: asyncio.Task[JobOutcome | None]) -> None:
            if not task.cancelled():
                task.exception()  # its outcome is written already; only mark it retrieved
            log.warning("stuck_handler_ended", job_id=str(running.job.id))
            self._free_slot(running)

        task.add_done_callback(ended)

    def _free_slot(self, running: Running) -> None:
        if self.in_flight.get(running.job.id) is running:
            del self.in_flight[running.job.id]
        self._wake.set()

    async def _record(self, running: Running) -> None:
        """Write the attempt's outcome to the row, fenced on the lease token."""
        job, task, reason = running.job, running.task, running.abort_reason
        assert task is not None
        elapsed = round(time.monotonic() - running.started, 3)
        if reason is Abort.LEASE_LOST:
            log.warning("lease_lost", elapsed=elapsed)
            return
        if reason is Abort.SHUTDOWN:
            released = await self._write(lambda: self.store.release(job))
            log.info("job_handed_back", released=bool(released), elapsed=elapsed)
            return
        if reason is Abort.CANCELLED:
            await self._finish(running, lambda: self.store.cancelled(job))
            return
        if reason is Abort.TIMEOUT:
            await self._failed(running, JobTimeout(self.settings.job_timeout))
            return
        exc = task.exception() if not task.cancelled() else asyncio.CancelledError()
        if exc is None:
            outcome = task.result() or JobOutcome()
            await self._finish(running, lambda: self._complete(job, outcome))
        elif isinstance(exc, LeaseLost):
            log.warning("lease_lost", elapsed=elapsed)
        else:
            await self._failed(running, exc)

    async def _failed(self, running: Running, exc: BaseException) -> None:
        """Ask the error (worker.errors) what the row says and whether to try again. One that
        wants its traceback logged (a bug, FFmpeg's output) gets it; an expected failure says
        so in job_will_retry or job_failed alone."""
        error = as_worker_error(exc)
        message = self._message(error)
        if error.log_traceback:
            log.error(
                "job_attempt_failed",
                error=message,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        await self._fail(running, message, retry=error.retryable)

    async def _complete(self, job: Job, outcome: JobOutcome) -> Finished | None:
        """Complete the job and, unless draining, claim the next one for this slot in the same
        statement: one round trip and one commit per job instead of two."""
        if self.draining:
            return await self.store.complete(job, outcome)
        finished, claimed = await self.store.complete_and_claim(job, outcome, self.worker_id)
        if claimed is not None:
            self._start(claimed)
        return finished

    async def _fail(self, running: Running, error: str, *, retry: bool) -> None:
        job = running.job
        delay = job_retry_delay(job.attempts, self.settings.retry_base_seconds)
        written = await self._write(
            lambda: self.store.fail(job, error, retry=retry, backoff_seconds=delay)
        )
        if written is not None and written.status is Status.PENDING:
            self.counters.retried += 1
            self.metrics.job_finished("retried", time.monotonic() - running.started)
            log.warning("job_will_retry", error=error, retry_in=round(delay, 1))
            return
        await self._after(running, written, error=error)

    async def _finish(
        self, running: Running, write: Callable[[], Awaitable[Finished | None]]
    ) -> None:
        await self._after(running, await self._write(write))

    async def _after(
        self, running: Running, finished: Finished | None, error: str | None = None
    ) -> None:
        if finished is None:
            return
        now = time.time()
        elapsed = time.monotonic() - running.started
        self.counters.last_job_at = now
        if finished.status is Status.COMPLETED:
            self.counters.processed += 1
            self.counters.last_success_at = now
        elif finished.status is Status.FAILED:
            self.counters.failed += 1
        else:
            self.counters.cancelled += 1
        self.metrics.job_finished(finished.status.value, elapsed)
        # a job that failed for good is the one line an operator must see; the rest is news
        emit = log.error if finished.status is Status.FAILED else log.info
        emit(
            f"job_{finished.status.value}",
            elapsed=round(elapsed, 3),
            **({"error": error} if error else {}),
        )
        self._hook(finished)

    def _hook(self, finished: Finished) -> None:
        if self.on_finished is None:
            return
        task = asyncio.create_task(self.on_finished(finished), name=f"finished-{finished.id}")
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_done)

    def _hook_done(self, task: asyncio.Task[None]) -> None:
        self._hook_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("finished_hook_failed", error=repr(exc))

    async def _wait_hooks(self) -> None:
        if self._hook_tasks:
            await asyncio.wait(self._hook_tasks, timeout=5.0)

    async def _write(self, write: Callable[[], Awaitable[Any]]) -> Any:
        """Retry a final write through a database outage, for as long as the lease could
        still be ours (or, once shutting down, until the grace period and a short window after
        it are over: the platform kills the process soon after); after that the row is rescued
        and the job runs again elsewhere."""
        lease_end = time.monotonic() + self.settings.lease_seconds
        failures = 0
        while True:
            try:
                # Shutting down, one attempt may not outlast the deadline either (waiting for a
                # pooled connection during an outage takes up to the pool's timeout), but each
                # gets LAST_ATTEMPT at least: a handler slow to stop must not cost a healthy
                # database its hand-back.
                left = self._shutdown_deadline() - time.monotonic()
                limit = None if left == float("inf") else max(left, LAST_ATTEMPT)
                async with asyncio.timeout(limit):
                    result = await write()
                self._db_up()
                if result is None or result is False:
                    log.warning("write_rejected_lease_gone")
                return result
            except Exception as exc:
                failures += 1
                if isinstance(exc, TimeoutError) and self.draining:
                    exc = TimeoutError("no answer from the database before the shutdown deadline")
                self._db_down(exc)
                deadline = min(lease_end, self._shutdown_deadline())
                if time.monotonic() > deadline:
                    log.error("final_write_abandoned", error=self.db_error)
                    return None
                pause = exponential(failures, base=0.25, cap=5.0)
                await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))

    def _grace_end(self) -> float:
        """When SHUTDOWN_GRACE, counted from the stop request, runs out (never, until then)."""
        if self._stop_requested_at is None:
            return float("inf")
        return self._stop_requested_at + self.settings.shutdown_grace

    def _shutdown_deadline(self) -> float:
        return self._grace_end() + HANDBACK_WINDOW

    def _message(self, exc: BaseException) -> str:
        """The row's `error`: one sentence for the job's owner, no server paths or FFmpeg
        output (see worker.row_error; the detail goes to the log with the traceback), and any
        known secret (service keys, the database password, the webhook secret) masked."""
        return self._mask(row_error(exc, self.settings.home))[:2000]

    def _abort(self, job_id: uuid.UUID, reason: Abort) -> None:
        running = self.in_flight.get(job_id)
        if running is not None:
            log.info("job_abort", job_id=str(job_id), reason=reason.value)
            running.abort(reason)

    # ---- heartbeat, cancellation, maintenance ----------------------------------------------

    def _on_cancel_notice(self, job_id: uuid.UUID) -> None:
        if job_id in self.in_flight:
            self._beat_now.set()  # the heartbeat confirms against the row, then aborts
        else:
            self._wake.set()  # maybe a pending job: maintenance ends it

    async def _heartbeat_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.heartbeat_interval):
                    await self._beat_now.wait()
            self._beat_now.clear()
            await self._heartbeat_once()

    async def _heartbeat_once(self) -> None:
        running = [r for r in self.in_flight.values() if r.abort_reason is None]
        if not running:
            return
        try:
            beat = await self.store.heartbeat([r.job for r in running])
        except Exception as exc:
            self._db_down(exc)
            self._abort_unrenewed(running)
            return
        self._db_up()
        now = time.monotonic()
        for r in running:
            if r.job.id not in beat.held:
                self._abort(r.job.id, Abort.LEASE_LOST)
            elif r.job.id in beat.cancel_requested:
                self._abort(r.job.id, Abort.CANCELLED)
            else:
                r.renewed = now

    def _abort_unrenewed(self, running: list[Running]) -> None:
        """Without the database we cannot renew; once a lease has surely run out by our own
        clock, another replica may have the job, so stop ours."""
        limit = time.monotonic() - self.settings.lease_seconds
        for r in running:
            if r.renewed < limit:
                self._abort(r.job.id, Abort.LEASE_LOST)

    async def _maintenance_loop(self) -> None:
        last_periodic = last_maintain = float("-inf")
        every = min(MAINTENANCE_EVERY, self.settings.lease_seconds / 4)
        while True:
            if time.monotonic() - last_maintain >= every:
                last_maintain = time.monotonic()
                await self._maintain_once()
            await self._refresh_stats()
            if self.periodic is not None and time.monotonic() - last_periodic >= PERIODIC_EVERY:
                last_periodic = time.monotonic()
                try:
                    await self.periodic()
                except Exception as exc:
                    log.warning("periodic_task_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(STATS_EVERY)

    async def _refresh_stats(self) -> None:
        """Keep the claim's plan on its index after bursts of inserts (see `stats_stale`)."""
        try:
            if await self.store.analyze_if_stale():
                log.info("analyzed_video_jobs")
        except Exception as exc:
            self._db_down(exc)

    async def _maintain_once(self) -> None:
        try:
            result = await self.store.maintain(self.settings.lease_seconds)
        except Exception as exc:
            self._db_down(exc)
            return
        for finished in result.rescued:
            log.warning(
                "lease_expired_rescued", job_id=str(finished.id), status=finished.status.value
            )
            if finished.status.terminal:
                self._hook(finished)
        for finished in result.cancelled:
            log.info("job_cancelled", job_id=str(finished.id), started=False)
            self._hook(finished)
        if any(f.status is Status.PENDING for f in result.rescued):
            self._wake.set()

    # ---- shutdown --------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Let running jobs finish within the grace period, then hand the rest back."""
        if self._job_tasks:
            # the grace period runs from SIGTERM, not from the end of a claim in progress
            left = max(0.0, self._grace_end() - time.monotonic())
            log.info("waiting_for_jobs", count=len(self._job_tasks), grace=round(left, 1))
            await asyncio.wait(set(self._job_tasks), timeout=left)
        for running in list(self.in_flight.values()):
            running.abort(Abort.SHUTDOWN)
        if self._job_tasks:
            await asyncio.wait(set(self._job_tasks))

    # ---- views for /health and /stats ------------------------------------------------------

    @property
    def listener_state(self) -> str:
        return self.listener.state.value if self.listener else ListenerState.UNAVAILABLE.value

    def loop_alive(self) -> bool:
        limit = max(self.settings.poll_interval * 3, 30.0)
        return self.draining or time.monotonic() - self.loop_beat < limit

    def in_flight_view(self) -> list[dict[str, Any]]:
        return [
            {
                "id": str(r.job.id),
                "progress": r.reporter.state.progress,
                "stage": r.reporter.state.stage,
                "message": r.reporter.state.message,
                "attempt": r.job.attempts,
                "running_seconds": round(time.monotonic() - r.started, 1),
            }
            for r in self.in_flight.values()
        ]
