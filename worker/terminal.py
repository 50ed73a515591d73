"""Showing a job on a terminal: a redrawn progress bar on a TTY, plain lines otherwise."""

from __future__ import annotations

import shutil
from typing import Any, TextIO

BAR_WIDTH = 30


class JobFollower:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last: tuple[Any, ...] | None = None

    def line(self, row: dict[str, Any]) -> str:
        progress = int(row.get("progress") or 0)
        filled = BAR_WIDTH * progress // 100
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        stage = row.get("stage") or row.get("status")
        message = row.get("message") or ""
        return (
            f"{bar} {progress:3d}%  {stage}: {message}"
            if message
            else f"{bar} {progress:3d}%  {stage}"
        )

    def update(self, row: dict[str, Any]) -> None:
        key = (row.get("status"), row.get("progress"), row.get("stage"), row.get("message"))
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
