"""Integrated loudness (EBU R128 / ITU-R BS.1770) from pass one's 400 ms blocks, and of a mix.

Pass one runs `ebur128` on the foreground and on the music bed apart, fed 100 ms frames, and
prints each frame's momentary loudness: the 400 ms block ending with that frame, which are
exactly BS.1770's blocks (75 % overlap). From them this module computes each part's integrated
loudness (the absolute gate at -70 LUFS, then the relative gate 10 LU under the first mean),
and also the loudness the final mix will have before it is made: a block's energy in the mix is
the sum of the parts' energies, each times its gain, the music's times its ducking envelope and
both times the output's fades (speech and music are unrelated signals, so their cross term
averages out over 400 ms). One correction then brings the mix to the target, however much of it
is music alone, silence or one loud clip: no third pass over the sound.

The lists have one entry per 100 ms frame of the output: bounded by MAX_OUTPUT_SECONDS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = 10.0
BLOCK_FRAMES = 4  # a 400 ms block is four 100 ms frames
OFFSET = -0.691  # BS.1770's loudness of a block: OFFSET + 10 log10(energy)


def read_series(text: str, key: str) -> list[float]:
    """Every value of `key` that `ametadata=mode=print` wrote, in order (unreadable: NaN)."""
    values = []
    for line in text.splitlines():
        name, _, value = line.strip().partition("=")
        if name == key:
            try:
                values.append(float(value))
            except ValueError:
                values.append(math.nan)
    return values


def block_energies(momentary: Sequence[float]) -> list[float]:
    """Each frame's block energy (0 for the first frames, before a whole block was heard)."""
    return [
        10 ** ((m - OFFSET) / 10) if i >= BLOCK_FRAMES - 1 and math.isfinite(m) else 0.0
        for i, m in enumerate(momentary)
    ]


def integrated(energies: Sequence[float]) -> float | None:
    """The gated integrated loudness of blocks with these energies; None when all are silent."""
    floor = 10 ** ((ABSOLUTE_GATE_LUFS - OFFSET) / 10)
    heard = [e for e in energies if e > floor]
    if not heard:
        return None
    relative = sum(heard) / len(heard) * 10 ** (-RELATIVE_GATE_LU / 10)
    kept = [e for e in heard if e > relative]
    return OFFSET + 10 * math.log10(sum(kept) / len(kept))


def block_means(per_frame: Sequence[float]) -> list[float]:
    """Per-frame factors averaged over each frame's block (it and the three before it)."""
    means, window = [], 0.0
    for i, value in enumerate(per_frame):
        window += value
        if i >= BLOCK_FRAMES:
            window -= per_frame[i - BLOCK_FRAMES]
        means.append(window / min(i + 1, BLOCK_FRAMES))
    return means


def mix_energies(foreground: Sequence[float], music: Sequence[float] | None,
                 gains_db: tuple[float, float], music_power: Sequence[float],
                 fade_power: Sequence[float]) -> list[float]:  # fmt: skip
    """The mix's block energies: `gains_db` (foreground, music) on each part's energies, the
    ducking (`music_power`, per frame) on the music's, the fades (`fade_power`) on both."""
    fg_gain, music_gain = (10 ** (g / 10) for g in gains_db)
    faded = block_means(fade_power)
    ducked = block_means([f * d for f, d in zip(fade_power, music_power, strict=True)])
    mixed = []
    for i, energy in enumerate(foreground):
        total = fg_gain * energy * faded[i]
        if music is not None and i < len(music):
            total += music_gain * music[i] * ducked[i]
        mixed.append(total)
    return mixed
