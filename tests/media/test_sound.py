"""The sound of a composition, measured in the soundtrack `make_soundtrack` writes: clip volume,
audio layers in their clip's window, crossfades at transitions, the output's fades.

Every source is a pure tone at its own frequency (clips 440 or 880 Hz, voice 1000 Hz, layers
2000 and 3000 Hz, music 220 Hz), so one DFT bin over a time window tells how loud each part is
there. The plans are written out here (30 fps windows), so these tests need nothing of the
picture side.
"""

from __future__ import annotations

import array
import dataclasses
import math
from fractions import Fraction
from pathlib import Path

import pytest

from tests.media.checks import (
    assert_contract_output,
    decode_mono,
    integrated_loudness,
    tone_level_db,
)
from tests.media.conftest import Media, ffmpeg
from worker.errors import InputError
from worker.media.assemble import assemble
from worker.media.confine import ChildLimits
from worker.media.plan import ClipWindow, Geometry, Plan, overlap_frames
from worker.media.probe.examine import probe
from worker.media.sound.mix_plan import SAMPLE_RATE
from worker.media.sound.soundtrack import (
    frame_samples,
    layout,
    make_soundtrack,
    overlap_samples,
)
from worker.media.specs import (
    ClipSpec,
    LayerSpec,
    MusicSpec,
    OutputSpec,
    TransitionSpec,
)

A_HZ, B_HZ, VOICE_HZ, LOOP_HZ, ONCE_HZ, MUSIC_HZ = 440, 880, 1000, 3000, 2000, 220
FPS = 30
PRESENT = -40  # dBFS: a tone at least this loud in a window is playing there
GONE = 40  # dB: a tone this far under where it plays is not playing


def _plan(seconds: list[float]) -> Plan:
    """A re-encode plan of whole-clip windows lasting `seconds` each, at 30 fps."""
    windows = tuple(ClipWindow(0.0, s, round(s * FPS)) for s in seconds)
    return Plan("reencode", Geometry(320, 240, Fraction(FPS)), windows, sum(seconds), ())


def test_an_overlap_is_whole_frames_like_the_pictures() -> None:
    assert overlap_samples(0.25, Fraction(30)) == 8 * 1600  # 7.5 frames round to 8
    assert overlap_samples(0.001, Fraction(30)) == 1600  # never less than one frame
    assert overlap_samples(0.0, Fraction(30)) == 0


def test_an_overlap_is_the_pictures_own_count_of_frames() -> None:
    """0.1 s at 25 fps is 2.5 frames by floats but a hair over by the exact value the picture
    counts (3 frames): the sound overlaps by those same 3 frames, not 2."""
    for seconds, fps in [(0.1, Fraction(25)), (0.3, Fraction(25)), (0.02, Fraction(25))]:
        assert overlap_samples(seconds, fps) == frame_samples(overlap_frames(seconds, fps), fps)
    assert overlap_frames(0.1, Fraction(25)) == 3
    assert overlap_samples(0.1, Fraction(25)) == 3 * 1920


def _layer(media: Media, name: str, freq: int, seconds: float, **kwargs: object) -> LayerSpec:
    path = media.root / f"{name}.m4a"
    if not path.exists():
        tone = f"0.1*sin(2*PI*{freq}*t)"
        source = f"aevalsrc={tone}|{tone}:s=48000:d={seconds}:c=stereo"
        ffmpeg(["-f", "lavfi", "-i", source, "-c:a", "aac", "-b:a", "128k"], path)
    return LayerSpec(path, probe(path, name, "audio"), **kwargs)  # type: ignore[arg-type]


async def _render(
    clips: list[ClipSpec],
    seconds: list[float],
    tmp_path: Path,
    music: MusicSpec | None = None,
    output: OutputSpec | None = None,
) -> tuple[array.array, int]:
    out = tmp_path / "soundtrack.m4a"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    plan = _plan(seconds)
    await make_soundtrack(clips, plan, music, output or OutputSpec(), scratch, out, None)
    return decode_mono(out)


def _duration(tmp_path: Path) -> float:
    """The soundtrack's length as its container states it (a decoder returns whole AAC frames
    of 1024 samples, so the decoded count runs up to 1023 samples over)."""
    info = probe(tmp_path / "soundtrack.m4a", "soundtrack", "audio")
    assert info.audio is not None and info.audio.duration is not None
    return info.audio.duration


def _rms_db(samples: array.array, rate: int, start: float, end: float) -> float:
    chunk = samples[int(start * rate) : int(end * rate)]
    power = sum(x * x for x in chunk) / max(1, len(chunk))
    return 10 * math.log10(max(power, 1e-18))


def test_transitions_lay_clips_on_two_tracks_that_never_overlap(media: Media) -> None:
    clips = [
        media.clip("h264_30", transition=TransitionSpec("fade", 0.2)),
        media.clip("h264_30", transition=TransitionSpec("fade", 0.5)),
        media.clip("h264_2s"),
        media.clip("h264_30"),
    ]
    slots, total = layout(clips, _plan([1.0, 1.0, 2.0, 1.0]))

    assert total == 5 * SAMPLE_RATE - (9_600 + 24_000)
    assert [s.offset for s in slots] == [0, 38_400, 62_400, 158_400]
    assert [s.track for s in slots] == [0, 1, 0, 0]  # only a transition moves to the other track
    assert [s.lead for s in slots] == [0, 38_400, 14_400, 0]
    assert [(s.fade_in, s.fade_out) for s in slots] == [
        (0, 9_600), (9_600, 24_000), (24_000, 0), (0, 0),
    ]  # fmt: skip
    for track in (0, 1):  # each track's slots follow one another without overlapping
        end = 0
        for s in (s for s in slots if s.track == track):
            assert s.offset - s.lead == end
            end = s.offset + s.samples


async def test_layers_play_only_inside_their_clips_window(media: Media, tmp_path: Path) -> None:
    looped = _layer(media, "loop3000", LOOP_HZ, 0.4, start=0.2, loop=True)
    once = _layer(media, "once2000", ONCE_HZ, 0.4)
    clips = [media.clip("h264_30"), media.clip("h264_30_b", layers=(looped, once)),
             media.clip("h264_30")]  # fmt: skip
    samples, rate = await _render(clips, [1.0, 1.0, 1.0], tmp_path)

    def level(freq: float, start: float, end: float) -> float:
        return tone_level_db(samples, rate, freq, start, end)

    assert _duration(tmp_path) == pytest.approx(3.0, abs=0.001)
    # The looped 0.4 s layer starts 0.2 s into its clip and fills the rest of the window.
    inside = min(level(LOOP_HZ, 1.25, 1.55), level(LOOP_HZ, 1.65, 1.95))
    assert inside > PRESENT
    for start, end in ((0.1, 0.9), (1.0, 1.15), (2.05, 2.9)):
        assert level(LOOP_HZ, start, end) < inside - GONE, (start, end)
    # The layer played once lasts its own 0.4 s from the clip's start, then stops.
    played = level(ONCE_HZ, 1.05, 1.35)
    assert played > PRESENT
    for start, end in ((0.1, 0.9), (1.5, 1.95), (2.05, 2.9)):
        assert level(ONCE_HZ, start, end) < played - GONE, (start, end)
    # The clips' own sound is still there under the layers.
    assert level(B_HZ, 1.1, 1.9) > PRESENT and level(A_HZ, 2.1, 2.9) > PRESENT


async def test_layer_fades_in_and_out_at_its_own_ends(media: Media, tmp_path: Path) -> None:
    layer = _layer(media, "loop3000", LOOP_HZ, 0.4, loop=True, start=0.25, fade_in=0.5,
                   fade_out=0.5, volume=0.5)  # fmt: skip
    clips = [media.clip("h264_2s", layers=(layer,))]
    samples, rate = await _render(clips, [2.0], tmp_path)

    def level(start: float, end: float) -> float:
        return tone_level_db(samples, rate, LOOP_HZ, start, end)

    full = level(0.8, 1.45)  # between the fades
    assert full > PRESENT
    assert level(0.26, 0.31) < full - 12  # just after it starts, fading in
    assert level(1.94, 2.0) < full - 12  # at the window's end, faded out
    assert level(0.0, 0.24) < full - GONE  # before its start


async def test_the_mix_child_runs_under_the_limits_it_is_given(
    media: Media, tmp_path: Path
) -> None:
    """The mix is planned by the confined mix child under the operator's limits (PROBE_TIMEOUT,
    PROBE_MEMORY_MB), not the defaults: with a limit no child can meet, the job's sound fails
    naming that limit."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    limits = ChildLimits(timeout=0.001)
    with pytest.raises(InputError, match=r"^audio: could not be checked within 0\.001 s"):
        await make_soundtrack([media.clip("h264_30")], _plan([1.0]), None, OutputSpec(), scratch,
                              tmp_path / "soundtrack.m4a", None, limits=limits)  # fmt: skip


async def test_clip_volume_scales_its_sound_and_zero_mutes_it(media: Media, tmp_path: Path) -> None:
    clips = [media.clip("h264_30", volume=0.5), media.clip("h264_30"),
             media.clip("h264_30", volume=0.0)]  # fmt: skip
    samples, rate = await _render(clips, [1.0, 1.0, 1.0], tmp_path)

    half, full, muted = (tone_level_db(samples, rate, A_HZ, s + 0.1, s + 0.9) for s in (0, 1, 2))
    assert half - full == pytest.approx(20 * math.log10(0.5), abs=0.5)
    assert muted < full - GONE


async def test_an_image_clip_is_silent_but_its_voice_and_layers_play(
    media: Media, tmp_path: Path
) -> None:
    # The still's file is a video with a 440 Hz track here, to show an image's file is never
    # read for sound.
    still = dataclasses.replace(
        media.clip("h264_30", voice_path=media.path("voice"),
                   voice_info=media.info("voice", "audio"),
                   layers=(_layer(media, "once2000", ONCE_HZ, 0.4),)),
        kind="image", duration=1.0,
    )  # fmt: skip
    samples, rate = await _render([media.clip("h264_30_b"), still], [1.0, 1.0], tmp_path)

    assert (
        tone_level_db(samples, rate, A_HZ, 1.1, 1.9)
        < tone_level_db(samples, rate, B_HZ, 0.1, 0.9) - GONE
    )
    assert tone_level_db(samples, rate, VOICE_HZ, 1.1, 1.9) > PRESENT
    assert tone_level_db(samples, rate, ONCE_HZ, 1.05, 1.35) > PRESENT


async def test_transitions_crossfade_the_clips_and_shorten_the_sound(
    media: Media, tmp_path: Path
) -> None:
    fade = TransitionSpec("fade", 0.3)
    voiced = media.clip("h264_30_b", transition=fade, voice_path=media.path("voice"),
                        voice_info=media.info("voice", "audio"))  # fmt: skip
    clips = [media.clip("h264_30", transition=fade), voiced, media.clip("h264_30")]
    samples, rate = await _render(clips, [1.0, 1.0, 1.0], tmp_path)
    # A [0, 1.0], B [0.7, 1.7], C [1.4, 2.4]: overlaps 0.7-1.0 and 1.4-1.7.

    def level(freq: float, start: float, end: float) -> float:
        return tone_level_db(samples, rate, freq, start, end)

    assert _duration(tmp_path) == pytest.approx(3.0 - 0.6, abs=0.001)
    a, b, c = level(A_HZ, 0.05, 0.65), level(B_HZ, 1.05, 1.35), level(A_HZ, 1.75, 2.35)
    assert min(a, b, c) > PRESENT
    # Outside the transitions one clip sounds alone ...
    assert level(B_HZ, 0.05, 0.65) < a - GONE
    assert level(A_HZ, 1.05, 1.35) < b - GONE
    assert level(B_HZ, 1.75, 2.35) < c - GONE
    # ... inside them both do, each at -3 dB halfway (an equal-power crossfade).
    for start in (0.82, 1.52):
        assert level(A_HZ, start, start + 0.06) == pytest.approx(a - 3, abs=1.5)
        assert level(B_HZ, start, start + 0.06) == pytest.approx(b - 3, abs=1.5)
    # The voice-over stays on its clip and is not faded by the transition into it.
    voice = level(VOICE_HZ, 1.05, 1.35)
    assert level(VOICE_HZ, 0.72, 0.98) == pytest.approx(voice, abs=1.5)
    assert level(VOICE_HZ, 0.05, 0.65) < voice - GONE
    assert level(VOICE_HZ, 1.75, 2.35) < voice - GONE  # cut at the end of its clip


async def test_output_fades_from_and_to_silence(media: Media, tmp_path: Path) -> None:
    music = MusicSpec(media.path("music"), media.info("music", "audio"), volume=1.0)
    output = OutputSpec(fade_in=0.5, fade_out=0.5)
    samples, rate = await _render([media.clip("h264_2s")], [2.0], tmp_path, music, output)

    middle = _rms_db(samples, rate, 0.8, 1.2)
    assert middle > -30
    assert _rms_db(samples, rate, 0.0, 0.005) < middle - 30
    assert _rms_db(samples, rate, 2.0 - 0.005, 2.0) < middle - 30
    # A linear fade: half the amplitude (-6 dB) halfway through it.
    assert _rms_db(samples, rate, 0.24, 0.26) == pytest.approx(middle - 6, abs=2)
    assert _rms_db(samples, rate, 1.74, 1.76) == pytest.approx(middle - 6, abs=2)
    assert _duration(tmp_path) == pytest.approx(2.0, abs=0.001)


async def test_music_ducks_under_speech_but_not_under_layers(media: Media, tmp_path: Path) -> None:
    rain = _layer(media, "loop3000", LOOP_HZ, 0.4, loop=True)
    clips = [media.clip("h264_30_silent", layers=(rain,)), media.clip("speech_clip"),
             media.clip("h264_30_silent")]  # fmt: skip
    music = MusicSpec(media.path("music"), media.info("music", "audio"), duck=True)
    samples, rate = await _render(clips, [2.0, 1.0, 2.0], tmp_path, music)

    # Speech from 2.0 to 3.0 s; the music starts down 0.5 s ahead and is back 0.5 s after.
    under_layer = tone_level_db(samples, rate, MUSIC_HZ, 0.2, 1.3)
    under_speech = tone_level_db(samples, rate, MUSIC_HZ, 2.1, 2.9)
    alone = tone_level_db(samples, rate, MUSIC_HZ, 3.7, 4.9)
    assert tone_level_db(samples, rate, LOOP_HZ, 0.3, 0.9) > PRESENT
    assert alone - under_speech >= 10, (alone, under_speech)
    assert under_layer == pytest.approx(alone, abs=1.5)


async def test_a_layer_comes_through_the_whole_assembly(media: Media, workdir: Path) -> None:
    layer = _layer(media, "loop3000", LOOP_HZ, 0.4, loop=True)
    voiced = media.clip("h264_30", layers=(layer,), voice_path=media.path("voice"),
                        voice_info=media.info("voice", "audio"))  # fmt: skip
    result = await assemble([voiced, media.clip("h264_30_b")], audio=None, output=OutputSpec(),
                            workdir=workdir)  # fmt: skip

    assert result.join == "reencode"
    assert_contract_output(result.output, 2.0, tolerance=1 / 30)
    samples, rate = decode_mono(result.output)
    inside = tone_level_db(samples, rate, LOOP_HZ, 0.1, 0.9)
    assert inside > PRESENT
    assert tone_level_db(samples, rate, LOOP_HZ, 1.1, 1.9) < inside - GONE


# --- ducking with a depth, and the loudness target -------------------------------------------

DUCK_TIMELINE = ["h264_30_silent", "speech_clip", "h264_30_silent", "h264_30_silent"]
DUCK_SECONDS = [2.0, 1.0, 2.0, 2.0]  # someone speaks from 2.0 to 3.0 s
WINDOW, STEP = 0.05, 0.025  # the music's level, in 50 ms windows every 25 ms


def _music(media: Media, **kwargs: object) -> MusicSpec:
    """An 8 s 220 Hz bed, longer than the timelines here (a loop point is not a level change)."""
    path = media.root / "music8s.wav"
    if not path.exists():
        tone = f"0.3*sin(2*PI*{MUSIC_HZ}*t)"
        ffmpeg(["-f", "lavfi", "-i", f"aevalsrc={tone}|{tone}:s=48000:d=8:c=stereo"], path)
    return MusicSpec(path, probe(path, "music8s", "audio"), **kwargs)  # type: ignore[arg-type]


def _music_levels(samples: array.array, rate: int, end: float) -> list[tuple[float, float]]:
    """(time, the music's level in dBFS) over the timeline; 50 ms holds whole cycles of both
    the music (11) and the speech (50), so the speech does not leak into the music's bin."""
    count = int((end - WINDOW) / STEP) + 1
    return [
        (i * STEP, tone_level_db(samples, rate, MUSIC_HZ, i * STEP, i * STEP + WINDOW))
        for i in range(count)
    ]


@pytest.mark.parametrize("depth", [6.0, 12.0, 24.0])
async def test_music_ducks_by_its_depth_smoothly_and_comes_back(
    media: Media, tmp_path: Path, depth: float
) -> None:
    clips = [media.clip(name) for name in DUCK_TIMELINE]
    music = _music(media, duck=True, duck_db=depth)
    samples, rate = await _render(clips, DUCK_SECONDS, tmp_path, music)

    alone = tone_level_db(samples, rate, MUSIC_HZ, 0.2, 1.2)  # before the ramp down begins
    under_speech = tone_level_db(samples, rate, MUSIC_HZ, 2.1, 2.9)
    assert alone - under_speech == pytest.approx(depth, abs=3), (alone, under_speech)
    levels = _music_levels(samples, rate, sum(DUCK_SECONDS))
    steps = round(0.1 / STEP)  # 100 ms apart
    moves = [abs(b[1] - a[1]) for a, b in zip(levels, levels[steps:], strict=False)]
    assert max(moves) <= 6, max(moves)
    # Back to full within 1.5 s after the speech ends at 3.0 s, and staying there.
    back = [level for t, level in levels if t >= 4.5]
    assert min(back) == pytest.approx(alone, abs=1), (min(back), alone)


@pytest.mark.parametrize("target", [-16.0, -14.0, -23.0])
@pytest.mark.parametrize("mix", ["music_stretches", "speech_only"])
async def test_the_mix_is_at_its_loudness_target(
    media: Media, tmp_path: Path, target: float, mix: str
) -> None:
    output = OutputSpec(loudness=target)
    if mix == "music_stretches":  # 1 s of speech, then 4 s of music alone, ducked under it
        clips = [media.clip("speech_clip"), media.clip("h264_30_silent"),
                 media.clip("h264_30_silent")]  # fmt: skip
        await _render(clips, [1.0, 2.0, 2.0], tmp_path, _music(media, volume=0.3, duck=True),
                      output)  # fmt: skip
    else:
        clips = [media.clip("speech_clip"), media.clip("quiet_clip")]
        await _render(clips, [1.0, 2.0], tmp_path, None, output)

    assert integrated_loudness(tmp_path / "soundtrack.m4a") == pytest.approx(target, abs=1)
