"""Probe: what it reads from real files, and the clear refusal of every kind of bad input."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from tests.media.conftest import Media, ffmpeg
from worker.errors import InputError
from worker.media.probe.examine import probe
from worker.media.probe.process import probe_async


def test_reads_what_the_join_decision_needs(media: Media) -> None:
    info = probe(media.path("h264_2997"), "clips[0]")
    assert info.format.startswith("mov,mp4")
    assert info.size == media.path("h264_2997").stat().st_size
    assert info.duration == pytest.approx(1.0, abs=0.05)
    video, audio = info.video, info.audio
    assert video is not None and audio is not None
    assert (video.codec, video.width, video.height, video.pix_fmt) == ("h264", 320, 240, "yuv420p")
    assert video.bit_depth == 8 and video.rotation == 0
    assert video.avg_frame_rate == Fraction(30000, 1001) == video.r_frame_rate
    assert (audio.codec, audio.sample_rate, audio.channels, audio.layout) == (
        "aac",
        48000,
        2,
        "stereo",
    )


def test_reads_rotation_depth_and_hdr(media: Media) -> None:
    rotated = media.info("rotated").video
    assert rotated is not None and rotated.rotation in (90, 270)
    assert rotated.display_size == (240, 320)
    hdr = media.info("hdr").video
    assert hdr is not None and hdr.bit_depth == 10 and hdr.is_hdr
    assert hdr.color_transfer == "smpte2084" and hdr.color_primaries == "bt2020"
    assert media.info("h264_30_silent").audio is None


async def test_probe_async_answers_from_a_child_process(media: Media) -> None:
    info = await probe_async(media.path("vp9"), "clips[0]")
    assert info.video is not None and info.video.codec == "vp9"
    assert info.audio is not None and info.audio.codec == "opus"


def test_audio_inputs_need_sound_not_picture(media: Media) -> None:
    voice = probe(media.path("voice"), "clips[0].voice_url", "audio")
    assert voice.video is None and voice.audio is not None and voice.audio.codec == "mp3"
    with pytest.raises(InputError, match=r"^audio: has no audio stream"):
        probe(media.path("h264_30_silent"), "audio", "audio")


def _bad(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"^clips\[1\]: the file is empty \(0 bytes\)"),
        (b"<!DOCTYPE html><html><body>Access denied</body></html>", r"looks like HTML"),
        (b"\n  <html><head><title>404</title></head></html>", r"looks like HTML"),
        (b"#EXTM3U\n#EXTINF:1,\nclip.ts\n", r"HLS playlist"),
        (b"ffconcat version 1.0\nfile other.mp4\n", r"concat list"),
        (b"just some words in a text file\n", r"text file"),
        (b"\x00\x01\x02garbage" * 100, r"not in a supported format|could not be read"),
    ],
)
def test_non_media_is_refused_with_a_clear_message(
    tmp_path: Path, data: bytes, message: str
) -> None:
    with pytest.raises(InputError, match=message) as caught:
        probe(_bad(tmp_path, "clip.mp4", data), "clips[1]")
    assert caught.value.source == "clips[1]"


def test_image_is_refused(media: Media, tmp_path: Path) -> None:
    image = tmp_path / "frame.png"
    ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=64x64", "-frames:v", "1"], image)
    disguised = _bad(tmp_path, "clip.mp4", image.read_bytes())
    with pytest.raises(InputError, match=r"^clips\[0\]: is a PNG image, not a video"):
        probe(disguised, "clips[0]")


def test_audio_only_file_is_refused_as_a_clip(media: Media) -> None:
    with pytest.raises(InputError, match=r"has no video stream \(it is an audio file\)"):
        probe(media.path("voice"), "clips[2]")


def test_truncated_mp4_is_refused(media: Media, tmp_path: Path) -> None:
    whole = media.path("h264_2s").read_bytes()
    # Without faststart the index (moov) is at the end: a cut file has none.
    with pytest.raises(InputError, match=r"damaged, incomplete"):
        probe(_bad(tmp_path, "cut.mp4", whole[: len(whole) // 2]), "clips[0]")
    # With faststart the index survives but promises data that is not there.
    faststart = tmp_path / "fs.mp4"
    ffmpeg(["-i", str(media.path("h264_2s")), "-c", "copy", "-movflags", "+faststart"], faststart)
    data = faststart.read_bytes()
    with pytest.raises(InputError, match=r"truncated or damaged"):
        probe(_bad(tmp_path, "cut_fs.mp4", data[: int(len(data) * 0.6)]), "clips[0]")


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing"):
        probe(tmp_path / "nope.mp4", "clips[0]")
