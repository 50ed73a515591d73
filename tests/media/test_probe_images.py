"""Still images: read from their header and bounded before any decoding.

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
from worker.media.probe.examine import probe
from worker.media.probe.image_header import HeaderError, read_header
from worker.media.probe.process import MIB, ProbeLimits, probe_async

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


# ---- one picture per still -----------------------------------------------------------------------


def pictures(folder: Path, name: str, *sizes: str) -> Path:
    """One file holding a picture of each size one after another, each a real file of the
    format `name`'s suffix names (written by FFmpeg, then concatenated)."""
    out = folder / name
    parts = []
    for k, size in enumerate(sizes):
        part = folder / f"part{k}{out.suffix}"
        ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={size}", "-frames:v", "1"], part)
        parts.append(part.read_bytes())
    out.write_bytes(b"".join(parts))
    return out


@pytest.mark.parametrize(("name", "count"), [("many.png", 7), ("two.jpg", 2), ("three.webp", 3)])
@pytest.mark.parametrize(
    ("source", "kind"), [("clips[0]", "visual"), ("overlays[0].image", "image")]
)
def test_a_file_of_several_pictures_is_refused_naming_the_input(
    tmp_path: Path, name: str, count: int, source: str, kind: str
) -> None:
    path = pictures(tmp_path, name, *[SIZE] * count)
    with pytest.raises(InputError) as caught:
        probe(path, source, kind, ProbeLimits())  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"{source}: holds {count} pictures (an animation or several images one after "
        "another); a still image must hold exactly one"
    )


async def test_the_pictures_are_counted_in_the_probe_child(tmp_path: Path) -> None:
    path = pictures(tmp_path, "issue.png", "320x240", *[SIZE] * 6)
    with pytest.raises(InputError, match=r"^clips\[3\]: holds 7 pictures"):
        await probe_async(path, "clips[3]", "visual", ProbeLimits())


def test_every_picture_counts_against_the_pixel_limit(tmp_path: Path) -> None:
    """The first picture is within the limit, the second is not: its header refuses it."""
    path = pictures(tmp_path, "growing.png", SIZE, "320x240")
    limits = ProbeLimits(max_pixels=128 * 64)  # the first (96x64, decoded as 128x64) fits
    with pytest.raises(InputError) as caught:
        probe(path, "overlays[1].image", "image", limits)
    assert str(caught.value) == (
        "overlays[1].image: its picture 2 is 320x240 (0.1 megapixels), over the limit of "
        "0.0 megapixels (MAX_INPUT_PIXELS); a still image must hold exactly one picture"
    )


def test_a_count_too_large_to_finish_is_said_as_such(tmp_path: Path) -> None:
    tiny = declared_png(1, 1, rows=1)
    path = tmp_path / "flood.png"
    path.write_bytes(tiny * 1001)
    with pytest.raises(InputError, match=r"^clips\[0\]: holds more than 1000 pictures"):
        probe(path, "clips[0]", "visual")


def test_an_animated_png_is_refused(tmp_path: Path) -> None:
    """An APNG demuxes as one picture; its acTL chunk says what it is."""
    path = tmp_path / "moving.png"
    ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={SIZE}:r=5", "-frames:v", "3", "-f", "apng",
            "-plays", "0"], path)  # fmt: skip
    assert b"acTL" in path.read_bytes()
    with pytest.raises(InputError) as caught:
        probe(path, "clips[2]", "visual")
    assert str(caught.value) == (
        "clips[2]: is an animated PNG (APNG); a still image must hold exactly one picture"
    )


def test_an_animated_webp_is_refused(tmp_path: Path) -> None:
    """An animated WebP demuxes as one picture; its ANIM and ANMF chunks say what it is."""
    path = tmp_path / "moving.webp"
    ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={SIZE}:r=5", "-frames:v", "3",
            "-c:v", "libwebp_anim", "-loop", "0"], path)  # fmt: skip
    assert b"ANMF" in path.read_bytes()
    with pytest.raises(InputError) as caught:
        probe(path, "overlays[0].image", "image")
    assert str(caught.value) == (
        "overlays[0].image: is an animated WebP; a still image must hold exactly one picture"
    )


def test_an_animation_flag_alone_is_refused(stills: dict[str, Path], tmp_path: Path) -> None:
    """A VP8X chunk with its animation bit set is an animated WebP, whatever follows it."""
    canvas = (96 - 1).to_bytes(3, "little") + (64 - 1).to_bytes(3, "little")
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x02, 0, 0, 0]) + canvas
    body = stills["webp"].read_bytes()[12:]  # its VP8 chunk, after RIFF, size and WEBP
    chunks = vp8x + body
    path = tmp_path / "flagged.webp"
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks)
    with pytest.raises(InputError, match=r"^clips\[0\]: is an animated WebP"):
        probe(path, "clips[0]", "visual")


@pytest.mark.parametrize("name", ["png", "jpeg", "webp", "webp_lossless"])
def test_one_picture_with_bytes_after_it_is_still_one_picture(
    stills: dict[str, Path], tmp_path: Path, name: str
) -> None:
    """Bytes after the picture (padding, an appended blob) are no second picture: they do not
    start like one, and no decoder makes a picture of them."""
    path = tmp_path / f"padded-{name}"
    path.write_bytes(stills[name].read_bytes() + b"\x00" * 100 + b"trailing data")
    info = probe(path, "clips[0]", "visual")
    assert info.is_image and info.video is not None and info.video.width == 96
