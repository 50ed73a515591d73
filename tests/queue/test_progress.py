"""The progress reporter on its own: the latest value lands even when it arrives while the
trailing write is still on its way to the database."""

from __future__ import annotations

import asyncio

from tests.queue.helpers import wait_for
from worker.queue.context import ProgressReporter


async def test_a_report_made_during_the_trailing_write_is_written_after_it() -> None:
    written: list[int | None] = []
    in_write = asyncio.Event()
    gate = asyncio.Event()
    gate.set()

    async def write(progress: int, stage: str | None, message: str | None) -> bool:
        written.append(progress)
        in_write.set()
        await gate.wait()
        return True

    reporter = ProgressReporter(write=write, on_lost=lambda: None, min_interval=0.05)
    try:
        await reporter.report(1)  # the first report is written at once
        gate.clear()
        in_write.clear()
        await reporter.report(2)  # within min_interval: left to the trailing write
        await asyncio.wait_for(in_write.wait(), timeout=10)  # the trailing write is under way
        await reporter.report(3)  # the handler reports again, then goes quiet
        gate.set()
        await wait_for(lambda: asyncio.sleep(0, result=written[-1] == 3), timeout=5)
        assert written == [1, 2, 3]
    finally:
        reporter.close()
