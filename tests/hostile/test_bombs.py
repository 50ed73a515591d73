"""Decode and pixel bombs: each ends in a clear permanent error (or a bounded result), no probe
process outlives its job, and the worker then completes a good job.

The bombs are cheap to make (tests/media/bombs.py); limits are lowered where the point is the
limit, and the 16000x16000 pixel bomb of the issue is used as is.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.hostile.harness import Expect, LoopbackServer, corpus_settings, run_case
from tests.media.bombs import PNG_MAGIC, _chunk, endless_mkv, lying_mkv, png_in_mov
from tests.media.conftest import ffmpeg
from worker.media.probe.process import CHILD_MODULE

PIXEL_CEILING = 8192 * 8192
NO_PATHS = ("/tmp", "/root", "/home", "Traceback")


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bombs")


@pytest.fixture
async def served(good_clip: Path) -> AsyncIterator[LoopbackServer]:
    server = LoopbackServer({"/good.mp4": good_clip})
    async with server.serving():
        yield server


def _no_probe_left() -> None:
    """Every probe child this test process started has been killed and reaped."""
    for child in psutil.Process().children(recursive=True):
        try:
            assert CHILD_MODULE not in " ".join(child.cmdline()), "a probe outlived its job"
        except psutil.NoSuchProcess:
            continue


async def _case(store: Any, tmp_path: Path, good_clip: Path, server: LoopbackServer,
                files: dict[str, Path], payload: dict[str, Any], expect: Expect,
                **settings: Any) -> dict[str, Any]:  # fmt: skip
    """Serve `files`, run the hostile payload (URLs given as "/name"), check the row."""
    server.routes.update(files)
    payload = _with_urls(payload, server.base)
    options = {"allow_private_urls": True, **settings}
    row = await run_case(store, corpus_settings(tmp_path, **options), good_clip, payload, expect)
    _no_probe_left()
    return row


def _with_urls(value: Any, base: str) -> Any:
    if isinstance(value, dict):
        return {k: _with_urls(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_urls(v, base) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        return base + value
    return value


def _refused(*words: str) -> Expect:
    return Expect(error=words, not_in_error=NO_PATHS)


@pytest.mark.parametrize(
    ("side", "declare", "limit", "words"),
    [
        (16000, None, None, "its picture is 16000x16000 (256.0 megapixels)"),
        (2000, None, 1_000_000, "its picture is 2000x2000 (4.0 megapixels)"),
        # the MOV's headers claim 320x240; the PNG inside is 4000x4000
        (4000, (320, 240), 1_000_000, "its picture is 4000x4000 (16.0 megapixels)"),
    ],
)
async def test_a_pixel_bomb_fails_before_it_is_decoded(
    store, tmp_path, good_clip, served, bombs, side, declare, limit, words
):
    bomb = png_in_mov(bombs, side, declare=declare)
    settings = {"max_input_pixels": limit} if limit else {}
    expect = _refused("clips[0]: ", words, "MAX_INPUT_PIXELS")
    payload = {"clips": [{"url": "/bomb.mov"}]}
    await _case(store, tmp_path, good_clip, served, {"/bomb.mov": bomb}, payload, expect,
                **settings)  # fmt: skip


async def test_a_pixel_bomb_as_a_voice_over_fails_naming_it(
    store, tmp_path, good_clip, served, bombs
):
    bomb = png_in_mov(bombs, 2000)
    payload = {"clips": [{"url": "/good.mp4", "voice_url": "/voice.mov"}]}
    expect = _refused("clips[0].voice_url: ", "its picture is 2000x2000")
    await _case(store, tmp_path, good_clip, served, {"/voice.mov": bomb}, payload, expect,
                max_input_pixels=1_000_000)  # fmt: skip


async def test_a_file_without_a_duration_is_held_to_the_length_limit(
    store, tmp_path, good_clip, served, bombs
):
    bomb = endless_mkv(bombs, 600)  # declares nothing; the old probe decoded all of it
    expect = _refused("payload.clips: ", "600.0 s long", "over the limit of 60 s")
    payload = {"clips": [{"url": "/endless.mkv"}]}
    await _case(store, tmp_path, good_clip, served, {"/endless.mkv": bomb}, payload, expect,
                max_output_seconds=60)  # fmt: skip


async def test_a_file_that_lies_about_its_duration_is_held_to_the_length_limit(
    store, tmp_path, good_clip, served, bombs
):
    bomb = lying_mkv(bombs, 300, declared=1.0)
    expect = _refused("payload.clips: ", "300.0 s long", "over the limit of 60 s")
    payload = {"clips": [{"url": "/lying.mkv"}]}
    await _case(store, tmp_path, good_clip, served, {"/lying.mkv": bomb}, payload, expect,
                max_output_seconds=60)  # fmt: skip


async def test_a_trimmed_part_of_a_lying_file_is_made(store, tmp_path, good_clip, served, bombs):
    bomb = lying_mkv(bombs, 300, declared=1.0)
    payload = {"clips": [{"url": "/lying.mkv", "start": 100, "end": 102}]}
    # the file (300 s) is over the limit, the part kept (2 s) is not; every time in the payload
    # is within the limit too (start 100 ≤ 200)
    row = await _case(store, tmp_path, good_clip, served, {"/lying.mkv": bomb}, payload,
                      Expect(status="completed"), max_output_seconds=200)  # fmt: skip
    assert row["result"]["duration"] == pytest.approx(2.0, abs=0.1)


async def test_a_huge_input_without_output_is_made_at_most_4096_wide(
    store, tmp_path, good_clip, served, bombs
):
    wide = png_in_mov(bombs, 4500, height=100)  # allowed in, but no output side may pass 4096
    payload = {"clips": [{"url": "/wide.mov"}]}
    row = await _case(store, tmp_path, good_clip, served, {"/wide.mov": wide}, payload,
                      Expect(status="completed"))  # fmt: skip
    assert (row["result"]["width"], row["result"]["height"]) == (4096, 90)


async def test_a_probe_over_its_memory_limit_fails(store, tmp_path, good_clip, served, bombs):
    bomb = png_in_mov(bombs, 8000, rgb=True)  # 192 MB decoded, under the pixel limit given
    expect = _refused("clips[0]: ", "could not be checked within the memory limit of 256 MB")
    payload = {"clips": [{"url": "/bomb.mov"}]}
    await _case(store, tmp_path, good_clip, served, {"/bomb.mov": bomb}, payload, expect,
                max_input_pixels=PIXEL_CEILING, probe_memory_mb=256)  # fmt: skip


async def test_a_file_with_too_many_streams_fails(store, tmp_path, good_clip, served, bombs):
    many = bombs / "streams.mkv"
    if not many.exists():
        sound = ["-map", "1:a"] * 65
        ffmpeg(["-f", "lavfi", "-i", "color=black:s=64x64:d=1", "-f", "lavfi",
                "-i", "anullsrc=d=1", "-map", "0:v", *sound, "-c:v", "libx264",
                "-c:a", "flac"], many)  # fmt: skip
    expect = _refused("clips[0]: ", "has 66 streams; at most 64 are allowed")
    payload = {"clips": [{"url": "/many.mkv"}]}
    await _case(store, tmp_path, good_clip, served, {"/many.mkv": many}, payload, expect)


async def test_music_with_too_many_channels_fails(store, tmp_path, good_clip, served, bombs):
    wide = bombs / "channels.wav"
    if not wide.exists():
        tone = "|".join(["0.1*sin(2*PI*440*t)"] * 33)
        ffmpeg(["-f", "lavfi", "-i", f"aevalsrc={tone}:s=8000:d=1", "-c:a", "pcm_s16le"], wide)
    payload = {"clips": [{"url": "/good.mp4"}], "audio": {"url": "/music.wav"}}
    expect = _refused("audio: ", "has sound with 33 channels")
    await _case(store, tmp_path, good_clip, served, {"/music.wav": wide}, payload, expect)


def _declared_jpeg(width: int, height: int) -> bytes:
    """A JPEG start with a frame header (SOF0) declaring `width` x `height`, and no picture."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9 + sof


def _declared_webp(width: int, height: int) -> bytes:
    """A WebP whose VP8X chunk declares a `width` x `height` canvas, with nothing after it."""
    canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 22) + b"WEBPVP8X" + struct.pack("<I", 10) + bytes(4) + canvas


def _declared_png(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` over a few zero rows (900 MB if decoded)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return PNG_MAGIC + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("name", "data", "where", "words"),
    [
        ("still.png", _declared_png(30000, 30000), "clip", "is a 30000x30000 image (900.0"),
        ("logo.png", _declared_png(30000, 30000), "overlay", "is a 30000x30000 image (900.0"),
        ("still.jpg", _declared_jpeg(30000, 30000), "clip", "is a 30000x30000 image"),
        ("logo.webp", _declared_webp(16384, 16384), "overlay", "is a 16384x16384 image"),
    ],
)
async def test_an_image_bomb_fails_from_its_header(
    store, tmp_path, good_clip, served, name, data, where, words
):
    """Still images: the header's size is refused before any decoder runs."""
    if where == "clip":
        payload: dict[str, Any] = {"clips": [{"url": f"/{name}", "duration": 2}]}
        source = "clips[0]: "
    else:
        payload = {"clips": [{"url": "/good.mp4"}], "overlays": [{"image": f"/{name}"}]}
        source = "overlays[0].image: "
    expect = _refused(source, words, "MAX_INPUT_PIXELS")
    await _case(store, tmp_path, good_clip, served, {f"/{name}": data}, payload, expect)
