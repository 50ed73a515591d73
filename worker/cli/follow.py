"""Following a job from the terminal until it ends: `enqueue --wait`, `status --wait` and the
demo's progress bar. Apart from the commands so that the demo (which a command starts) and the
commands can both use it without importing each other."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

from worker.cli.terminal import JobFollower
from worker.liveness import scheduled_later, worker_seen
from worker.queue.models import Status
from worker.queue.postgres import PostgresJobStore

FOLLOW_EVERY = 0.5
# `--wait` says nobody is working when its job has been ready this long with no sign of a
# replica (a heartbeat, a claim or a finished job) within NO_WORKER_WINDOW.
NO_WORKER_AFTER = 5.0
NO_WORKER_WINDOW = 60


async def watch(
    store: PostgresJobStore,
    job_id: uuid.UUID,
    follower: JobFollower,
    every: float = FOLLOW_EVERY,
    *,
    notice_idle: bool = False,
) -> dict[str, Any] | None:
    """Show a job's progress until it ends; its final row, or None if there is no such job.
    With `notice_idle`, say once when the job waits and no replica shows signs of life."""
    idle = IdleNotice(store) if notice_idle else None
    while True:
        row = await store.get(job_id)
        if row is None:
            return None
        follower.update(row)
        if Status(row["status"]).terminal:
            return row
        if idle is not None and (text := await idle.check(row)):
            follower.note(text)
        await asyncio.sleep(every)


class IdleNotice:
    """Notices a job nobody picks up: ready for NO_WORKER_AFTER seconds while the database
    shows no replica at work (see `worker_seen` in queries.sql). Says so once."""

    def __init__(self, store: PostgresJobStore, after: float = NO_WORKER_AFTER) -> None:
        self.store = store
        self.after = after
        self.waiting_since: float | None = None
        self.said = False

    async def check(self, row: dict[str, Any]) -> str | None:
        if self.said or row["status"] != Status.PENDING or row.get("cancel_requested_at"):
            self.waiting_since = None
            return None
        now = time.monotonic()
        self.waiting_since = self.waiting_since or now
        if now - self.waiting_since < self.after or await worker_seen(self.store, NO_WORKER_WINDOW):
            return None
        if await scheduled_later(self.store, row["id"]):
            return None  # a retry's backoff or a future run_at: nobody should take it yet
        self.said = True
        return (
            f"no worker seems to be running: no replica has claimed or renewed a job in the "
            f"last {NO_WORKER_WINDOW} s. Start one with `video-worker run` against this "
            "database; still waiting (Ctrl-C stops waiting, the job stays queued)."
        )


async def follow(store: PostgresJobStore, job_id: uuid.UUID) -> int:
    """`--wait`: follow the job, then its summary; exit 0 only when it completed."""
    follower = JobFollower(sys.stdout)
    row = await watch(store, job_id, follower, notice_idle=True)
    if row is None:
        print(f"no job {job_id}", file=sys.stderr)
        return 1
    follower.done(row)
    return 0 if row["status"] == Status.COMPLETED else 1
