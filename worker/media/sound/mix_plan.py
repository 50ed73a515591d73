"""Planning the mix from pass one's measures: the parts' gains, the ducking envelope, one
loudness correction (mixdown.py runs the passes; this module decides between them).

It reads one entry per 100 ms of output from the files pass one wrote, so its cost grows with
the video's length, which an end user chooses: `plan_mix` runs only in the confined mix child
(mix_child.py, `child_only`), never in the worker's event loop. The module imports nothing
heavier than duck.py and loudness.py, so that child starts in a moment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from worker.media.confine import child_only
from worker.media.sound.duck import FRAME_SECONDS, Envelope, envelope
from worker.media.sound.loudness import block_energies, integrated, mix_energies, read_series

SAMPLE_RATE = 48_000
FRAME_SAMPLES = round(FRAME_SECONDS * SAMPLE_RATE)  # pass one's measuring frame
MAX_GAIN_DB = 20.0  # never lift a near-silent part into loud noise
SILENT_LUFS = -60.0  # below this there is nothing to normalize
MOMENTARY_KEY = "lavfi.r128.M"
LEVEL_KEY = "lavfi.astats.Overall.RMS_level"
# Pass one's measures, inside its `cwd`: a key printed by two filters cannot share one stream.
FOREGROUND_FILE, MUSIC_FILE, SPEECH_FILE = "fg-loudness.txt", "music-loudness.txt", "speech.txt"


@dataclass(frozen=True)
class Gains:
    """Pass two's fixed gains in dB; `music` is None when there is no music to play."""

    foreground: float
    music: float | None


@dataclass(frozen=True)
class Mix:
    """What pass two needs: the gains, the ducking envelope (None: none), the fades (samples)."""

    gains: Gains
    envelope: Envelope | None
    fade_in: int
    fade_out: int


def _series(directory: Path, name: str, key: str, frames: int) -> list[float]:
    """One measure of pass one, exactly `frames` long (missing frames are silence)."""
    path = directory / name
    values = read_series(path.read_text(encoding="utf-8"), key) if path.exists() else []
    return (values + [-math.inf] * frames)[:frames]


class MusicLevel(Protocol):
    """What planning the mix needs of the music (a MusicSpec has it)."""

    @property
    def volume(self) -> float: ...
    @property
    def duck(self) -> bool: ...
    @property
    def duck_db(self) -> float: ...


@child_only
def plan_mix(directory: Path, samples: int, music: MusicLevel | None, target: float,
             fades: tuple[int, int]) -> Mix:  # fmt: skip
    """Pass two's gains and envelope from pass one's measures in `directory`. It reads one
    entry per 100 ms of output, so it runs in the confined mix child (mix_child.py).

    Each part is normalized on its own (the music then set by its volume), the envelope drawn
    under the normalized speech, and both parts moved together by what the predicted mix misses
    the target by; no gain lifts a part by more than MAX_GAIN_DB.
    """
    frames = -(-samples // FRAME_SAMPLES)
    fg = block_energies(_series(directory, FOREGROUND_FILE, MOMENTARY_KEY, frames))
    fg_gain = normalize_gain_db(integrated(fg), target)
    if music is None or music.volume <= 0:  # volume 0 is no music
        return _corrected(fg, None, (fg_gain, 0.0), None, fades, samples, target)
    bed = block_energies(_series(directory, MUSIC_FILE, MOMENTARY_KEY, frames))
    music_gain = music_gain_db(integrated(bed), music.volume, target)
    shape = None
    if music.duck:
        levels = _series(directory, SPEECH_FILE, LEVEL_KEY, frames)
        shape = envelope(levels, fg_gain, samples / SAMPLE_RATE, music.duck_db)
    return _corrected(fg, bed, (fg_gain, music_gain), shape, fades, samples, target)


def _corrected(fg: list[float], bed: list[float] | None, gains: tuple[float, float],
               shape: Envelope | None, fades: tuple[int, int], samples: int,
               target: float) -> Mix:  # fmt: skip
    frames = len(fg)
    ducked = [1.0] * frames if shape is None else [10 ** (g / 10) for g in shape.gain_db(0, frames)]
    faded = fade_power(fades, samples, frames)
    predicted = integrated(mix_energies(fg, bed, gains, ducked, faded))
    correction = 0.0 if predicted is None else target - predicted
    fg_gain, music_gain = (min(MAX_GAIN_DB, g + correction) for g in gains)
    return Mix(Gains(fg_gain, music_gain if bed is not None else None), shape, *fades)


def fade_power(fades: tuple[int, int], samples: int, frames: int) -> list[float]:
    """The output's linear fades (in samples) as a power factor at each frame's middle."""
    fade_in, fade_out = fades
    powers = []
    for i in range(frames):
        at = (i + 0.5) * FRAME_SAMPLES
        amplitude = 1.0
        if fade_in:
            amplitude = min(amplitude, at / fade_in)
        if fade_out:
            amplitude = min(amplitude, max(0.0, samples - at) / fade_out)
        powers.append(amplitude * amplitude)
    return powers


def normalize_gain_db(integrated_lufs: float | None, target: float) -> float:
    """The fixed gain that brings a measured part to `target`, within sane bounds."""
    if integrated_lufs is None or integrated_lufs <= SILENT_LUFS:
        return 0.0
    return min(MAX_GAIN_DB, target - integrated_lufs)


def music_gain_db(integrated_lufs: float | None, volume: float, target: float) -> float:
    """The music's gain: normalized like the foreground, then `volume` (above 0) relative to
    the target (1.0 level with it, 0.3 about 10.5 dB under it)."""
    return normalize_gain_db(integrated_lufs, target) + 20 * math.log10(volume)
