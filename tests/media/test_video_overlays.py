"""Video overlays (picture-in-picture, B-roll) on real FFmpeg output: where and when they show,
`from`, `loop`, rounded corners, and their sound in the mix only with a volume."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media.checks import Picture, bounding_box, decode_mono, rgb_frames, tone_level_db
from tests.media.conftest import X264, ffmpeg
from tests.media.test_compose import FPS, Made
from worker.errors import InputError
from worker.media.assemble import assemble
from worker.media.probe.examine import probe
from worker.media.specs import MotionSpec, OutputSpec, OverlaySpec, VideoOverlaySpec

W, H = 320, 180
RED, GREEN, BLUE, GREY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    return Made(tmp_path_factory.mktemp("video-overlays"))


@pytest.fixture(scope="module")
def rgb(made: Made) -> Path:
    """Three seconds of 160x90 video: red, then green, then blue, a second each, over a
    1000 Hz tone (the background clips carry 440 Hz)."""
    target = made.root / "rgb.mp4"
    colours = ";".join(f"color=c={c}:s=160x90:r=30:d=1,format=yuv420p[{c}]"
                       for c in ("red", "lime", "blue"))  # fmt: skip
    ffmpeg(["-f", "lavfi", "-i", f"{colours};[red][lime][blue]concat=n=3",
            "-f", "lavfi", "-i", "sine=f=1000:d=3", *X264, "-c:a", "aac", "-shortest"],
           target)  # fmt: skip
    return target


def _pip(rgb: Path, **kwargs: object) -> VideoOverlaySpec:
    info = probe(rgb, "overlays[0].video", "clip")
    return VideoOverlaySpec(rgb, info, **kwargs)  # type: ignore[arg-type]


async def _frames(made: Made, workdir: Path, overlays: list[OverlaySpec],
                  seconds: float) -> tuple[list[Picture], Path]:  # fmt: skip
    result = await assemble([made.colour("gray", seconds)], audio=None, output=OutputSpec(),
                            workdir=workdir, overlays=overlays)  # fmt: skip
    return rgb_frames(result.output), result.output


def _at(frames: list[Picture], seconds: float) -> Picture:
    return frames[round(seconds * FPS)]


def _near(
    colour: tuple[float, float, float], rgb: tuple[int, int, int], within: float = 40
) -> bool:
    return max(abs(a - b) for a, b in zip(colour, rgb, strict=True)) <= within


def _coloured(frame: Picture) -> list[tuple[int, int]]:
    return frame.where(lambda r, g, b: max(r, g, b) - min(r, g, b) > 80)


async def test_a_pip_shows_in_its_window_at_its_place_size_and_from(
    made: Made, rgb: Path, workdir: Path
) -> None:
    """x/y 0.25 and width 0.25: an 80x44 picture (even sides) centred at (80, 45), from 1.5 s
    into the video (green, then blue), between 0.5 s and 2.0 s; grey elsewhere and elsewhen."""
    overlay = _pip(rgb, width=0.25, start=0.5, end=2.0, from_=1.5,
                   motion=MotionSpec(x=0.25, y=0.25))  # fmt: skip
    frames, _ = await _frames(made, workdir, [overlay], seconds=3.0)

    for t, colour in ((0.7, GREEN), (1.2, BLUE), (1.8, BLUE)):
        frame = _at(frames, t)
        x0, y0, x1, y1 = bounding_box(_coloured(frame))
        assert (abs(x0 - 40) <= 1, abs(x1 - 119) <= 1, abs(y0 - 23) <= 1, abs(y1 - 66) <= 1) == (
            True, True, True, True), (t, x0, y0, x1, y1)  # fmt: skip
        assert _near(frame.mean((50, 30, 110, 60)), colour), (t, frame.mean((50, 30, 110, 60)))
        assert _near(frame.mean((160, 90, 320, 180)), GREY, 6)  # the rest untouched
    for t in (0.3, 2.2, 2.8):
        assert not _coloured(_at(frames, t)), t


async def test_a_looped_overlay_starts_again_and_an_unlooped_one_goes_when_it_ends(
    made: Made, rgb: Path, workdir: Path
) -> None:
    overlays: list[OverlaySpec] = [
        _pip(rgb, position="top_left", margin=0.0, width=0.25, start=0.0, from_=2.0, loop=True),
        _pip(rgb, position="bottom_right", margin=0.0, width=0.25, start=0.0, from_=2.0),
    ]
    frames, _ = await _frames(made, workdir, overlays, seconds=4.0)

    looped, once = (0, 0, 80, 45), (240, 135, 320, 180)
    # from 2 s: blue for a second; then the looped one plays the file again from its start
    for t, colour in ((0.5, BLUE), (1.5, RED), (2.5, GREEN), (3.5, BLUE)):
        assert _near(_at(frames, t).mean(looped), colour), (t, _at(frames, t).mean(looped))
    assert _near(_at(frames, 0.5).mean(once), BLUE)
    for t in (1.5, 3.0):  # its video ended at 1 s: the picture underneath again
        assert _near(_at(frames, t).mean(once), GREY, 6), (t, _at(frames, t).mean(once))


async def test_rounded_corners_and_a_fade_in(made: Made, rgb: Path, workdir: Path) -> None:
    overlay = _pip(rgb, position="center", width=0.5, radius=0.05, start=0.0, end=2.0,
                   motion=MotionSpec(fade_in=1.0))  # fmt: skip
    frames, _ = await _frames(made, workdir, [overlay], seconds=2.0)

    frame = _at(frames, 1.5)  # green, 160x90 centred: (80, 45) to (240, 135), corners cut
    assert _near(frame.mean((100, 60, 220, 120)), GREEN)
    assert _near(frame.mean((80, 45, 84, 49)), GREY, 10)  # the corner's own pixels: rounded off
    assert _near(frame.mean((150, 45, 170, 49)), GREEN)  # the top edge's middle is not
    early, later = _at(frames, 0.2).mean((100, 60, 220, 120)), frame.mean((100, 60, 220, 120))
    # red at 20% over grey (153, 102, 102) early; green, whole, by then
    assert early[0] > 140 and early[1] < 115 and later[0] < 30, (early, later)


async def test_its_sound_is_mixed_only_with_a_volume(made: Made, rgb: Path, tmp_path: Path) -> None:
    levels = {}
    for volume in (0.0, 1.0):
        overlay = _pip(rgb, start=1.0, end=2.5, volume=volume)
        _, output = await _frames(made, tmp_path / f"v{volume}", [overlay], seconds=3.5)
        samples, rate = decode_mono(output)
        levels[volume] = (tone_level_db(samples, rate, 1000, 1.2, 2.3),
                          tone_level_db(samples, rate, 1000, 2.7, 3.3),
                          tone_level_db(samples, rate, 440, 0.2, 0.8))  # fmt: skip
    inside, after, clip = levels[1.0]
    assert inside > after + 30 and inside > clip - 12, levels  # heard in its window only
    assert levels[0.0][0] < inside - 30, levels  # volume 0: not heard at all


def test_a_still_image_is_not_a_video_overlay(made: Made) -> None:
    png = made.image("still", "color=c=white:s={size}", size="64x36")
    with pytest.raises(InputError) as caught:
        probe(png, "overlays[0].video", "clip")
    assert str(caught.value).startswith("overlays[0].video: ") and "not a video" in str(
        caught.value
    )
