"""The ports of the queue: what the runner needs from a job store, and what /health and /stats
read from it.

Two implementations: `worker.queue.postgres.PostgresJobStore` (the one that runs), and
`worker.queue.memory.MemoryJobStore` (the same rules in a dict, for fast runner tests). One
conformance suite, tests/queue/test_conformance.py, runs against both, so the fast tests test
what the real store does; mypy checks that both keep to the ports (typing_checks.py).

The values the stores answer with live here, beside the ports, so that neither implementation
has to import the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from worker.queue.models import Job, JobOutcome, Status


@dataclass(frozen=True)
class Finished:
    """A job whose attempt ended: a terminal status, for webhooks and counters, or (from
    `fail` only) `pending` again, waiting for its next attempt."""

    id: uuid.UUID
    status: Status
    webhook_url: str | None


@dataclass(frozen=True)
class Beat:
    """The heartbeat's answer: which jobs we still hold, and which were asked to cancel."""

    held: frozenset[uuid.UUID]
    cancel_requested: frozenset[uuid.UUID]


@dataclass(frozen=True)
class QueueCounts:
    """Jobs by status; the statuses in `estimated` come from the planner's statistics."""

    counts: dict[str, int]
    estimated: frozenset[str]


@dataclass(frozen=True)
class Maintenance:
    rescued: list[Finished]
    cancelled: list[Finished]
    locked: bool
    held_back: int = 0  # pending jobs whose message now says (or no longer says) they are held


@dataclass(frozen=True)
class UserLimits:
    """Fair share's two caps (MAX_RUNNING_PER_USER, MAX_PENDING_PER_USER), as the database
    reads them: the claim and the insert trigger of sql/007_fair_share.sql."""

    max_running: int = 2
    max_pending: int = 100


@dataclass(frozen=True)
class Backlog:
    """One user's jobs waiting and running, for operators (ids and counts only)."""

    user_id: uuid.UUID
    pending: int
    running: int


class JobStore(Protocol):
    """What the runner's rooms call. Every write made for a running job is fenced on its lease
    token: it answers None or False when the lease is gone, and then nothing was written."""

    async def claim(self, worker_id: str, limit: int) -> list[Job]:
        """Up to `limit` ready jobs (highest priority; then the user with the fewest jobs
        running, rows without user_id counting as one user; then earliest run_at, then
        oldest), leased to `worker_id`, attempts counted. A user at `max_running` of the
        limits gets none; rows without user_id are not capped."""
        ...

    async def heartbeat(self, jobs: Sequence[Job]) -> Beat: ...

    async def progress(
        self, job: Job, progress: int, stage: str | None, message: str | None
    ) -> bool: ...

    async def complete(self, job: Job, outcome: JobOutcome) -> Finished | None: ...

    async def complete_and_claim(
        self, job: Job, outcome: JobOutcome, worker_id: str
    ) -> tuple[Finished | None, Job | None]:
        """`complete`, then `claim` of one job: the hot path of a busy worker."""
        ...

    async def fail(
        self, job: Job, error: str, *, retry: bool, backoff_seconds: float
    ) -> Finished | None:
        """Failed for good, or pending again after `backoff_seconds` while attempts remain and
        `retry` says the error may pass."""
        ...

    async def cancelled(self, job: Job) -> Finished | None: ...

    async def release(self, job: Job) -> bool:
        """Hand an unfinished job back (shutdown): pending at once, the attempt not counted."""
        ...

    async def maintain(self, lease_seconds: int) -> Maintenance:
        """Rescue leases older than `lease_seconds`, end cancelled pending jobs."""
        ...

    async def analyze_if_stale(self) -> bool: ...

    async def set_limits(self, limits: UserLimits) -> None:
        """Where the claim and the pending cap read them (the worker's start writes them)."""
        ...


class QueueReads(Protocol):
    """What /health, /stats and /metrics read about the queue as a whole."""

    async def ping(self) -> None: ...

    async def queue_counts(self) -> QueueCounts: ...

    async def recent_failures(self, limit: int = 10) -> list[dict[str, Any]]: ...

    async def oldest_pending_seconds(self) -> float: ...

    async def user_backlogs(self, limit: int = 10) -> list[Backlog]:
        """The users with the most jobs pending, most first (rows without user_id left out)."""
        ...

    async def users_waiting(self) -> int:
        """Users with a ready job pending; the rows without user_id count as one."""
        ...


class RunnerStore(JobStore, QueueReads, Protocol):
    """What a `Runner` is given: a store it can both work with and report on (both stores are)."""
