"""Test helpers: run a Runner in the test's loop, wait on conditions with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from worker.queue.jobs import JobStore
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


async def status_is(store: JobStore, job_id: Any, *statuses: str, timeout: float = 10.0) -> dict:
    async def check() -> dict | None:
        r = await store.get(job_id)
        return r if r and r["status"] in statuses else None

    result: dict = await wait_for(check, timeout)
    return result


@contextlib.asynccontextmanager
async def running(
    store: JobStore,
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
