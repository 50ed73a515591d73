"""Test helpers: run a Runner in the test's loop, wait on conditions with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from worker.queue.postgres import PostgresJobStore
from worker.queue.runner import Handler, Runner
from worker.settings import Settings

FAST = dict(
    lease_seconds=3,
    poll_interval_ms=200,
    shutdown_grace=5,
    job_timeout=60,
    retry_base_seconds=0.05,
    worker_id="test-worker",
    port=0,
)


def fast_settings(**overrides: Any) -> Settings:
    return replace(Settings(), **{**FAST, **overrides})


async def wait_for(
    check: Callable[[], Awaitable[Any]], timeout: float = 10.0, every: float = 0.05
) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        await asyncio.sleep(every)


async def status_is(
    store: PostgresJobStore, job_id: Any, *statuses: str, timeout: float = 10.0
) -> dict:
    async def check() -> dict | None:
        r = await store.get(job_id)
        return r if r and r["status"] in statuses else None

    result: dict = await wait_for(check, timeout)
    return result


class ClaimWatch:
    """A store, seen through its claims, so a test can wait for the claim loop to be idle
    instead of sleeping until it probably is. Everything but `claim` goes straight through."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.begun = 0  # claims begun so far
        self.last_empty = 0  # the number of the last claim that came back empty

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def claim(self, *args: Any, **kwargs: Any) -> Any:
        self.begun += 1
        number = self.begun
        jobs = await self._store.claim(*args, **kwargs)
        if not jobs:
            self.last_empty = number
        return jobs

    async def idle(self, runner: Runner, timeout: float = 10.0) -> None:
        """Return once the claim loop waits with no wake-up pending: its last claim came back
        empty, no other has begun, and nothing has woken it since. The loop does not yield
        between an empty claim and its wait, so from then on only a new wake-up (a NOTIFY, a
        free slot, the poll) moves it."""

        def waiting() -> bool:
            return 0 < self.begun == self.last_empty and not runner.state.wake.is_set()

        await wait_for(lambda: asyncio.sleep(0, result=waiting()), timeout)


@contextlib.asynccontextmanager
async def running(
    store: PostgresJobStore,
    handler: Handler,
    *,
    db_url: str | None = None,
    listen: bool = False,
    **settings: Any,
) -> AsyncIterator[Runner]:
    runner = Runner(fast_settings(**settings), store, handler, database_url=db_url, listen=listen)
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        runner.request_stop()
        await asyncio.wait_for(task, 30)
