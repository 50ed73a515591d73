"""One job's run: the handler in a task of its own, watched by a supervisor that enforces
JOB_TIMEOUT, aborts it on cancel / lost lease / shutdown, and writes the outcome to the row.

A handler is stopped by asyncio cancellation and must clean up in `finally` (kill FFmpeg,
remove temp files). One that is still running ABORT_WAIT seconds after it was cancelled ignored
the cancellation (a thread it waits on cannot be stopped, say): its row gets its outcome, but
its slot stays taken until it really ends, since it still uses the machine, and the replica is
marked stuck: it drains and exits for the platform to start a fresh one (see runner.py).

A completed job's write also claims the next job for its slot (the hot path); what it claims
goes to the claim loop's `start`, the one place a job starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from worker.errors import JobTimeout, LeaseLost, as_worker_error
from worker.log import SecretMasker, get_logger
from worker.metrics import WorkerMetrics
from worker.queue.context import JobContext
from worker.queue.final_write import write_finally
from worker.queue.hooks import FinishedHooks
from worker.queue.models import Job, JobOutcome, Status
from worker.queue.state import Abort, Running, WorkerState
from worker.queue.store import Finished, JobStore
from worker.retry import job_retry_delay
from worker.row_error import row_error
from worker.settings import Settings

Handler = Callable[[Job, JobContext], Coroutine[Any, Any, JobOutcome | None]]

log = get_logger("video-worker.runner")


class JobRun:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        state: WorkerState,
        handler: Handler,
        *,
        hooks: FinishedHooks,
        metrics: WorkerMetrics,
        masker: SecretMasker,
        start: Callable[[Job], None],
    ) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self.handler = handler
        self.hooks = hooks
        self.metrics = metrics
        self.masker = masker
        self.start = start  # the claim loop's start, for the job the hot path claims

    async def supervise(self, running: Running) -> None:
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
        self.state.stuck = self.state.stuck or reason
        self.state.request_stop()

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
        in_flight = self.state.in_flight
        if in_flight.get(running.job.id) is running:
            del in_flight[running.job.id]
        self.state.wake.set()

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
        if self.state.draining:
            return await self.store.complete(job, outcome)
        finished, claimed = await self.store.complete_and_claim(job, outcome, self.state.worker_id)
        if claimed is not None:
            self.start(claimed)
        return finished

    async def _fail(self, running: Running, error: str, *, retry: bool) -> None:
        job = running.job
        delay = job_retry_delay(job.attempts, self.settings.retry_base_seconds)
        written = await self._write(
            lambda: self.store.fail(job, error, retry=retry, backoff_seconds=delay)
        )
        if written is not None and written.status is Status.PENDING:
            self.state.counters.retried += 1
            self.metrics.job_finished("retried", time.monotonic() - running.started)
            log.warning("job_will_retry", error=error, retry_in=round(delay, 1))
            return
        self._after(running, written, error=error)

    async def _finish(
        self, running: Running, write: Callable[[], Awaitable[Finished | None]]
    ) -> None:
        self._after(running, await self._write(write))

    def _after(self, running: Running, finished: Finished | None, error: str | None = None) -> None:
        """Count the job's end, log it, and fire the hooks (webhooks)."""
        if finished is None:
            return
        now = time.time()
        elapsed = time.monotonic() - running.started
        counters = self.state.counters
        counters.last_job_at = now
        if finished.status is Status.COMPLETED:
            counters.processed += 1
            counters.last_success_at = now
        elif finished.status is Status.FAILED:
            counters.failed += 1
        else:
            counters.cancelled += 1
        self.metrics.job_finished(finished.status.value, elapsed)
        # a job that failed for good is the one line an operator must see; the rest is news
        emit = log.error if finished.status is Status.FAILED else log.info
        emit(
            f"job_{finished.status.value}",
            elapsed=round(elapsed, 3),
            **({"error": error} if error else {}),
        )
        self.hooks.fire(finished)

    async def _write(self, write: Callable[[], Awaitable[Any]]) -> Any:
        return await write_finally(self.state, self.settings.lease_seconds, write)

    def _message(self, exc: BaseException) -> str:
        """The row's `error`: one sentence for the job's owner, no server paths or FFmpeg
        output (see worker.row_error; the detail goes to the log with the traceback), and any
        known secret (service keys, the database password, the webhook secret) masked."""
        return self.masker.mask(row_error(exc, self.settings.home))[:2000]
