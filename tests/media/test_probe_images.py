"""Still images (issue 9, point 3): read from their header and bounded before any decoding.

Every image here is made by the test: real PNG, JPEG and WebP files written by FFmpeg, and bombs
written byte by byte (a PNG header declaring 30000x30000 over a few compressed rows), so a
refusal can only come from the header: decoding the bomb would need 900 MB, and its rows stop
after the first few.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from tests.media.bombs import PNG_MAGIC, _chunk
from tests.media.conftest import Media, ffmpeg
from worker.errors import InputError
from worker.media.image_header import HeaderError, read_header
from worker.media.probe import probe
from worker.media.probe_process import MIB, ProbeLimits, probe_async

SIZE = "96x64"


def still(folder: Path, name: str, *codec: str) -> Path:
    out = folder / name
    ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={SIZE}", "-frames:v", "1", *codec], out)
    return out


@pytest.fixture(scope="module")
def stills(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("stills")
    return {
        "png": still(folder, "a.png"),
        "jpeg": still(folder, "a.jpg"),
        "webp": still(folder, "a.webp"),
        "webp_lossless": still(folder, "b.webp", "-c:v", "libwebp", "-lossless", "1"),
    }


def declared_png(width: int, height: int, rows: int = 4) -> bytes:
    """A grey PNG whose header declares `width` x `height` but whose data stops after `rows`
    rows: a few kilobytes on disk, and undecodable past its start."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * (width + 1) * rows, 9)
    return PNG_MAGIC + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("name", ["png", "jpeg", "webp", "webp_lossless"])
def test_each_format_is_read_from_its_header_and_probed_as_an_image(
    stills: dict[str, Path], name: str
) -> None:
    header = read_header(stills[name])
    assert header is not None and (header.width, header.height) == (96, 64)
    info = probe(stills[name], "overlays[0].image", "image")
    assert info.is_image and info.audio is None and info.duration == 0.0
    assert info.video is not None and (info.video.width, info.video.height) == (96, 64)


def test_a_vp8x_webp_header_gives_the_canvas_size(tmp_path: Path) -> None:
    canvas = (4000 - 1).to_bytes(3, "little") + (3000 - 1).to_bytes(3, "little")
    data = b"RIFF" + b"\x00" * 4 + b"WEBP" + b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4
    path = tmp_path / "x.webp"
    path.write_bytes(data + canvas)
    header = read_header(path)
    assert header is not None and (header.format, header.width, header.height) == (
        "webp",
        4000,
        3000,
    )


def test_a_jpeg_size_is_found_behind_large_metadata(stills: dict[str, Path], tmp_path: Path):
    """EXIF and ICC segments come before the frame header; they are skipped by their lengths."""
    body = stills["jpeg"].read_bytes()
    app1 = b"\xff\xe1" + struct.pack(">H", 60002) + b"Exif\x00\x00" + b"\xff" * 59994
    path = tmp_path / "exif.jpg"
    path.write_bytes(body[:2] + app1 * 3 + body[2:])
    header = read_header(path)
    assert header is not None and (header.width, header.height) == (96, 64)
    assert probe(path, "clips[0]", "visual").is_image


def test_a_clip_is_a_video_or_an_image_by_its_file(media: Media, stills: dict[str, Path]):
    assert not probe(media.path("h264_30"), "clips[0]", "visual").is_image
    named_like_a_video = stills["png"].with_name("still.mp4")
    named_like_a_video.write_bytes(stills["png"].read_bytes())
    assert probe(named_like_a_video, "clips[0]", "visual").is_image


async def test_a_pixel_bomb_is_refused_from_its_header_in_the_probe_child(tmp_path: Path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(declared_png(30000, 30000))
    assert bomb.stat().st_size < 64 * 1024
    # the child's memory limit (256 MB) is far below what decoding would take (900 MB)
    limits = ProbeLimits(memory_bytes=256 * MIB)
    with pytest.raises(InputError) as caught:
        await probe_async(bomb, "overlays[0].image", "image", limits)
    message = str(caught.value)
    assert message.startswith("overlays[0].image: is a 30000x30000 image (900.0 megapixels)")
    assert "MAX_INPUT_PIXELS" in message


def test_a_bomb_as_a_clip_is_refused_naming_the_clip(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(declared_png(30000, 30000))
    with pytest.raises(InputError, match=r"^clips\[2\]: is a 30000x30000 image"):
        probe(bomb, "clips[2]", "visual", ProbeLimits())


def test_the_pixel_limit_is_the_operators(stills: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"96x64 image .* over the limit of 0\.0 megapixels"):
        probe(stills["png"], "overlays[1].image", "image", ProbeLimits(max_pixels=96 * 63))
    # (FFmpeg's decoder counts the picture padded to its alignment, 128x64 here)
    assert probe(stills["png"], "x", "image", ProbeLimits(max_pixels=128 * 64)).is_image


def test_an_image_over_its_byte_limit_is_refused_before_decoding(stills: dict[str, Path]):
    limits = ProbeLimits(max_image_bytes=100)
    with pytest.raises(InputError, match=r"^clips\[0\]: is a 0\.0 MB image; at most 0 MB"):
        probe(stills["png"], "clips[0]", "visual", limits)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"GIF89a" + b"\x00" * 64, "is a GIF image; an image must be a PNG, JPEG or WebP file"),
        (b"<!doctype html><html>login</html>", "is not an image (looks like HTML)"),
        (b"ID3\x03\x00" + b"\x00" * 200, "is not an image: an image must be a PNG, JPEG or WebP"),
    ],
)
def test_a_file_that_is_not_an_image_is_named(tmp_path: Path, data: bytes, words: str) -> None:
    path = tmp_path / "logo.png"
    path.write_bytes(data)
    with pytest.raises(InputError, match=r"^overlays\[0\]\.image: ") as caught:
        probe(path, "overlays[0].image", "image")
    assert words in str(caught.value)


def test_a_video_given_as_an_image_is_refused(media: Media) -> None:
    with pytest.raises(InputError, match=r"^overlays\[2\]\.image: is not an image"):
        probe(media.path("h264_30"), "overlays[2].image", "image")


@pytest.mark.parametrize(
    "data",
    [
        PNG_MAGIC + b"\x00" * 8,  # no IHDR
        PNG_MAGIC + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 10, 8, 0, 0, 0, 0)),
        b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x00" * 64,  # no frame header
        b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20,  # no VP8 start code
    ],
)
def test_a_damaged_header_is_refused_as_a_damaged_image(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken"
    path.write_bytes(data)
    with pytest.raises(HeaderError):
        read_header(path)
    with pytest.raises(InputError, match=r"^clips\[1\]: is a damaged image"):
        probe(path, "clips[1]", "visual")


def test_an_image_whose_data_is_cut_off_is_refused(stills: dict[str, Path], tmp_path: Path):
    whole = stills["png"].read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(whole[:60])
    with pytest.raises(InputError, match=r"^overlays\[0\]\.image: is a damaged image"):
        probe(path, "overlays[0].image", "image")


def test_a_still_is_still_refused_where_only_a_video_will_do(stills: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"^clips\[0\]: is a PNG image, not a video"):
        probe(stills["png"], "clips[0]", "clip")
