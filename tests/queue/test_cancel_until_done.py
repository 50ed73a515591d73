"""The runner's shutdown ends its background tasks even when one swallows a cancellation."""

from __future__ import annotations

import asyncio

from worker.queue.runner import cancel_until_done


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again() -> None:
    swallowed = 0
    started = asyncio.Event()

    async def stubborn() -> None:
        # what asyncio.wait_for does on 3.11 when its inner wait completes as it is cancelled
        nonlocal swallowed
        try:
            started.set()
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed += 1
        await asyncio.sleep(3600)

    task = asyncio.create_task(stubborn())
    # cancelled before its first step, it would never reach the try: and swallow nothing
    await asyncio.wait_for(started.wait(), timeout=30)
    await asyncio.wait_for(cancel_until_done([task], every=0.01), timeout=30)
    assert swallowed == 1 and task.cancelled()


async def test_ended_tasks_are_left_as_they_are() -> None:
    async def returns() -> None:
        return None

    task = asyncio.create_task(returns())
    await task
    await cancel_until_done([task])
    assert not task.cancelled()
