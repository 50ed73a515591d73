"""What the runner's rooms share: the jobs in flight, the counters, the replica's condition
(database up, draining, stuck) and the two wake-ups (a slot or a job is ready; check the
leases now).

The rooms write it; worker/queue/status.py turns it into the read-only view that /health,
/stats, /metrics and the dashboard show. Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
import enum
import time
import uuid
from dataclasses import dataclass, field

from worker.log import get_logger
from worker.queue.context import ProgressReporter
from worker.queue.models import Job, JobOutcome

HANDBACK_WINDOW = 4.0  # after SHUTDOWN_GRACE, for the last writes, before the platform kills us

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


@dataclass
class WorkerState:
    worker_id: str
    shutdown_grace: float
    started_at: float = field(default_factory=time.time)
    loop_beat: float = field(default_factory=time.monotonic)  # the claim loop's last turn
    db_ok: bool = True
    db_error: str | None = None
    draining: bool = False
    stuck: str | None = None  # why the replica must be restarted, for /health
    stop_requested_at: float | None = None
    in_flight: dict[uuid.UUID, Running] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # claim now: a slot or a job
    beat_now: asyncio.Event = field(default_factory=asyncio.Event)  # renew (and check) leases
    hurry: asyncio.Event = field(default_factory=asyncio.Event)  # the grace period ends now

    def db_up(self) -> None:
        if not self.db_ok:
            log.info("database_reachable_again")
        self.db_ok, self.db_error = True, None

    def db_down(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}".strip()[:300]
        if self.db_ok:
            log.warning("database_unreachable", error=message)
        self.db_ok, self.db_error = False, message

    def request_stop(self) -> None:
        """Stop claiming now; running jobs get SHUTDOWN_GRACE to finish."""
        if not self.draining:
            again = {"again": "a second SIGTERM or Ctrl-C hands them back now"}
            log.info("draining", in_flight=len(self.in_flight), grace=self.shutdown_grace,
                     **(again if self.in_flight else {}))  # fmt: skip
            self.stop_requested_at = time.monotonic()
        self.draining = True
        self.wake.set()

    def stop_now(self) -> None:
        """End the grace period at once: running jobs are handed back without waiting (a
        second Ctrl-C, as interactive tools do)."""
        now = time.monotonic()
        if self.in_flight and not self.hurry.is_set():
            log.info("handing_back_now", in_flight=len(self.in_flight))
        self.stop_requested_at = min(self.stop_requested_at or now, now - self.shutdown_grace)
        self.draining = True
        self.hurry.set()
        self.wake.set()

    def abort(self, job_id: uuid.UUID, reason: Abort) -> None:
        running = self.in_flight.get(job_id)
        if running is not None:
            log.info("job_abort", job_id=str(job_id), reason=reason.value)
            running.abort(reason)

    def grace_end(self) -> float:
        """When SHUTDOWN_GRACE, counted from the stop request, runs out (never, until then)."""
        if self.stop_requested_at is None:
            return float("inf")
        return self.stop_requested_at + self.shutdown_grace

    def shutdown_deadline(self) -> float:
        return self.grace_end() + HANDBACK_WINDOW
