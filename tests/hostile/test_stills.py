"""Stills that hold more than one picture: each fails at once naming its input, and
the worker then completes a good job.

The issue's recipe was one small PNG followed by six 8192x8192 16-bit PNGs, which FFmpeg's
image demuxer returned and decoded one by one (2.9 GB as an overlay). Here the pictures are
small (the point is the count, not the size: bench/bench_bombs.py runs the recipe itself), and
the pixel bound on a picture after the first is shown with a low MAX_INPUT_PIXELS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.harness import Expect, LoopbackServer, corpus_settings, run_case
from tests.media.conftest import ffmpeg

NO_PATHS = ("/tmp", "/root", "/home", "Traceback")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stills")


def picture(folder: Path, size: str) -> bytes:
    """One real PNG of `size`, made once per module."""
    path = folder / f"picture-{size}.png"
    if not path.exists():
        ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={size}", "-frames:v", "1"], path)
    return path.read_bytes()


@pytest.fixture
async def served(good_clip: Path) -> AsyncIterator[LoopbackServer]:
    server = LoopbackServer({"/good.mp4": good_clip})
    async with server.serving():
        yield server


def _payload(where: str, base: str) -> tuple[dict[str, Any], str]:
    """A payload with the hostile file as a still clip or an image overlay, and its name."""
    url = f"{base}/still.png"
    if where == "clip":
        return {"clips": [{"url": url, "duration": 2}]}, "clips[0]"
    payload = {"clips": [{"url": f"{base}/good.mp4"}], "overlays": [{"image": url}]}
    return payload, "overlays[0].image"


async def _case(store: Any, tmp_path: Path, good_clip: Path, server: LoopbackServer,
                data: bytes, where: str, words: tuple[str, ...],
                **settings: Any) -> dict[str, Any]:  # fmt: skip
    server.routes["/still.png"] = data
    payload, source = _payload(where, server.base)
    expect = Expect(error=(f"{source}: ", *words), not_in_error=NO_PATHS)
    options = {"allow_private_urls": True, **settings}
    return await run_case(store, corpus_settings(tmp_path, **options), good_clip, payload, expect)


@pytest.mark.parametrize("where", ["clip", "overlay"])
async def test_a_png_of_seven_pictures_fails_at_once(
    store, tmp_path, good_clip, served, made, where
):
    data = picture(made, "320x240") * 7
    words = ("holds 7 pictures", "a still image must hold exactly one")
    await _case(store, tmp_path, good_clip, served, data, where, words)  # failed, attempt 1


async def test_a_large_picture_after_a_small_one_is_held_to_the_pixel_limit(
    store, tmp_path, good_clip, served, made
):
    """The good clip is 320x240, which the limit must let through."""
    data = picture(made, "64x48") + picture(made, "640x480")
    words = ("its picture 2 is 640x480 (0.3 megapixels)", "MAX_INPUT_PIXELS")
    await _case(store, tmp_path, good_clip, served, data, "overlay", words,
                max_input_pixels=320 * 240)  # fmt: skip


async def test_an_animated_png_as_an_overlay_fails_at_once(
    store, tmp_path, good_clip, served, made
):
    path = made / "moving.png"
    if not path.exists():
        ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x240:r=5", "-frames:v", "3", "-f", "apng",
                "-plays", "0"], path)  # fmt: skip
    words = ("is an animated PNG (APNG)", "a still image must hold exactly one picture")
    await _case(store, tmp_path, good_clip, served, path.read_bytes(), "overlay", words)
