"""The soundtrack, measured in the output: voice-overs, the music bed, ducking, loudness
(test_sound.py measures the ducking's depth and slope, and the loudness target, closer).

Each source is a pure tone at its own frequency (clip 440 or 1000 Hz, voice 1000 Hz, music
220 Hz), so one DFT bin tells how loud each part is in the final mix.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.media.checks import (
    assert_contract_output,
    decode_mono,
    integrated_loudness,
    tone_level_db,
)
from tests.media.conftest import Media
from worker.media.assemble import assemble
from worker.media.specs import MusicSpec, OutputSpec

MUSIC_HZ, SPEECH_HZ, CLIP_HZ = 220, 1000, 440


async def test_voice_over_is_mixed_over_its_clip(media: Media, workdir: Path) -> None:
    voiced = media.clip("h264_30", voice_path=media.path("voice"),
                        voice_info=media.info("voice", "audio"))  # fmt: skip
    clips = [voiced, media.clip("h264_30_b")]
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)

    assert result.join == "reencode"
    assert_contract_output(result.output, 2.0, tolerance=1 / 30)
    samples, rate = decode_mono(result.output)
    voice_in_clip = tone_level_db(samples, rate, SPEECH_HZ, 0.2, 0.9)
    clip_sound_kept = tone_level_db(samples, rate, CLIP_HZ, 0.2, 0.9)
    voice_after_clip = tone_level_db(samples, rate, SPEECH_HZ, 1.2, 1.9)
    assert voice_in_clip > -40 and clip_sound_kept > -40
    # The 1.5 s voice-over is cut at the end of its 1 s clip.
    assert voice_after_clip < voice_in_clip - 30


async def test_music_is_looped_to_the_whole_video(media: Media, workdir: Path) -> None:
    music = MusicSpec(media.path("music"), media.info("music", "audio"), volume=0.5)
    clips = [media.clip("h264_30_silent"), media.clip("h264_30_silent")]
    result = await assemble(clips, audio=music, output=OutputSpec(), workdir=workdir)

    assert_contract_output(result.output, 4.0, tolerance=1 / 30)
    samples, rate = decode_mono(result.output)
    # The 0.7 s track plays on at 3.5 s: it was looped, not left to run out.
    start, end = (
        tone_level_db(samples, rate, MUSIC_HZ, 0.1, 0.6),
        tone_level_db(samples, rate, MUSIC_HZ, 3.3, 3.9),
    )
    assert start > -40 and abs(start - end) < 3


async def _music_to_speech_db(media: Media, workdir: Path, duck: bool) -> float:
    """Music level minus speech level while both play, in the final mix (dB).

    A ratio of two parts of the same mix at the same moment does not depend on the gain
    loudnorm applies there, so it isolates what ducking did.
    """
    music = MusicSpec(media.path("music"), media.info("music", "audio"), volume=1.0, duck=duck)
    clips = [media.clip("speech_clip"), media.clip("h264_30_silent")]
    result = await assemble(clips, audio=music, output=OutputSpec(), workdir=workdir)
    samples, rate = decode_mono(result.output)
    return tone_level_db(samples, rate, MUSIC_HZ, 0.3, 0.9) - tone_level_db(
        samples, rate, SPEECH_HZ, 0.3, 0.9
    )


async def test_ducking_lowers_music_under_speech_by_12_db_by_default(
    media: Media, tmp_path: Path
) -> None:
    plain = await _music_to_speech_db(media, tmp_path / "plain", duck=False)
    ducked = await _music_to_speech_db(media, tmp_path / "ducked", duck=True)
    assert plain - ducked == pytest.approx(12, abs=3), (plain, ducked)


async def test_ducked_music_comes_back_when_speech_stops(media: Media, workdir: Path) -> None:
    music = MusicSpec(media.path("music"), media.info("music", "audio"), volume=1.0, duck=True)
    clips = [media.clip("speech_clip"), media.clip("h264_30_silent")]
    result = await assemble(clips, audio=music, output=OutputSpec(), workdir=workdir)
    samples, rate = decode_mono(result.output)
    under_speech = tone_level_db(samples, rate, MUSIC_HZ, 0.3, 0.9)
    alone = tone_level_db(samples, rate, MUSIC_HZ, 1.8, 2.9)
    assert alone - under_speech >= 10, (alone, under_speech)


async def test_loudness_is_normalized_to_about_minus_16_lufs(media: Media, workdir: Path) -> None:
    source = integrated_loudness(media.path("quiet_clip"))
    clips = [media.clip("quiet_clip"), media.clip("h264_30_silent")]
    # A resize forces the re-encode path, where loudness is normalized.
    result = await assemble(clips, audio=None, output=OutputSpec(width=160), workdir=workdir)

    assert source < -30  # the input is far from the target, so the test can fail
    assert integrated_loudness(result.output) == pytest.approx(-16, abs=2)


async def _music_and_clip_db(media: Media, workdir: Path, clip: str,
                             volume: float) -> tuple[float, float, float]:  # fmt: skip
    """Music level, clip-sound level (dBFS, over the whole 4 s) and the output's loudness."""
    music = MusicSpec(media.path("music"), media.info("music", "audio"), volume=volume)
    clips = [media.clip(clip), media.clip(clip)]
    result = await assemble(clips, audio=music, output=OutputSpec(), workdir=workdir)
    samples, rate = decode_mono(result.output)
    return (
        tone_level_db(samples, rate, MUSIC_HZ, 0.2, 3.8),
        tone_level_db(samples, rate, CLIP_HZ, 0.2, 3.8),
        integrated_loudness(result.output),
    )


VOLUME_03_DB = 20 * math.log10(0.3)  # -10.46 dB


async def test_music_alone_is_brought_to_the_target_whatever_its_volume(
    media: Media, tmp_path: Path
) -> None:
    # Under silent clips the music is the whole mix, and the finished video is at the target
    # (output.loudness); its volume says how loud it is beside the clips' sound, of which
    # there is none here.
    loud, _, loud_lufs = await _music_and_clip_db(media, tmp_path / "1.0", "h264_30_silent", 1.0)
    soft, _, soft_lufs = await _music_and_clip_db(media, tmp_path / "0.3", "h264_30_silent", 0.3)

    assert loud_lufs == pytest.approx(-16, abs=1)
    assert soft_lufs == pytest.approx(-16, abs=1)
    assert soft == pytest.approx(loud, abs=1)


async def test_music_volume_is_relative_to_the_foreground_under_sounding_clips(
    media: Media, tmp_path: Path
) -> None:
    loud, clip_loud, loud_lufs = await _music_and_clip_db(media, tmp_path / "1.0", "h264_2s", 1.0)
    soft, clip_soft, soft_lufs = await _music_and_clip_db(media, tmp_path / "0.3", "h264_2s", 0.3)

    # Music at 1.0 is as loud as the normalized foreground, 0.3 about 10.5 dB under it ...
    assert loud == pytest.approx(clip_loud, abs=1.5)
    assert soft - clip_soft == pytest.approx(VOLUME_03_DB, abs=1.5)
    # ... and the two together are at the target, however loud the music.
    assert loud_lufs == pytest.approx(-16, abs=1)
    assert soft_lufs == pytest.approx(-16, abs=1)
