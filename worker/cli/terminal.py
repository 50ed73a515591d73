"""Showing a job on a terminal: a redrawn progress bar on a TTY, plain lines otherwise.

The bar carries the time since the job started running here (`1:05`) and, once progress
has moved, an estimate of what is left (`~0:40 left`), extrapolated from the progress made
since then. The clock is this process's: the database's clock may differ from ours.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from typing import Any, TextIO

BAR_WIDTH = 30
ETA_FROM_PERCENT = 3  # below this, an estimate is mostly noise
ETA_AFTER_SECONDS = 2.0


class JobFollower:
    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.tty = out.isatty()
        self.clock = clock
        self._last: tuple[Any, ...] | None = None
        self._running_since: float | None = None  # when we first saw it processing
        self._start_progress = 0

    def line(self, row: dict[str, Any]) -> str:
        progress = int(row.get("progress") or 0)
        filled = BAR_WIDTH * progress // 100
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        stage = row.get("stage") or row.get("status")
        message = row.get("message") or ""
        text = (
            f"{bar} {progress:3d}%  {stage}: {message}"
            if message
            else f"{bar} {progress:3d}%  {stage}"
        )
        timing = self.timing(row)
        return f"{text}  [{timing}]" if timing else text

    def timing(self, row: dict[str, Any]) -> str:
        """`0:12` while running, `0:12, ~0:30 left` once an estimate makes sense."""
        if row.get("status") != "processing":
            self._running_since = None
            return ""
        now = self.clock()
        progress = int(row.get("progress") or 0)
        if self._running_since is None:
            self._running_since, self._start_progress = now, progress
        elapsed = now - self._running_since
        made = progress - self._start_progress
        if made < ETA_FROM_PERCENT or elapsed < ETA_AFTER_SECONDS or progress >= 100:
            return clock_text(elapsed)
        left = math.ceil(elapsed * (100 - progress) / made)  # never "~0:00 left" before the end
        return f"{clock_text(elapsed)}, ~{clock_text(left)} left"

    def update(self, row: dict[str, Any]) -> None:
        key: tuple[Any, ...] = (
            row.get("status"),
            row.get("progress"),
            row.get("stage"),
            row.get("message"),
        )
        if self.tty and row.get("status") == "processing":
            key += (int(self.clock()),)  # a terminal's clock ticks every second
        if key == self._last:
            return
        self._last = key
        text = self.line(row)
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns
            self.out.write("\r" + text[: width - 1].ljust(width - 1))
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """A line of its own between updates (the bar is redrawn below it)."""
        self.out.write(("\n" if self.tty else "") + text + "\n")
        self.out.flush()
        self._last = None

    def done(self, row: dict[str, Any]) -> None:
        if self.tty:
            self.out.write("\n")
        self.out.write(self.summary(row) + "\n")
        self.out.flush()

    def summary(self, row: dict[str, Any]) -> str:
        lines = [
            f"job {row['id']}: {row['status']} (attempt {row['attempts']} of "
            f"{row['max_attempts']}, progress {row['progress']}%)"
        ]
        for key in ("stage", "message", "video_url", "thumbnail_url", "error"):
            if row.get(key):
                lines.append(f"  {key}: {row[key]}")
        return "\n".join(lines)


def clock_text(seconds: float) -> str:
    """`0:07`, `12:30`, `1:02:03`."""
    whole = max(int(seconds + 0.5), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
