"""The ducking envelope's plan (duck.py) and the loudness arithmetic (loudness.py), on numbers:
what the sound tests measure in FFmpeg's output, checked here on its bounds."""

from __future__ import annotations

import itertools
import math

import pytest

from worker.media.sound.duck import (
    HOLD_SECONDS,
    MAX_SEGMENTS,
    MAX_SLOPE_DB_PER_S,
    envelope,
    ramp_seconds,
    speech_segments,
)
from worker.media.sound.loudness import block_energies, integrated

SPEAKING, QUIET = -20.0, -math.inf


def test_ramps_never_move_faster_than_the_slope_and_come_back_within_1_5_s() -> None:
    for depth in (3.0, 12.0, 30.0):
        ramp = ramp_seconds(depth)
        assert depth / ramp <= MAX_SLOPE_DB_PER_S
        assert ramp <= 1.5


def test_short_gaps_are_merged_and_long_ones_kept() -> None:
    ramp = ramp_seconds(12)
    short = round((2 * ramp + HOLD_SECONDS) / 0.1) - 1  # frames: just under two ramps + hold
    levels = [SPEAKING] * 5 + [QUIET] * short + [SPEAKING] * 5 + [QUIET] * 30 + [SPEAKING] * 5
    segments = speech_segments(levels, 0.0, len(levels) / 10, ramp)
    rounded = [(round(a, 6), round(b, 6)) for a, b in segments]
    assert rounded == [(0.0, (10 + short) / 10), ((40 + short) / 10, (45 + short) / 10)]


def test_quiet_speech_counts_once_normalized_and_nan_is_silence() -> None:
    assert speech_segments([-60.0] * 10, 0.0, 1.0, 0.5) == ()
    assert speech_segments([-60.0] * 10, 20.0, 1.0, 0.5) == ((0.0, 1.0),)
    assert speech_segments([math.nan] * 10, 20.0, 1.0, 0.5) == ()


def test_the_number_of_segments_is_bounded_whatever_the_speech() -> None:
    # A day of 1 s sentences 2 s apart: 28,800 runs.
    levels = ([SPEAKING] * 10 + [QUIET] * 20) * 28_800
    shape = envelope(levels, 0.0, len(levels) / 10, 12.0)
    assert shape is not None and len(shape.segments) == MAX_SEGMENTS
    assert shape.segments[0][0] == 0.0 and shape.segments[-1][1] == len(levels) / 10 - 2
    assert len(shape.commands().splitlines()) == 2 * MAX_SEGMENTS


def test_the_envelope_reaches_its_depth_and_moves_at_most_6_db_in_100_ms() -> None:
    levels = [QUIET] * 30 + [SPEAKING] * 10 + [QUIET] * 30
    shape = envelope(levels, 0.0, 7.0, 24.0)
    assert shape is not None
    gains = shape.gain_db(0.0, 70)
    assert min(gains) == -24.0 and gains[0] == 0.0 and gains[-1] == 0.0
    assert all(g == -24.0 for g in gains[30:40])  # down before the speech starts
    assert max(abs(b - a) for a, b in itertools.pairwise(gains)) <= 6


def test_integrated_loudness_gates_silence_out() -> None:
    loud = [-20.0] * 100
    assert integrated(block_energies(loud)) == pytest.approx(-20.0)
    # Silence and very quiet blocks do not pull the measure down (the two gates).
    assert integrated(block_energies(loud + [-120.0] * 100 + [-40.0] * 50)) == pytest.approx(-20.0)
    assert integrated(block_energies([-120.0] * 10)) is None
