"""Overlays that move: x/y, fades, entrance animations and keyframes, measured on real FFmpeg
output (a white card or white text on black, 320x180 at 30 fps)."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import pytest

from tests.media.checks import Picture, bounding_box, rgb_frames
from tests.media.test_compose import FPS, Made, image_info
from worker.media.assemble import assemble
from worker.media.picture import motion
from worker.media.picture.overlays import image_overlay, text_document
from worker.media.plan import Geometry
from worker.media.specs import (
    ImageOverlaySpec,
    Keyframe,
    MotionSpec,
    OutputSpec,
    OverlaySpec,
    TextOverlaySpec,
)

W, H = 320, 180
GEOMETRY = Geometry(W, H, Fraction(FPS))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    return Made(tmp_path_factory.mktemp("motion"))


def _card(made: Made, **kwargs: object) -> ImageOverlaySpec:
    """A white 100x50 card, a quarter of the frame wide (80x40 px) unless told otherwise."""
    card = made.image("card", "color=c=white:s={size}", size="100x50")
    kwargs.setdefault("width", 0.25)
    return ImageOverlaySpec(card, image_info(card), **kwargs)  # type: ignore[arg-type]


async def _frames(made: Made, workdir: Path, overlays: list[OverlaySpec],
                  seconds: float = 3.0) -> list[Picture]:  # fmt: skip
    result = await assemble([made.colour("black", seconds)], audio=None, output=OutputSpec(),
                            workdir=workdir, overlays=overlays)  # fmt: skip
    return rgb_frames(result.output)


def _lit(frame: Picture, floor: int = 40) -> list[tuple[int, int]]:
    return frame.where(lambda r, g, b: min(r, g, b) > floor)


def _centre(frame: Picture) -> tuple[float, float]:
    x0, y0, x1, y1 = bounding_box(_lit(frame))
    return (x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2


def _at(frames: list[Picture], seconds: float) -> Picture:
    return frames[round(seconds * FPS)]


async def test_a_slide_up_enters_from_below_and_leaves_the_same_way(
    made: Made, workdir: Path
) -> None:
    overlay = _card(made, position="center", start=0.5, end=2.5,
                    motion=MotionSpec(animation="slide_up", animation_duration=0.6))  # fmt: skip
    frames = await _frames(made, workdir, [overlay])

    assert not _lit(_at(frames, 0.4))  # before its window
    early, late = _centre(_at(frames, 0.7)), _centre(_at(frames, 2.3))
    assert early[1] > H / 2 + 5, early  # below its place early in the entrance
    assert late[1] > H / 2 + 5, late  # and again late in the exit (the entrance reversed)
    for t in (1.1, 1.5, 1.9):  # after animation_duration, in place: the centre of the frame
        x, y = _centre(_at(frames, t))
        assert abs(x - W / 2) <= 1 and abs(y - H / 2) <= 1, (t, x, y)
    # it fades as it slides: fainter early than in place
    assert _at(frames, 0.7).mean((140, 70, 180, 110))[0] < 200
    assert not _lit(_at(frames, 2.6))


async def test_an_image_zoom_grows_around_its_centre_as_it_fades_in(
    made: Made, workdir: Path
) -> None:
    overlay = _card(made, position="center", start=0.0, end=2.0,
                    motion=MotionSpec(animation="zoom", animation_duration=0.6))  # fmt: skip
    frames = await _frames(made, workdir, [overlay], seconds=2.0)

    widths = []
    for t in (0.1, 0.3, 1.0):
        x0, y0, x1, y1 = bounding_box(_lit(_at(frames, t), 20))
        assert abs((x0 + x1 + 1) / 2 - W / 2) <= 1 and abs((y0 + y1 + 1) / 2 - H / 2) <= 1
        widths.append(x1 - x0 + 1)
    assert widths[0] < widths[1] < widths[2] == 80, widths
    assert _at(frames, 0.1).mean((150, 85, 170, 95))[0] < 200  # still fading in


async def test_fade_in_makes_the_overlay_grow_brighter(made: Made, workdir: Path) -> None:
    overlay = _card(made, position="center", start=0.5,
                    motion=MotionSpec(fade_in=1.0, fade_out=0.5))  # fmt: skip
    frames = await _frames(made, workdir, [overlay])

    inside = (130, 80, 190, 100)
    levels = [_at(frames, t).mean(inside)[0] for t in (0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 2.0)]
    assert levels[0] < 10 and levels[-1] > 245, levels
    assert all(a < b - 20 for a, b in itertools.pairwise(levels[:6])), levels
    assert abs(levels[2] - 255 * 0.4) < 20, levels  # linear: 40% of the way at 0.4 s
    assert _at(frames, 2.9).mean(inside)[0] < 255 * 0.3  # fading out to the output's end


async def test_keyframes_move_an_image_through_their_places_eased(
    made: Made, workdir: Path
) -> None:
    keys = (Keyframe(0, x=0.2, y=0.5), Keyframe(1, x=0.8, y=0.5, scale=1.0),
            Keyframe(2, x=0.5, y=0.3, scale=0.5))  # fmt: skip
    overlay = _card(made, start=0.5, motion=MotionSpec(keyframes=keys, easing="ease_in_out"))
    frames = await _frames(made, workdir, [overlay])

    for key in keys:
        assert key.x is not None and key.y is not None
        x, y = _centre(_at(frames, 0.5 + key.t))
        assert abs(x - key.x * W) <= 2 and abs(y - key.y * H) <= 2, (key, x, y)
    # 0.3 of the time from the first to the second, eased in and out: 21.6% of the way
    x, _ = _centre(_at(frames, 0.8))
    assert abs(x - (0.2 + 0.6 * 0.216) * W) <= 2, x
    x0, y0, x1, y1 = bounding_box(_lit(_at(frames, 2.5)))
    assert abs((x1 - x0 + 1) - 40) <= 2 and abs((y1 - y0 + 1) - 20) <= 2  # half size
    x0, _, x1, _ = bounding_box(_lit(_at(frames, 1.5)))
    assert abs((x1 - x0 + 1) - 80) <= 2


async def test_x_and_y_override_position(made: Made, workdir: Path) -> None:
    overlays: list[OverlaySpec] = [
        _card(made, position="top_left", width=0.125, motion=MotionSpec(x=0.75, y=0.25)),
        TextOverlaySpec("Hi", position="bottom_right", size=0.15, motion=MotionSpec(x=0.25,
                        y=0.7)),
    ]  # fmt: skip
    frames = await _frames(made, workdir, overlays, seconds=1.0)

    frame = _at(frames, 0.5)
    card = [(x, y) for x, y in _lit(frame) if x >= W / 2]
    text = [(x, y) for x, y in _lit(frame, 150) if x < W / 2]
    x0, y0, x1, y1 = bounding_box(card)
    assert abs((x0 + x1 + 1) / 2 - 240) <= 1 and abs((y0 + y1 + 1) / 2 - 45) <= 1
    x0, y0, x1, y1 = bounding_box(text)
    assert abs((x0 + x1 + 1) / 2 - 80) <= 4 and abs((y0 + y1 + 1) / 2 - 126) <= 6


async def test_a_text_overlays_ink_follows_its_keyframes(made: Made, workdir: Path) -> None:
    keys = (Keyframe(0, x=0.25, y=0.3), Keyframe(1, x=0.75, y=0.7, opacity=1.0),
            Keyframe(2, opacity=0.0))  # fmt: skip
    overlay = TextOverlaySpec("Move", size=0.12, start=0.5, motion=MotionSpec(keyframes=keys))
    frames = await _frames(made, workdir, [overlay])

    points = []
    for t in (0.5, 1.0, 1.5):
        x, y = _centre(_at(frames, t))
        points.append((x, y))
    assert abs(points[0][0] - 80) <= 4 and abs(points[0][1] - 54) <= 4, points
    assert abs(points[1][0] - 160) <= 4 and abs(points[1][1] - 90) <= 4, points  # halfway
    assert abs(points[2][0] - 240) <= 4 and abs(points[2][1] - 126) <= 4, points
    ink = [max(_at(frames, t).pixel(x, y)[0] for x, y in _lit(_at(frames, t), 20))
           for t in (1.5, 2.0)]  # fmt: skip
    assert ink[0] > 230 and ink[1] < 180, ink  # fading out towards the last keyframe
    assert not _lit(_at(frames, 2.8), 20)


async def test_a_text_pop_grows_and_max_width_wraps(made: Made, workdir: Path) -> None:
    overlays: list[OverlaySpec] = [
        TextOverlaySpec("Pop", position="top", size=0.15, start=0.0, end=2.0,
                        motion=MotionSpec(animation="pop", animation_duration=0.6)),
        TextOverlaySpec("one two three four five six seven eight", position="bottom", size=0.08,
                        max_width=0.4),
    ]  # fmt: skip
    frames = await _frames(made, workdir, overlays, seconds=2.0)

    def pop_width(t: float) -> int:
        top = [(x, y) for x, y in _lit(_at(frames, t), 20) if y < H / 2]
        x0, _, x1, _ = bounding_box(top)
        return x1 - x0

    assert pop_width(0.1) < pop_width(0.4) and pop_width(1.0) > 1.5 * pop_width(0.1)
    wrapped = [(x, y) for x, y in _lit(_at(frames, 1.0), 150) if y > H / 2]
    x0, y0, x1, y1 = bounding_box(wrapped)
    assert x1 - x0 <= 0.4 * W + 2  # within max_width
    assert y1 - y0 > 0.08 * H * 1.5  # on more than one line


def test_a_motion_grows_with_its_keyframes_only() -> None:
    """The graph's expressions and the text's events are as large for a window of an hour as
    for one of two seconds: they grow with the keyframes (at most 20), not with time."""
    keys = tuple(Keyframe(t, x=0.1 + 0.04 * t, scale=1 + 0.1 * (t % 3), opacity=0.5 + 0.025 * t)
                 for t in range(20))  # fmt: skip
    moving = MotionSpec(fade_in=1, fade_out=1, animation="pop", keyframes=keys,
                        easing="ease_in_out")  # fmt: skip
    sizes = []
    for end in (20.0, 3600.0):
        text = TextOverlaySpec("x", start=0, end=end, motion=moving)
        events = text_document(text, GEOMETRY, end).count("Dialogue:")
        sizes.append(events)
        assert events <= (20 + 5) * motion.STEPS_PER_SPAN
    assert abs(sizes[0] - sizes[1]) <= 2, sizes


def test_an_image_motions_graph_does_not_grow_with_its_window(made: Made) -> None:
    keys = tuple(Keyframe(t, x=0.1 + 0.04 * t, scale=1 + 0.1 * (t % 3)) for t in range(20))
    lengths = []
    for end in (20.0, 3600.0):
        overlay = _card(made, start=0, end=end, motion=MotionSpec(animation="zoom", fade_in=1,
                        keyframes=keys, easing="ease_out"))  # fmt: skip
        parts = image_overlay(overlay, "[1:v]", "[m]", "[o0]", GEOMETRY, ends=end,
                              frames=(0, round(end * FPS)))  # fmt: skip
        lengths.append(sum(len(p) for p in parts) - len(str(round(end * FPS))) * 2)
    assert abs(lengths[0] - lengths[1]) < 40, lengths
