"""A job's last write (its outcome, or its hand-back), retried through a database outage.

It is retried for as long as the lease could still be ours or, once shutting down, until the
grace period and a short window after it are over (the platform kills the process soon
after). After that the row is rescued by maintenance and the job runs again elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from worker.log import get_logger
from worker.queue.state import WorkerState
from worker.retry import exponential

LAST_ATTEMPT = 2.0  # the least time a write gets once that window has passed

log = get_logger("video-worker.runner")


async def write_finally(
    state: WorkerState, lease_seconds: float, write: Callable[[], Awaitable[Any]]
) -> Any:
    """`write()`'s answer, or None when it was abandoned; None or False from `write()` itself
    means the lease was gone and nothing was written."""
    lease_end = time.monotonic() + lease_seconds
    failures = 0
    while True:
        try:
            # Shutting down, one attempt may not outlast the deadline either (waiting for a
            # pooled connection during an outage takes up to the pool's timeout), but each
            # gets LAST_ATTEMPT at least: a handler slow to stop must not cost a healthy
            # database its hand-back.
            left = state.shutdown_deadline() - time.monotonic()
            limit = None if left == float("inf") else max(left, LAST_ATTEMPT)
            async with asyncio.timeout(limit):
                result = await write()
            state.db_up()
            if result is None or result is False:
                log.warning("write_rejected_lease_gone")
            return result
        except Exception as exc:
            failures += 1
            if isinstance(exc, TimeoutError) and state.draining:
                exc = TimeoutError("no answer from the database before the shutdown deadline")
            state.db_down(exc)
            deadline = min(lease_end, state.shutdown_deadline())
            if time.monotonic() > deadline:
                log.error("final_write_abandoned", error=state.db_error)
                return None
            pause = exponential(failures, base=0.25, cap=5.0)
            await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))
