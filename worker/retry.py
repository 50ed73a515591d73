"""Waiting between attempts, for everything the worker retries: downloads, webhook deliveries,
failed jobs, the listener's reconnects.

Exponential backoff with full jitter (the AWS architecture blog's variant) spreads retries from
many replicas so they do not stampede a database or a server that just came back. A server that
says when to come back (`Retry-After`) is believed, up to a cap. This module imports nothing of
the worker's, so fetch, webhooks and the queue can all use it without depending on each other.
"""

from __future__ import annotations

import random


def exponential(attempt: int, *, base: float, cap: float, jitter: bool = True) -> float:
    """Delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped, jittered
    into [delay/2, delay] so it never collapses to zero."""
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return random.uniform(delay / 2, delay) if jitter else delay


def next_delay(
    attempt: int, retry_after: float | None, *, base: float, cap: float, max_retry_after: float
) -> float:
    """Seconds before retry number `attempt`: the server's Retry-After when it gave one (cut to
    `max_retry_after`, never negative), else `exponential` backoff."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), max_retry_after)
    return exponential(attempt, base=base, cap=cap)


def job_retry_delay(attempt: int, base: float = 10.0) -> float:
    """Seconds before a failed job's next attempt: ~10 s, 20 s, 40 s … up to 10 minutes."""
    return exponential(attempt, base=base, cap=600.0)
