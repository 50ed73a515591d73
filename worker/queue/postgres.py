"""The job store on Postgres: every statement the queue runs against `video_jobs`, over a pool.

Calls go one way: runner → PostgresJobStore → psycopg. Each method is one short autocommit
statement (maintenance is one short transaction); no transaction stays open while a job runs.
Writes made on behalf of a running job are fenced on its lease token: they return False when the
lease is gone, and the caller must then stop and write nothing more.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker.errors import PENDING_LIMIT_SQLSTATE, PayloadError, PendingLimitError
from worker.queue.models import DEFAULT_MAX_PAYLOAD_BYTES, Job, JobOutcome, Status, parse_json
from worker.queue.queries import QUERIES as Q
from worker.queue.store import Backlog, Beat, Finished, Maintenance, QueueCounts, UserLimits

# Advisory transaction locks that make maintenance and ANALYZE one replica's job at a time
# (the migrations take MIGRATION_LOCK in worker/db/migrate.py). Written here once: the
# statements take them as parameters, and tests import them.
MAINTENANCE_LOCK = 7238561029384756
ANALYZE_LOCK = 7238561029384757
# Seconds the claim, the heartbeat and the once-a-second statistics check wait for a pooled
# connection. The pool is sized so that they never wait in normal running; a longer wait means
# the database is down, and the worker then says so within seconds (log, /health) instead of
# after the pool's own 15 s.
OUTAGE_WAIT = 5.0
# Below this many rows (the planner's estimate) every status is counted exactly, which costs
# about a millisecond; above it finished statuses are estimated (see `counts` in queries.sql).
EXACT_COUNTS_BELOW = 10_000
FINISHED = frozenset({Status.COMPLETED.value, Status.FAILED.value, Status.CANCELLED.value})


class PostgresJobStore:
    """The job store on Postgres; it keeps to the ports in worker/queue/store.py (`JobStore`,
    `QueueReads`)."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        now: datetime | None = None,
    ) -> None:
        self.pool = pool
        self.max_payload_bytes = max_payload_bytes  # MAX_PAYLOAD_BYTES: larger ones stay there
        # The queue's clock: None is the database's own (always, in the worker). Tests set a
        # time here to move the clock of every statement instead of editing rows.
        self.now = now

    async def _all(
        self, name: str, params: dict[str, Any] | None = None, *, wait: float | None = None
    ) -> list[dict[str, Any]]:
        """Run one statement, on the store's clock; `wait` caps the wait for a pooled
        connection (the pool's own timeout otherwise)."""
        async with self.pool.connection(timeout=wait) as conn:
            cur = await conn.execute(Q[name], {"now": self.now, **(params or {})})
            return await cur.fetchall() if cur.description else []

    async def claim(self, worker_id: str, limit: int) -> list[Job]:
        rows = await self._all(
            "claim",
            {"worker_id": worker_id, "limit": limit, "max_payload_bytes": self.max_payload_bytes},
            wait=OUTAGE_WAIT,
        )
        return sorted((self._job(r) for r in rows), key=lambda j: -j.priority)

    def _job(self, row: dict[str, Any]) -> Job:
        return Job.from_row(row, self.max_payload_bytes)

    async def heartbeat(self, jobs: Sequence[Job]) -> Beat:
        rows = await self._all(
            "heartbeat",
            {"ids": [j.id for j in jobs], "tokens": [j.lease_token for j in jobs]},
            wait=OUTAGE_WAIT,
        )
        return Beat(
            held=frozenset(r["id"] for r in rows),
            cancel_requested=frozenset(r["id"] for r in rows if r["cancel_requested"]),
        )

    async def progress(
        self, job: Job, progress: int, stage: str | None, message: str | None
    ) -> bool:
        rows = await self._all(
            "progress",
            {
                "id": job.id,
                "token": job.lease_token,
                "progress": progress,
                "stage": stage,
                "message": message,
            },
        )
        return bool(rows)

    async def complete(self, job: Job, outcome: JobOutcome) -> Finished | None:
        rows = await self._all("complete", _completion(job, outcome))
        return _finished(rows, Status.COMPLETED)

    async def complete_and_claim(
        self, job: Job, outcome: JobOutcome, worker_id: str
    ) -> tuple[Finished | None, Job | None]:
        """`complete`, then `claim` of one job, in one statement: the hot path of a busy
        worker, whose slot is free again once the job is done."""
        [r] = await self._all(
            "complete_and_claim",
            {
                **_completion(job, outcome),
                "worker_id": worker_id,
                "max_payload_bytes": self.max_payload_bytes,
            },
        )
        finished = (
            Finished(r["done_id"], Status.COMPLETED, r["done_webhook_url"])
            if r["done_id"]
            else None
        )
        return finished, self._job(r) if r["id"] is not None else None

    async def fail(
        self, job: Job, error: str, *, retry: bool, backoff_seconds: float
    ) -> Finished | None:
        rows = await self._all(
            "fail",
            {
                "id": job.id,
                "token": job.lease_token,
                "error": error,
                "retry": retry,
                "backoff": backoff_seconds,
            },
        )
        """The row after the write: failed for good, or pending for a retry; None when the
        lease was gone and nothing was written."""
        if not rows:
            return None
        return Finished(job.id, Status(rows[0]["status"]), rows[0]["webhook_url"])

    async def cancelled(self, job: Job) -> Finished | None:
        rows = await self._all("cancelled", {"id": job.id, "token": job.lease_token})
        return _finished(rows, Status.CANCELLED)

    async def release(self, job: Job) -> bool:
        return bool(await self._all("release", {"id": job.id, "token": job.lease_token}))

    async def maintain(self, lease_seconds: int) -> Maintenance:
        """Rescue expired leases and end cancelled pending jobs, one replica at a time, in one
        statement (see `maintain` in queries.sql for why not a transaction of three)."""
        rows = await self._all(
            "maintain", {"lease_seconds": lease_seconds, "lock": MAINTENANCE_LOCK}
        )
        found: dict[str, list[Finished]] = {"rescued": [], "cancelled": []}
        locked, held_back = False, 0
        for r in rows:
            if r["kind"] == "lock":
                locked, held_back = bool(r["locked"]), int(r["marked"])
            else:
                found[r["kind"]].append(Finished(r["id"], Status(r["status"]), r["webhook_url"]))
        return Maintenance(found["rescued"], found["cancelled"], locked, held_back)

    async def set_limits(self, limits: UserLimits) -> None:
        await self._all(
            "write_limits",
            {"max_running": limits.max_running, "max_pending": limits.max_pending},
        )

    async def analyze_if_stale(self) -> bool:
        """ANALYZE video_jobs when its statistics are stale (see `stats_stale`); one replica
        at a time. Returns whether it ran. Called every second, it is also the first to
        notice an outage (OUTAGE_WAIT)."""
        async with self.pool.connection(timeout=OUTAGE_WAIT) as conn, conn.transaction():
            cur = await conn.execute(Q["stats_stale"])
            stale = await cur.fetchone()
            if not (stale and stale["stale"]):
                return False
            cur = await conn.execute(Q["analyze_lock"], {"lock": ANALYZE_LOCK})
            locked = await cur.fetchone()
            if not (locked and locked["locked"]):
                return False
            await conn.execute("analyze public.video_jobs")
            return True

    async def cleanup(self, days: int) -> int:
        rows = await self._all("cleanup", {"days": days})
        return int(rows[0]["removed"]) if rows else 0

    async def queue_counts(self, exact_below: int = EXACT_COUNTS_BELOW) -> QueueCounts:
        """Jobs by status at a cost that does not grow with history: active statuses exact,
        finished ones estimated once the table holds `exact_below` rows or more (and then all
        three say so)."""
        rows = await self._all("counts", {"exact_below": exact_below})
        counts = {s.value: 0 for s in Status}
        counts.update({r["status"]: int(r["n"]) for r in rows})
        estimated = FINISHED if any(r["estimated"] for r in rows) else frozenset()
        return QueueCounts(counts, estimated)

    async def counts(self) -> dict[str, int]:
        return (await self.queue_counts()).counts

    async def oldest_pending_seconds(self) -> float:
        rows = await self._all("oldest_pending")
        return float(rows[0]["seconds"] or 0.0) if rows else 0.0

    async def recent_failures(self, limit: int = 10) -> list[dict[str, Any]]:
        return await self._all("recent_failures", {"limit": limit})

    async def user_backlogs(self, limit: int = 10) -> list[Backlog]:
        rows = await self._all("user_backlogs", {"limit": limit})
        return [Backlog(r["user_id"], int(r["pending"]), int(r["running"])) for r in rows]

    async def users_waiting(self) -> int:
        rows = await self._all("users_waiting")
        return int(rows[0]["users"]) if rows else 0

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
        """Insert a job; returns (id, created). A repeated idempotency key returns the first
        job's id with created=False. PendingLimitError when the user has MAX_PENDING_PER_USER
        jobs pending already."""
        params = {
            "payload": Jsonb(payload),
            "user_id": user_id,
            "priority": priority,
            "run_at": run_at,
            "max_attempts": max_attempts,
            "idempotency_key": idempotency_key,
            "webhook_url": webhook_url,
        }
        try:
            rows = await self._all("enqueue", params)
        except pg_errors.Error as exc:
            if exc.sqlstate == PENDING_LIMIT_SQLSTATE:
                raise PendingLimitError(exc.diag.message_primary or str(exc)) from exc
            raise
        if rows:
            return rows[0]["id"], True
        existing = await self._all("job_by_idempotency_key", {"idempotency_key": idempotency_key})
        return existing[0]["id"], False

    async def job_statuses(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        rows = await self._all("job_statuses", {"ids": list(ids)})
        return {r["id"]: r["status"] for r in rows}

    async def get(self, job_id: uuid.UUID) -> dict[str, Any] | None:
        """One job's row; its `payload` is the JSON value, or the text itself when it is over
        the parse limits (the row of a poisoned job must still be readable)."""
        rows = await self._all("get_job", {"id": job_id})
        if not rows:
            return None
        row = rows[0]
        row["payload"] = _readable(row["payload"])
        return row

    async def request_cancel(self, job_id: uuid.UUID) -> bool:
        return bool(await self._all("request_cancel", {"id": job_id}))

    async def ping(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("select 1")


def _completion(job: Job, outcome: JobOutcome) -> dict[str, Any]:
    """The parameters of a fenced completion, shared by `complete` and the hot path."""
    return {
        "id": job.id,
        "token": job.lease_token,
        "video_url": outcome.video_url,
        "thumbnail_url": outcome.thumbnail_url,
        "result": Jsonb(outcome.result),
    }


def _readable(text: str) -> Any:
    try:
        return parse_json(text)
    except PayloadError:
        return text


def _finished(rows: list[dict[str, Any]], status: Status) -> Finished | None:
    return Finished(rows[0]["id"], status, rows[0]["webhook_url"]) if rows else None
