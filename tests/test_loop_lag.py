"""The event-loop lag monitor (worker/loop_lag.py) on the test's real loop.

A call that holds the loop (here `time.sleep` inside a coroutine, the shape of an earlier caption
regex) is measured as lag of at least the block less one tick (the monitor's deadline falls at
most one tick after the block began), and logged once as a warning; a quiet loop reports little
and logs nothing. No bound here is on how fast anything runs: the lag measured is a fact about
the block, and the quiet loop's bound is the hostile corpus's own (tests/hostile/harness.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from tests.handlers import scripted
from tests.queue.helpers import running, wait_for
from worker import log as worker_log
from worker.loop_lag import LoopLag
from worker.queue.memory import MemoryJobStore
from worker.queue.runner import cancel_until_done

BLOCK = 1.2  # seconds the loop is held: past the 1 s warning threshold
QUIET = 0.5  # the hostile corpus's bound (MAX_LOOP_LAG)


@contextlib.asynccontextmanager
async def monitoring(**options: Any) -> AsyncIterator[LoopLag]:
    """A monitor running on this loop, past its first tick."""
    monitor = LoopLag(**options)
    task = asyncio.create_task(monitor.run())
    try:
        await ticked(monitor)
        yield monitor
    finally:
        await cancel_until_done([task])


async def ticked(monitor: LoopLag, more_than: int = 0) -> None:
    """Wait until the monitor has recorded more than `more_than` ticks."""
    await wait_for(lambda: asyncio.sleep(0, result=monitor.ticks > more_than))


@contextlib.contextmanager
def json_log() -> Iterator[list[dict[str, Any]]]:
    """The structlog lines written inside the block, parsed, once it ends."""
    out = io.StringIO()
    worker_log.configure("json", stream=out)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        worker_log.configure("console")
        lines.extend(json.loads(x) for x in out.getvalue().splitlines() if x.startswith("{"))


async def hold_the_loop(seconds: float) -> None:
    """Blocks the event loop: no await inside (test-only; the worker must never do this)."""
    time.sleep(seconds)  # noqa: ASYNC251 (the point of the test)


def lag_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [x for x in lines if x["event"].startswith("event_loop_lag")]


async def test_a_blocking_call_is_measured_as_lag_and_logged_once() -> None:
    with json_log() as lines:
        async with monitoring(in_flight=lambda: ["job-1"]) as monitor:
            with monitor.watch() as seen:
                await hold_the_loop(BLOCK)
            # the watch closed before the monitor's late tick ran, and counted it all the same
            during = seen.worst
            await ticked(monitor, monitor.ticks + 1)  # the late tick and one after it
            reading = monitor.reading()
    floor = BLOCK - monitor.tick
    assert during >= floor, f"a {BLOCK} s block measured as {during:.3f} s of lag"
    assert reading.max >= floor and reading.recent >= floor, reading
    [warning] = lag_lines(lines)
    assert warning["event"] == "event_loop_lag" and warning["level"] == "warning", warning
    assert warning["seconds"] >= floor and warning["in_flight"] == ["job-1"], warning


async def test_a_stall_in_several_pieces_warns_once_and_sums_it_up_when_over() -> None:
    with json_log() as lines:
        async with monitoring() as monitor:
            for _ in range(2):  # each piece ends in a late tick: two late ticks in a row
                await hold_the_loop(BLOCK)
                await ticked(monitor, monitor.ticks)
            await ticked(monitor, monitor.ticks)  # an on-time tick: the stall is over
    floor = BLOCK - monitor.tick
    warning, over = lag_lines(lines)
    assert warning["event"] == "event_loop_lag" and warning["seconds"] >= floor, warning
    assert over["event"] == "event_loop_lag_over" and over["level"] == "info", over
    assert over["late_ticks"] == 2 and over["seconds"] >= 2 * floor, over


async def test_a_quiet_loop_reports_little_lag() -> None:
    with json_log() as lines:
        async with monitoring() as monitor:
            with monitor.watch() as seen:
                await wait_for(lambda: asyncio.sleep(0, result=seen.ticks >= 5))
            reading = monitor.reading()
    assert seen.worst < QUIET, f"a quiet loop measured {seen.worst:.3f} s of lag"
    assert 0 <= reading.last <= reading.recent <= reading.max < QUIET, reading
    assert lag_lines(lines) == []


async def test_the_recent_lag_forgets_a_stall_after_its_window_and_the_max_does_not() -> None:
    async with monitoring(window=0.5) as monitor:
        await hold_the_loop(0.3)
        await ticked(monitor, monitor.ticks)
        floor = 0.3 - monitor.tick
        assert monitor.reading().recent >= floor
        await wait_for(lambda: asyncio.sleep(0, result=monitor.reading().recent < floor))
        assert monitor.reading().max >= floor


async def test_the_runner_supervises_a_monitor_for_as_long_as_it_runs() -> None:
    async with running(MemoryJobStore(), scripted) as runner:
        await ticked(runner.loop_lag)
        assert runner.loop_lag.running
        with runner.loop_lag.watch() as seen:
            await hold_the_loop(0.3)
        assert seen.worst >= 0.3 - runner.loop_lag.tick
    assert not runner.loop_lag.running


def test_the_worker_sets_its_start_up_objects_aside_from_the_collector() -> None:
    """A full collection while jobs run scans only what jobs made (worker/app.py)."""
    import gc

    from worker.app import settle_heap

    try:
        settle_heap()
        assert gc.get_freeze_count() > 10_000  # the modules, settings and pools of a worker
    finally:
        gc.unfreeze()
