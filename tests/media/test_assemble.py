"""Assembling real clips: the copy path when it is safe, the re-encode path for every mismatch
that breaks a naive stream copy, trims, output size, poster, progress and limits."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import pytest

from tests.media.checks import (
    assert_contract_output,
    gray_frame,
    luma,
    picture_distance,
    rgb_frames,
    roughness,
)
from tests.media.conftest import FLAT_RGB, Media
from worker.errors import PayloadError
from worker.media.assemble import assemble
from worker.media.probe.examine import probe
from worker.media.specs import OutputSpec

FRAME = 1 / 30


async def test_compatible_clips_are_joined_by_stream_copy(media: Media, workdir: Path) -> None:
    clips = [media.clip("h264_30"), media.clip("h264_30_b"), media.clip("h264_30")]
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)

    assert result.join == "copy"
    expected = sum(c.info.duration for c in clips)
    info = assert_contract_output(result.output, expected, tolerance=FRAME)
    assert result.duration == pytest.approx(expected, abs=FRAME)
    source = clips[0].info.video
    assert source is not None and info.video is not None
    # Copied, not re-encoded: the encoder's parameter sets and profile are the input's.
    assert info.video.extradata_sha1 == source.extradata_sha1
    assert info.video.profile == source.profile != "High"
    assert (result.width, result.height, result.fps) == (320, 240, 30.0)
    assert sorted(p.name for p in workdir.iterdir()) == ["output.mp4"]


@pytest.mark.parametrize(
    ("names", "size"),
    [
        (["h264_30", "h264_2997"], (320, 240)),  # 29.97 + 30 fps: a naive copy doubles time
        (["h264_30", "h264_30_44k"], (320, 240)),
        (["h264_30", "h264_30_mono"], (320, 240)),
        (["h264_30_silent", "h264_30"], (320, 240)),  # first clip without audio
        (["h264_30", "hevc", "vp9"], (320, 240)),
        (["rotated", "h264_30"], (240, 320)),  # rotation applied: dimensions swapped
        (["odd", "h264_30"], (320, 240)),  # 321x241 made even
        (["ten_bit", "h264_30"], (320, 240)),  # 10-bit to 8-bit
        (["hdr", "h264_30"], (320, 240)),  # PQ BT.2020 tone-mapped to BT.709
    ],
)
async def test_mismatched_clips_are_reencoded_into_a_correct_file(
    media: Media, workdir: Path, names: list[str], size: tuple[int, int]
) -> None:
    clips = [media.clip(name) for name in names]
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)

    assert result.join == "reencode"
    expected = sum(round(_length(c.info) * 30) / 30 for c in clips)
    info = assert_contract_output(result.output, expected, tolerance=FRAME)
    assert (result.width, result.height) == size
    assert info.video is not None and info.video.rotation == 0
    assert info.video.frame_rate == 30
    assert result.video_codec == "h264" and result.audio_codec == "aac"


@pytest.mark.parametrize("name", ["bt601", "full_range"])
async def test_colours_survive_a_reencode_from_other_matrices_and_ranges(
    media: Media, workdir: Path, name: str
) -> None:
    """Output is tagged BT.709 limited range, so the pixels must be converted to it, not
    relabelled: a BT.601 clip relabelled turned #C83C28 greener, a full-range one washed out."""
    clips = [media.clip(name), media.clip("h264_30")]
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)
    assert result.join == "reencode"
    source = mean_rgb(media.path(name))
    output = mean_rgb(result.output)
    assert max(abs(a - b) for a, b in zip(source, FLAT_RGB, strict=True)) <= 4, source
    assert max(abs(a - b) for a, b in zip(output, FLAT_RGB, strict=True)) <= 4, output


async def test_interlaced_input_is_deinterlaced(media: Media, workdir: Path) -> None:
    """A clip coded as fields is not copied (browsers would show the combing) but re-encoded
    through a deinterlacer: FFmpeg's interlace detector then finds progressive frames."""
    clip = media.clip("interlaced")
    assert clip.info.video is not None and clip.info.video.field_order == "tt"
    assert interlace_counts(media.path("interlaced"))["TFF"] >= 20  # the detector sees it
    result = await assemble([clip], audio=None, output=OutputSpec(), workdir=workdir)
    assert result.join == "reencode"
    counts = interlace_counts(result.output)
    # idet's multi-frame verdict lags a few frames behind; undeinterlaced it says TFF 30 of 30
    assert counts["TFF"] + counts["BFF"] <= 6 and counts["Progressive"] >= 20, counts


def interlace_counts(path: Path) -> dict[str, int]:
    """FFmpeg's `idet` multi-frame verdicts over the whole file."""
    import re
    import subprocess

    from worker.media.ffmpeg import ffmpeg_exe

    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-an", "-vf", "idet",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    # the last report: FFmpeg may configure (and report) a first graph it then replaces
    line = [x for x in proc.stderr.splitlines() if "Multi frame detection" in x][-1]
    return {k: int(v) for k, v in re.findall(r"(TFF|BFF|Progressive|Undetermined):\s*(\d+)", line)}


def mean_rgb(path: Path) -> tuple[float, ...]:
    """The first frame's mean colour, decoded with the matrix and range its tags give
    (plain bytes: numpy is not a dependency)."""
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        rgb = frame.reformat(
            format="rgb24", src_colorspace=frame.colorspace, src_color_range=frame.color_range
        )
    plane, width = rgb.planes[0], rgb.width * 3
    data = bytes(plane)
    rows = [data[r * plane.line_size :][:width] for r in range(rgb.height)]
    count = rgb.width * rgb.height
    return tuple(sum(sum(row[c::3]) for row in rows) / count for c in range(3))


def _length(info) -> float:  # type: ignore[no-untyped-def]
    return info.video.duration or info.duration


async def test_trims_cut_picture_and_sound(media: Media, workdir: Path) -> None:
    clips = [media.clip("h264_2s", start=0.5, end=1.5), media.clip("h264_30", end=0.5)]
    result = await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)

    assert result.join == "reencode"
    assert_contract_output(result.output, 1.5, tolerance=FRAME)
    # The first output frame is the source frame at 0.5 s, not its first frame.
    first = gray_frame(result.output, 0)
    at_half = gray_frame(media.path("h264_2s"), 15)
    at_zero = gray_frame(media.path("h264_2s"), 0)
    assert picture_distance(first, at_half) < picture_distance(first, at_zero) / 3


async def test_output_size_fps_and_crop_are_honoured(media: Media, workdir: Path) -> None:
    output = OutputSpec(width=200, height=360, fps=29.97, fit="crop", thumbnail=True)
    result = await assemble([media.clip("h264_30")], audio=None, output=output, workdir=workdir)

    assert result.join == "reencode"
    info = assert_contract_output(result.output, 30 / (30000 / 1001), tolerance=FRAME)
    assert info.video is not None and info.video.frame_rate == Fraction(30000, 1001)
    assert (result.width, result.height) == (200, 360)
    assert result.thumbnail is not None and result.thumbnail.read_bytes()[:3] == b"\xff\xd8\xff"


async def test_blur_fills_the_bands_on_the_reencode_path(media: Media, workdir: Path) -> None:
    """A 4:3 clip in a 9:16 frame, re-encoded on its own: the picture where pad puts it (rows 92
    to 227), and above and below it a smooth, darkened copy instead of black."""
    made = {}
    for fit in ("pad", "blur"):
        output = OutputSpec(width=180, height=320, fit=fit)  # type: ignore[arg-type]
        result = await assemble([media.clip("h264_30_b")], audio=None, output=output,
                                workdir=workdir / fit)  # fmt: skip
        assert result.join == "reencode"
        assert_contract_output(result.output, 1.0, tolerance=FRAME)
        made[fit] = rgb_frames(result.output)
    assert len(made["blur"]) == len(made["pad"]) == 30

    middle, bands = (0, 98, 180, 222), [(0, 0, 180, 86), (0, 234, 180, 320)]
    for blur, pad in zip(made["blur"][::7], made["pad"][::7], strict=True):
        assert picture_distance(blur.rgb[180 * 3 * 98 : 180 * 3 * 222],
                                pad.rgb[180 * 3 * 98 : 180 * 3 * 222]) < 2  # fmt: skip
        for band in bands:
            assert luma(pad.mean(band)) < 3
            assert 25 < luma(blur.mean(band)) < 0.75 * luma(blur.mean(middle))
            assert roughness(blur, band) < min(2.0, roughness(blur, middle) / 3)


async def test_poster_is_a_jpeg_of_the_output(media: Media, workdir: Path) -> None:
    output = OutputSpec(thumbnail=True)
    clips = [media.clip("h264_30"), media.clip("h264_30_b")]
    result = await assemble(clips, audio=None, output=output, workdir=workdir)

    assert result.thumbnail == workdir / "thumbnail.jpg"
    assert result.thumbnail.read_bytes()[:3] == b"\xff\xd8\xff"
    import av

    with av.open(str(result.thumbnail)) as image:
        frame = next(image.decode(video=0))
        assert (frame.width, frame.height) == (320, 240)


async def test_progress_rises_to_one_and_never_goes_back(media: Media, workdir: Path) -> None:
    seen: list[float] = []
    clips = [media.clip("h264_30"), media.clip("hevc"), media.clip("h264_2s")]
    await assemble(clips, audio=None, output=OutputSpec(thumbnail=True), workdir=workdir,
                   on_progress=seen.append)  # fmt: skip

    assert seen and seen[-1] == pytest.approx(1.0)
    assert all(0 <= a <= b <= 1 for a, b in itertools.pairwise(seen))
    assert len(seen) >= 3


async def test_over_long_result_is_refused_before_encoding(media: Media, workdir: Path) -> None:
    clips = [media.clip("h264_30"), media.clip("h264_2997")]
    with pytest.raises(PayloadError, match=r"payload\.clips: .*limit of 1\.5 s"):
        await assemble(clips, audio=None, output=OutputSpec(max_duration=1.5), workdir=workdir)
    assert not (workdir / "output.mp4").exists()


@pytest.mark.parametrize(
    ("trim", "field"),
    [
        ({"start": 5.0}, "payload.clips[1].start"),
        ({"start": 0.5, "end": 0.2}, "payload.clips[1].end"),
    ],
)
async def test_bad_trims_name_the_field(
    media: Media, workdir: Path, trim: dict, field: str
) -> None:
    clips = [media.clip("h264_30"), media.clip("h264_30", **trim)]
    with pytest.raises(PayloadError) as caught:
        await assemble(clips, audio=None, output=OutputSpec(), workdir=workdir)
    assert caught.value.field == field


async def test_output_matching_first_clip_keeps_copy_path(media: Media, workdir: Path) -> None:
    output = OutputSpec(width=320, height=240, fps=30)
    clips = [media.clip("h264_30"), media.clip("h264_30_b")]
    result = await assemble(clips, audio=None, output=output, workdir=workdir)
    assert result.join == "copy"
    assert probe(result.output, "output").duration == pytest.approx(2.0, abs=FRAME)
