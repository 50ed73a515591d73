"""How late the event loop runs: the measure that shows a freeze when it happens.

Everything in a replica shares one event loop: the claim loop, the heartbeat that keeps every
lease alive, JOB_TIMEOUT and cancel, and the HTTP side (/health). Work that holds the loop, or
the GIL from a thread (a regex over a user's caption file once did, for minutes), stops
all of them at once, and nothing else in the worker can say so, since whatever would say it
is stopped too. So a task does nothing but sleep TICK seconds and note how late it woke
(`loop.time()` past the deadline it set): a loop that runs freely wakes it within a
millisecond or two; a loop held for 8 s wakes it 8 s late, the moment it is free.

It runs forever, so a tick is one sleep, one subtraction and one append to a bounded deque.
What it reports (`LagReading`, read by /stats and /metrics through the runner's status view):

- `last`: the lag of the latest tick;
- `recent`: the worst in the last WINDOW seconds, the `video_worker_event_loop_lag_seconds`
  gauge. A minute, so that every stall stays in the gauge for at least one scrape at
  Prometheus's default interval (1 min); `max_over_time` over it shows when;
- `max`: the worst since the worker started (`video_worker_event_loop_lag_max_seconds`).

A tick later than WARN_AT logs `event_loop_lag` once per stall, with the seconds and the jobs
in flight (a stall is a run of late ticks: work that holds the loop in several long pieces
logs one warning, and `event_loop_lag_over` with the total, at info, when it ends).

`watch()` reads the worst lag during a window of the caller's choosing: the hostile corpus
(tests/hostile/harness.py) asserts with it that no hostile job held the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from worker.log import get_logger

TICK = 0.1  # seconds between wake-ups
WINDOW = 60.0  # seconds that `recent` (the gauge) looks back
WARN_AT = 1.0  # a tick later than this is a stall, and logged

log = get_logger("video-worker.loop")


@dataclass(frozen=True)
class LagReading:
    """Seconds the loop ran late: the latest tick, the worst in `window`, the worst ever."""

    last: float
    recent: float
    max: float
    window: float

    def as_json(self) -> dict[str, float]:
        return {
            "last": round(self.last, 3),
            "recent": round(self.recent, 3),
            "max": round(self.max, 3),
            "window": self.window,
        }


@dataclass(eq=False)
class Watch:
    """The worst lag (seconds) and the ticks seen while a `LoopLag.watch()` block ran."""

    worst: float = 0.0
    ticks: int = 0

    def see(self, lag: float) -> None:
        self.worst = max(self.worst, lag)


class LoopLag:
    """The monitor. `run()` is its task (the runner supervises it); the rest is read from the
    loop's own thread. `in_flight` names the jobs running, for the warning."""

    def __init__(
        self,
        *,
        tick: float = TICK,
        window: float = WINDOW,
        warn_at: float = WARN_AT,
        in_flight: Callable[[], list[str]] | None = None,
    ) -> None:
        self.tick, self.window, self.warn_at = tick, window, warn_at
        self._in_flight = in_flight
        self.last = 0.0
        self.max = 0.0
        self.ticks = 0
        self._recent: deque[tuple[float, float]] = deque(maxlen=math.ceil(window / tick) + 1)
        self._due: float | None = None  # loop.time() the current sleep should end at
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watches: list[Watch] = []
        self._stall: list[float] = []  # the lags of the stall in progress

    @property
    def running(self) -> bool:
        return self._due is not None

    async def run(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        try:
            while True:
                self._due = loop.time() + self.tick
                await asyncio.sleep(self.tick)
                self._record(max(0.0, loop.time() - self._due))
        finally:
            self._due = None

    def overdue(self) -> float:
        """How late the tick in progress already is: a stall that has just ended counts before
        the monitor's own task gets to run."""
        if self._due is None or self._loop is None:
            return 0.0
        return max(0.0, self._loop.time() - self._due)

    def reading(self) -> LagReading:
        now, pending = time.monotonic(), self.overdue()
        since = now - self.window
        recent = max((lag for at, lag in self._recent if at >= since), default=0.0)
        return LagReading(
            last=max(self.last, pending),
            recent=max(recent, pending),
            max=max(self.max, pending),
            window=self.window,
        )

    @contextlib.contextmanager
    def watch(self) -> Iterator[Watch]:
        """The worst lag while the block runs, the tick in progress at its end included."""
        seen = Watch()
        self._watches.append(seen)
        try:
            yield seen
        finally:
            self._watches.remove(seen)
            seen.see(self.overdue())

    def _record(self, lag: float) -> None:
        self.last, self.max = lag, max(self.max, lag)
        self.ticks += 1
        self._recent.append((time.monotonic(), lag))
        for seen in self._watches:
            seen.see(lag)
            seen.ticks += 1
        if lag > self.warn_at or self._stall:
            self._follow_stall(lag)

    def _follow_stall(self, lag: float) -> None:
        """Warn at a stall's first late tick; when it ends after several, say how long."""
        if lag > self.warn_at:
            if not self._stall:
                jobs = self._in_flight() if self._in_flight else []
                log.warning("event_loop_lag", seconds=round(lag, 3), in_flight=jobs)
            self._stall.append(lag)
            return
        stall, self._stall = self._stall, []
        if len(stall) > 1:
            log.info(
                "event_loop_lag_over",
                seconds=round(sum(stall), 3),
                late_ticks=len(stall),
                worst=round(max(stall), 3),
            )
