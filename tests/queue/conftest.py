"""Queue test fixtures: the in-memory store, beside the Postgres one of tests/conftest.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from worker.queue.memory import MemoryJobStore


class ManualClock:
    """A clock that moves only when told: time passes in a test without waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def memory_store() -> MemoryJobStore:
    """On the real clock: the runner's own timers (heartbeat, lease) run on real time too."""
    return MemoryJobStore()
