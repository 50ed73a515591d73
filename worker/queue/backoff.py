"""Exponential backoff with full jitter (the AWS architecture blog's variant): spreads retries
from many replicas so they do not stampede a database or a server that just came back."""

from __future__ import annotations

import random


def exponential(attempt: int, *, base: float, cap: float, jitter: bool = True) -> float:
    """Delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped, jittered
    into [delay/2, delay] so it never collapses to zero."""
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return random.uniform(delay / 2, delay) if jitter else delay


def job_retry_delay(attempt: int, base: float = 10.0) -> float:
    """Seconds before a failed job's next attempt: ~10 s, 20 s, 40 s … up to 10 minutes."""
    return exponential(attempt, base=base, cap=600.0)
