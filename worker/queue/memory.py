"""The job store in memory: the rules of worker/queue/queries.sql over a dict, for runner tests
that are about the runner and not about SQL.

It keeps what the runner relies on (claim order and leases, users' turns and their caps on
running and pending jobs, fenced writes, retries with backoff, cancellation, hand-back, rescue
of expired leases, counts) and nothing of what only Postgres can show (SKIP LOCKED and the
running cap's advisory locks across processes, plans, NOTIFY). tests/queue/test_conformance.py
holds it to the Postgres store's behaviour.

The clock is passed in (`clock`, UTC datetimes) so that tests move time instead of waiting.
Each method yields to the event loop once, as a round trip would, and then runs without a
suspension point, which makes it atomic, like the single statements it stands for.

Over 300 lines on purpose: one method for each statement of queries.sql it stands for, kept in
one file so that the two can be read side by side.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.errors import PayloadError, PendingLimitError
from worker.queue.models import DEFAULT_MAX_PAYLOAD_BYTES, Job, JobOutcome, Status, parse_json
from worker.queue.store import Backlog, Beat, Finished, Maintenance, QueueCounts, UserLimits

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Row:
    """One job's row, with the columns of `video_jobs` the queue reads or writes."""

    id: uuid.UUID
    seq: int
    payload: str  # JSON text, as the claim sends it
    created_at: datetime
    run_at: datetime
    priority: int = 0
    max_attempts: int = 3
    user_id: uuid.UUID | None = None
    idempotency_key: str | None = None
    webhook_url: str | None = None
    status: Status = Status.PENDING
    attempts: int = 0
    worker_id: str | None = None
    lease_token: uuid.UUID | None = None
    heartbeat_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    progress: int = 0
    stage: str | None = "queued"
    message: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def held_by(self, job: Job) -> bool:
        return self.status is Status.PROCESSING and self.lease_token == job.lease_token


class MemoryJobStore:
    """Keeps to worker.queue.store.JobStore and QueueReads; see the module's docstring."""

    def __init__(
        self, *, clock: Clock = utc_now, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    ) -> None:
        self.clock = clock
        self.max_payload_bytes = max_payload_bytes
        self.rows: dict[uuid.UUID, Row] = {}
        self._seq = 0
        self.limits = UserLimits()

    # ---- the runner's port -------------------------------------------------------------------

    async def claim(self, worker_id: str, limit: int) -> list[Job]:
        """One job at a time, as video_jobs_claim_v2 picks them: priority, then the user with
        the fewest running (rows without user_id are one user, never capped), then age."""
        await asyncio.sleep(0)
        now = self.clock()
        claimed: list[Job] = []
        while len(claimed) < limit:
            running = self._running_by_user()
            ready = [
                r
                for r in self._ready(now)
                if r.user_id is None or running.get(r.user_id, 0) < self.limits.max_running
            ]
            if not ready:
                break
            pick = min(
                ready, key=lambda r: (-r.priority, running.get(r.user_id, 0), r.run_at, r.seq)
            )
            claimed.append(self._lease(pick, worker_id, now))
        return claimed

    def _ready(self, now: datetime) -> list[Row]:
        return [
            r
            for r in self.rows.values()
            if r.status is Status.PENDING and r.run_at <= now and r.cancel_requested_at is None
        ]

    def _running_by_user(self) -> dict[uuid.UUID | None, int]:
        running: dict[uuid.UUID | None, int] = {}
        for row in self.rows.values():
            if row.status is Status.PROCESSING:
                running[row.user_id] = running.get(row.user_id, 0) + 1
        return running

    def _lease(self, row: Row, worker_id: str, now: datetime) -> Job:
        row.status, row.attempts, row.worker_id = Status.PROCESSING, row.attempts + 1, worker_id
        row.lease_token, row.heartbeat_at = uuid.uuid4(), now
        row.started_at = row.started_at or now
        row.progress, row.stage, row.message, row.error = 0, "starting", "Job claimed", None
        size = len(row.payload.encode())
        return Job(
            id=row.id,
            payload_text=row.payload if size <= self.max_payload_bytes else None,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            lease_token=row.lease_token,
            user_id=row.user_id,
            priority=row.priority,
            webhook_url=row.webhook_url,
            created_at=row.created_at,
            payload_bytes=size,
            max_payload_bytes=self.max_payload_bytes,
        )

    async def heartbeat(self, jobs: Sequence[Job]) -> Beat:
        await asyncio.sleep(0)
        held = [r for r in map(self._held, jobs) if r is not None]
        for row in held:
            row.heartbeat_at = self.clock()
        return Beat(
            held=frozenset(r.id for r in held),
            cancel_requested=frozenset(r.id for r in held if r.cancel_requested_at is not None),
        )

    def _held(self, job: Job) -> Row | None:
        row = self.rows.get(job.id)
        return row if row is not None and row.held_by(job) else None

    async def progress(
        self, job: Job, progress: int, stage: str | None, message: str | None
    ) -> bool:
        await asyncio.sleep(0)
        row = self._held(job)
        if row is None:
            return False
        row.progress = max(row.progress, progress)
        row.stage = stage if stage is not None else row.stage
        row.message = message if message is not None else row.message
        return True

    async def complete(self, job: Job, outcome: JobOutcome) -> Finished | None:
        await asyncio.sleep(0)
        row = self._held(job)
        if row is None:
            return None
        row.status, row.progress, row.stage = Status.COMPLETED, 100, "completed"
        row.message = "Done"
        row.video_url, row.thumbnail_url = outcome.video_url, outcome.thumbnail_url
        row.result, row.error, row.completed_at = outcome.result, None, self.clock()
        row.lease_token = row.heartbeat_at = None
        return Finished(row.id, row.status, row.webhook_url)

    async def complete_and_claim(
        self, job: Job, outcome: JobOutcome, worker_id: str
    ) -> tuple[Finished | None, Job | None]:
        finished = await self.complete(job, outcome)
        claimed = await self.claim(worker_id, 1)
        return finished, claimed[0] if claimed else None

    async def fail(
        self, job: Job, error: str, *, retry: bool, backoff_seconds: float
    ) -> Finished | None:
        await asyncio.sleep(0)
        row = self._held(job)
        if row is None:
            return None
        now = self.clock()
        again = retry and row.attempts < row.max_attempts
        row.errors.append(
            {"attempt": row.attempts, "at": now, "error": error, "worker_id": row.worker_id}
        )
        if again:
            row.status, row.run_at = Status.PENDING, now + timedelta(seconds=backoff_seconds)
            row.completed_at, row.progress, row.stage = None, 0, "retrying"
            row.message = f"Attempt {row.attempts} failed; will retry"
        else:
            row.status, row.completed_at = Status.FAILED, now
            row.stage, row.message = "failed", "Failed"
        row.error, row.lease_token, row.heartbeat_at, row.worker_id = error, None, None, None
        return Finished(row.id, row.status, row.webhook_url)

    async def cancelled(self, job: Job) -> Finished | None:
        await asyncio.sleep(0)
        row = self._held(job)
        if row is None:
            return None
        row.status, row.stage, row.message = Status.CANCELLED, "cancelled", "Cancelled"
        row.completed_at, row.lease_token, row.heartbeat_at = self.clock(), None, None
        return Finished(row.id, row.status, row.webhook_url)

    async def release(self, job: Job) -> bool:
        await asyncio.sleep(0)
        row = self._held(job)
        if row is None:
            return False
        row.status, row.run_at = Status.PENDING, self.clock()
        row.attempts = max(row.attempts - 1, 0)
        row.progress, row.stage = 0, "queued"
        row.message = "Handed back by a replica that was shutting down"
        row.lease_token = row.heartbeat_at = row.worker_id = None
        return True

    async def maintain(self, lease_seconds: int) -> Maintenance:
        """One process holds every row here, so this replica always has the lock."""
        await asyncio.sleep(0)
        now = self.clock()
        expired_before = now - timedelta(seconds=lease_seconds)
        rescued = [
            self._rescue(r, now)
            for r in list(self.rows.values())
            if r.status is Status.PROCESSING
            and r.heartbeat_at is not None
            and r.heartbeat_at < expired_before
        ]
        cancelled = []
        for row in self.rows.values():
            if row.status is Status.PENDING and row.cancel_requested_at is not None:
                row.status, row.stage = Status.CANCELLED, "cancelled"
                row.message, row.completed_at = "Cancelled before it started", now
                cancelled.append(Finished(row.id, row.status, row.webhook_url))
        return Maintenance(rescued, cancelled, locked=True, held_back=self._mark_held(now))

    def _mark_held(self, now: datetime) -> int:
        """video_jobs_mark_held_v1: the pending jobs of users at the running cap say so."""
        running, changed = self._running_by_user(), 0
        for row in self._ready(now):
            n = running.get(row.user_id, 0) if row.user_id is not None else 0
            held = row.user_id is not None and n >= self.limits.max_running
            if held:
                message: str | None = held_message(n)
            elif _says_held(row.message):
                message = None
            else:
                continue
            if row.message != message:
                row.message, changed = message, changed + 1
        return changed

    def _rescue(self, row: Row, now: datetime) -> Finished:
        if row.cancel_requested_at is not None:
            row.status, row.stage, row.completed_at = Status.CANCELLED, "cancelled", now
        else:
            used_up = row.attempts >= row.max_attempts
            row.status = Status.FAILED if used_up else Status.PENDING
            row.completed_at = now if used_up else None
            row.stage = "failed" if used_up else "queued"
            row.progress = row.progress if used_up else 0
            row.error = (
                "The worker running this job stopped responding "
                f"(attempt {row.attempts} of {row.max_attempts})"
            )
            row.errors.append(
                {
                    "attempt": row.attempts,
                    "at": now,
                    "worker_id": row.worker_id,
                    "error": "lease expired: the worker stopped responding",
                }
            )
        row.run_at = now
        row.lease_token = row.heartbeat_at = row.worker_id = None
        return Finished(row.id, row.status, row.webhook_url)

    async def analyze_if_stale(self) -> bool:
        """A dict has no planner statistics to refresh."""
        await asyncio.sleep(0)
        return False

    async def set_limits(self, limits: UserLimits) -> None:
        await asyncio.sleep(0)
        self.limits = limits

    # ---- what /health and /stats read --------------------------------------------------------

    async def ping(self) -> None:
        await asyncio.sleep(0)

    async def queue_counts(self) -> QueueCounts:
        return QueueCounts(await self.counts(), frozenset())

    async def counts(self) -> dict[str, int]:
        await asyncio.sleep(0)
        counts = {s.value: 0 for s in Status}
        for row in self.rows.values():
            counts[row.status.value] += 1
        return counts

    async def recent_failures(self, limit: int = 10) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        failed = [r for r in self.rows.values() if r.status is Status.FAILED]
        # newest first, rows without completed_at last (`desc nulls last`)
        failed.sort(key=lambda r: (r.completed_at is not None, r.completed_at or r.created_at))
        failed.reverse()
        return [
            {"id": r.id, "error": r.error, "completed_at": r.completed_at, "attempts": r.attempts}
            for r in failed[:limit]
        ]

    async def user_backlogs(self, limit: int = 10) -> list[Backlog]:
        await asyncio.sleep(0)
        pending: dict[uuid.UUID, int] = {}
        for row in self.rows.values():
            if row.status is Status.PENDING and row.user_id is not None:
                pending[row.user_id] = pending.get(row.user_id, 0) + 1
        running = self._running_by_user()
        top = sorted(pending.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]
        return [Backlog(user, n, running.get(user, 0)) for user, n in top]

    async def users_waiting(self) -> int:
        await asyncio.sleep(0)
        return len({r.user_id for r in self._ready(self.clock())})

    async def oldest_pending_seconds(self) -> float:
        await asyncio.sleep(0)
        now = self.clock()
        ready = [r.run_at for r in self.rows.values() if r.status is Status.PENDING]
        ready = [t for t in ready if t <= now]
        return (now - min(ready)).total_seconds() if ready else 0.0

    # ---- what tests and the CLI do around the runner -----------------------------------------

    async def enqueue(
        self,
        payload: Any,
        *,
        user_id: uuid.UUID | None = None,
        priority: int = 0,
        run_at: datetime | None = None,
        max_attempts: int = 3,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
    ) -> tuple[uuid.UUID, bool]:
        await asyncio.sleep(0)
        for row in self.rows.values():
            if idempotency_key is not None and row.idempotency_key == idempotency_key:
                return row.id, False
        self._check_pending_cap(user_id)
        now = self.clock()
        self._seq += 1
        row = Row(
            id=uuid.uuid4(),
            seq=self._seq,
            payload=json.dumps(payload),
            created_at=now,
            run_at=run_at or now,
            priority=priority,
            max_attempts=max_attempts,
            user_id=user_id,
            idempotency_key=idempotency_key,
            webhook_url=webhook_url,
        )
        self.rows[row.id] = row
        return row.id, True

    def _check_pending_cap(self, user_id: uuid.UUID | None) -> None:
        """The trigger video_jobs_pending_cap: rows without user_id are not limited."""
        if user_id is None:
            return
        pending = sum(
            1 for r in self.rows.values() if r.user_id == user_id and r.status is Status.PENDING
        )
        if pending >= self.limits.max_pending:
            raise PendingLimitError(
                f"you have {pending} videos waiting: "
                "wait until one of them starts before adding another"
            )

    async def get(self, job_id: uuid.UUID) -> dict[str, Any] | None:
        """The row as `get_job` reads it; the payload parsed, or its text when it cannot be."""
        await asyncio.sleep(0)
        row = self.rows.get(job_id)
        if row is None:
            return None
        hidden = {"seq", "lease_token"}  # columns `get_job` does not read either
        found = {
            name: getattr(row, name) for name in row.__dataclass_fields__ if name not in hidden
        }
        found["status"] = row.status.value
        try:
            found["payload"] = parse_json(row.payload)
        except PayloadError:
            found["payload"] = row.payload
        return found

    async def request_cancel(self, job_id: uuid.UUID) -> bool:
        await asyncio.sleep(0)
        row = self.rows.get(job_id)
        if row is None or row.status not in (Status.PENDING, Status.PROCESSING):
            return False
        row.cancel_requested_at = row.cancel_requested_at or self.clock()
        return True

    async def job_statuses(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        await asyncio.sleep(0)
        return {i: self.rows[i].status.value for i in ids if i in self.rows}


def held_message(running: int) -> str:
    """A held-back job's message, as video_jobs_mark_held_v1 writes it."""
    return f"waiting: {running} of your videos {'is' if running == 1 else 'are'} rendering"


def _says_held(message: str | None) -> bool:
    """`message like 'waiting: % rendering'`."""
    return (
        message is not None and message.startswith("waiting: ") and message.endswith(" rendering")
    )
