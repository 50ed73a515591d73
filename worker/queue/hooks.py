"""What runs after a job ended for good (the webhook outbox's `on_finished`), each as a task of
its own so that a slow delivery never holds a slot; a failure is logged, never lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from worker.log import get_logger
from worker.queue.store import Finished

HOOKS_WAIT = 5.0

FinishedHook = Callable[[Finished], Coroutine[Any, Any, None]]

log = get_logger("video-worker.runner")


class FinishedHooks:
    def __init__(self, on_finished: FinishedHook | None) -> None:
        self.on_finished = on_finished
        self._tasks: set[asyncio.Task[None]] = set()

    def fire(self, finished: Finished) -> None:
        if self.on_finished is None:
            return
        task = asyncio.create_task(self.on_finished(finished), name=f"finished-{finished.id}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("finished_hook_failed", error=repr(exc))

    async def wait(self) -> None:
        """At shutdown: give the hooks in progress a few seconds to end."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=HOOKS_WAIT)
