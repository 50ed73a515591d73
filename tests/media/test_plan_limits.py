"""The output keeps the payload's limits (4096 px a side, 120 fps) whether or not `output` is
given, and the total-length limit applies to the inputs' real length."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import pytest

from tests.media.bombs import endless_mkv, png_in_mov
from tests.media.conftest import Media
from worker.errors import PayloadError
from worker.media.confine import PIXEL_CEILING
from worker.media.ffmpeg import FFmpegError, input_args, run_ffmpeg
from worker.media.plan import copy_blockers, make_plan, output_geometry
from worker.media.probe.info import MediaInfo
from worker.media.probe.process import probe_async
from worker.media.specs import ClipSpec, OutputSpec, TransitionSpec


def _resized(info: MediaInfo, width: int, height: int, **video: object) -> MediaInfo:
    assert info.video is not None
    changed = dataclasses.replace(info.video, width=width, height=height, **video)  # type: ignore[arg-type]
    return dataclasses.replace(info, video=changed)


@pytest.mark.parametrize(
    ("size", "rotation", "expected"),
    [
        ((16000, 16000), 0, (4096, 4096)),
        ((7680, 4320), 0, (4096, 2304)),
        ((7680, 4320), 90, (2304, 4096)),
        ((20000, 1001), 0, (4096, 204)),
        ((3840, 2160), 0, (3840, 2160)),
    ],
)
def test_an_input_larger_than_4096_is_scaled_down_without_output(
    media: Media, size: tuple[int, int], rotation: int, expected: tuple[int, int]
) -> None:
    info = _resized(media.info("h264_30"), *size, rotation=rotation)
    geometry = output_geometry(info, OutputSpec())
    assert (geometry.width, geometry.height) == expected


def test_one_given_side_cannot_stretch_the_other_past_the_limit(media: Media) -> None:
    tall = _resized(media.info("h264_30"), 1000, 8000)
    geometry = output_geometry(tall, OutputSpec(width=1000))
    assert (geometry.width, geometry.height) == (512, 4096)


def test_an_input_frame_rate_over_120_is_brought_down(media: Media) -> None:
    fast = _resized(media.info("h264_30"), 320, 240, avg_frame_rate=Fraction(1000))
    assert output_geometry(fast, OutputSpec()).fps == 120
    clip = ClipSpec(media.path("h264_30"), fast)
    assert "the clips are faster than 120 frames a second" in copy_blockers([clip], None,
                                                                          OutputSpec())  # fmt: skip


def test_an_oversized_clip_is_never_stream_copied(media: Media) -> None:
    big = _resized(media.info("h264_30"), 8192, 4096)
    clip = ClipSpec(media.path("h264_30"), big)
    assert "the clips are larger than 4096 px" in copy_blockers([clip], None, OutputSpec())
    assert make_plan([clip], None, OutputSpec()).join == "reencode"


async def test_the_length_limit_applies_to_the_real_length(media: Media, tmp_path: Path) -> None:
    # declares nothing, holds 10 minutes: the old probe said 0 s
    endless = endless_mkv(tmp_path, 600)
    info = await probe_async(endless, "clips[0]")
    with pytest.raises(PayloadError, match=r"would be 600\.0 s long, over the limit of 60 s"):
        make_plan([ClipSpec(endless, info)], None, OutputSpec(max_duration=60))


def test_every_ffmpeg_input_refuses_pictures_over_the_ceiling(tmp_path: Path) -> None:
    args = input_args(tmp_path / "a.mp4", before=["-ss", "1"])
    assert args[args.index("-max_pixels") + 1] == str(PIXEL_CEILING)
    assert args.index("-max_pixels") < args.index("-i")


async def test_ffmpeg_itself_refuses_a_picture_over_the_ceiling(tmp_path: Path) -> None:
    # the second line, for a file that got past the probe: 8200x8200 is just over 8192x8192
    bomb = png_in_mov(tmp_path, 8200)
    with pytest.raises(FFmpegError):
        await run_ffmpeg([*input_args(bomb), "-f", "null", "-"], expected_duration=None,
                         on_progress=None)  # fmt: skip


def _lasting(info: MediaInfo, seconds: float) -> MediaInfo:
    assert info.video is not None
    return dataclasses.replace(
        info, duration=seconds, video=dataclasses.replace(info.video, duration=seconds)
    )


@pytest.mark.parametrize("seconds", [1e307, 1.7e308])
def test_a_length_past_any_frame_count_is_refused_not_overflowed(
    media: Media, seconds: float
) -> None:
    """The probe passes any finite length, and a Python-built spec any number: planning counts
    frames exactly, so a length whose frames no float holds (1e307 s x 30 fps) is the usual
    named refusal instead of an OverflowError retried as unexpected."""
    path, info = media.path("h264_30"), media.info("h264_30")
    long = ClipSpec(path, _lasting(info, seconds))
    still = ClipSpec(path, dataclasses.replace(info, format="png_pipe"), kind="image",
                     duration=seconds)  # fmt: skip
    over = r"^payload\.clips: the video would be more than 10\^15 s long, over the limit of 1800 s"
    for clips in ([long], [long, long], [dataclasses.replace(long, start=1.0)], [still]):
        with pytest.raises(PayloadError, match=over):
            make_plan(clips, None, OutputSpec())
    fading = dataclasses.replace(long, transition=TransitionSpec("fade", seconds))
    with pytest.raises(PayloadError) as caught:
        make_plan([fading, ClipSpec(path, info)], None, OutputSpec())
    assert caught.value.field == "payload.clips[0].transition.duration"
