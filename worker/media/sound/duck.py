"""Ducking with a depth: the music's gain envelope under speech, from pass one's speech levels.

A sidechain compressor cannot be told how deep to go: its depth follows the speech's level and
its ratio, and its release swings the music back as fast as it fell (a pump). Since the whole
foreground is known before the music is mixed, the worker plans the envelope instead:

    pass one: the speech track's RMS level per 100 ms frame (astats)
           → speech segments: frames above DUCK_THRESHOLD_DB once the foreground is normalized,
             gaps shorter than two ramps and a hold merged (no pumping between sentences),
             at most MAX_SEGMENTS (the shortest gaps merged further)
           → the envelope, in dB: 0, a linear ramp down to -depth ending where speech starts
             (the speech is known ahead, so the music is already down when someone speaks),
             -depth while they speak, a linear ramp back to 0 starting where they stop
    pass two: `asendcmd` sends `volume@duck` one expression per ramp, clamped at its ends, so
             the command file holds two short lines per segment whatever the video's length.

A ramp lasts `ramp_seconds(depth)`: at least MIN_RAMP_SECONDS, and slow enough that the gain
never moves more than MAX_SLOPE_DB_PER_S (4 dB in 100 ms, under the contract's 6), so even at
30 dB the music is back to full 0.75 s after speech ends (the contract allows 1.5 s). Merged
gaps are longer than two ramps, so ramps never meet and the music always reaches its depth.

Every list here has one entry per 100 ms frame of the output (or fewer), so the work is bounded
by MAX_OUTPUT_SECONDS, as the progress lines FFmpeg prints are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

FRAME_SECONDS = 0.1  # pass one's measuring frame (4800 samples at 48 kHz)
DUCK_THRESHOLD_DB = -46.0  # speech RMS (dBFS, normalized) above this is someone speaking
MAX_SLOPE_DB_PER_S = 40.0
MIN_RAMP_SECONDS = 0.5
HOLD_SECONDS = 0.3  # the music stays at full at least this long between two ramps
MAX_SEGMENTS = 2_000  # bounds the command file, whatever the speech does
DUCK_FILTER = "volume@duck"
COMMANDS_FILE = "duck.cmd"


@dataclass(frozen=True)
class Envelope:
    """The music's gain: -`depth` dB over each segment (seconds), ramps of `ramp` s around."""

    depth: float
    ramp: float
    segments: tuple[tuple[float, float], ...]

    def gain_db(self, start: float, frames: int) -> list[float]:
        """The gain at the middle of each of `frames` 100 ms frames from `start` seconds."""
        gains = [0.0] * frames
        for begin, end in self.segments:
            first = max(0, math.floor((begin - self.ramp - start) / FRAME_SECONDS))
            last = min(frames, math.ceil((end + self.ramp - start) / FRAME_SECONDS) + 1)
            for i in range(first, last):
                gains[i] = min(gains[i], self._at(start + (i + 0.5) * FRAME_SECONDS, begin, end))
        return gains

    def _at(self, t: float, begin: float, end: float) -> float:
        if t > end:  # coming back up
            return -self.depth * (1 - min(1.0, (t - end) / self.ramp))
        return -self.depth * min(1.0, max(0.0, (t - (begin - self.ramp)) / self.ramp))

    def commands(self) -> str:
        """The `asendcmd` file: per segment, a ramp down from `begin - ramp`, up from `end`."""
        lines = []
        for begin, end in self.segments:
            lines.append(self._command(begin - self.ramp, falling=True))
            lines.append(self._command(end, falling=False))
        return "\n".join(lines) + "\n"

    def _command(self, at: float, *, falling: bool) -> str:
        share = f"clip((t-({at:.4f}))/{self.ramp:.4f},0,1)"
        amount = share if falling else f"(1-{share})"
        expr = f"pow(10,-{self.depth:.3f}*{amount}/20)"
        return f"{max(0.0, at):.4f} {DUCK_FILTER} volume '{expr}';"


def ramp_seconds(depth: float) -> float:
    """How long the music takes to fall by `depth` dB (and to come back)."""
    return max(MIN_RAMP_SECONDS, depth / MAX_SLOPE_DB_PER_S)


def speech_segments(levels: Sequence[float], gain_db: float, seconds: float,
                    ramp: float) -> tuple[tuple[float, float], ...]:  # fmt: skip
    """Where someone speaks, from the speech's RMS level (dBFS) per frame before `gain_db`:
    runs of loud frames, merged across short gaps, at most MAX_SEGMENTS."""
    runs: list[tuple[float, float]] = []
    for i, level in enumerate(levels):
        if not level + gain_db > DUCK_THRESHOLD_DB:  # NaN and -inf are silence
            continue
        begin, end = i * FRAME_SECONDS, min(seconds, (i + 1) * FRAME_SECONDS)
        if runs and begin - runs[-1][1] < 2 * ramp + HOLD_SECONDS:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((begin, end))
    return _at_most(runs, MAX_SEGMENTS)


def _at_most(runs: list[tuple[float, float]], count: int) -> tuple[tuple[float, float], ...]:
    """`runs` with all but the `count - 1` longest gaps closed."""
    if len(runs) <= count:
        return tuple(runs)
    gaps = sorted(range(1, len(runs)), key=lambda i: runs[i][0] - runs[i - 1][1], reverse=True)
    kept = sorted(gaps[: count - 1])
    merged, first = [], 0
    for split in [*kept, len(runs)]:
        merged.append((runs[first][0], runs[split - 1][1]))
        first = split
    return tuple(merged)


def envelope(levels: Sequence[float], gain_db: float, seconds: float,
             depth: float) -> Envelope | None:  # fmt: skip
    """The music's envelope under the speech, or None when nobody speaks."""
    ramp = ramp_seconds(depth)
    segments = speech_segments(levels, gain_db, seconds, ramp)
    return Envelope(depth, ramp, segments) if segments else None
