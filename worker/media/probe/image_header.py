"""A still image's format and size, read from its header without decoding a pixel.

An image is the cheapest bomb there is: a 30,000 x 30,000 PNG of zero rows is a few hundred
kilobytes on disk and 2.7 GB once decoded. So the probe reads the size the header declares and
refuses what is over MAX_INPUT_PIXELS before any decoder runs; the decoder then gets FFmpeg's
own `max_pixels` as a second line, in case the header and the data disagree.

Only the three formats the contract accepts are read: PNG (the IHDR chunk), JPEG (the first
start-of-frame marker, skipping the segments before it by their lengths) and WebP (the VP8,
VP8L or VP8X chunk). Pure Python on a bounded number of bytes: nothing here can allocate in
proportion to what the header claims.

A file may hold more than one picture, and FFmpeg's image demuxers return every one of them
(several PNGs, JPEGs or WebPs one after another). The probe demuxes the whole file and reads
each picture's header here (`packet_header`), so every picture is sized, not only the first.
Two kinds of animation hide inside one picture's bytes, where no demuxer counts them: an
animated PNG (APNG: an `acTL` chunk, frames in `fcTL`/`fdAT`) and an animated WebP (`ANIM` and
`ANMF` chunks, and the VP8X animation flag); `animation` finds them by walking the chunks, in
time linear in the bytes.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from worker.errors import PermanentError

ImageFormat = Literal["png", "jpeg", "webp"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
# How far into a JPEG the first frame header may be: EXIF, XMP and ICC segments come first and
# can be large (each at most 64 KB), but a file that needs more than this to reach its size is
# either damaged or built to make us read.
JPEG_SEARCH_BYTES = 4 * 1024 * 1024
# JPEG start-of-frame markers: C0-CF except C4 (DHT), C8 (reserved) and CC (DAC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length: TEM, RST0-7, SOI, EOI.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header declares."""

    format: ImageFormat
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


class HeaderError(PermanentError):
    """The file starts like an image of this format but its header cannot be read (examine.py
    turns it into an InputError naming the input; the file will not change on a retry)."""


def sniff(head: bytes) -> ImageFormat | None:
    """The image format the first bytes show (PNG, JPEG, WebP), or None."""
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def read_header(path: Path) -> ImageHeader | None:
    """The header of a PNG, JPEG or WebP file; None when it is none of them.

    Raises `HeaderError` for a file that starts as one of them but whose size cannot be read.
    """
    with path.open("rb") as f:
        return _read(f)


def packet_header(data: bytes | memoryview) -> ImageHeader | None:
    """The header of one picture as a demuxer cut it out of a file (a packet); None when the
    packet does not start like an image (such as bytes after a PNG's end, which FFmpeg's
    decoders cannot make a picture of). Raises `HeaderError` as `read_header` does."""
    return _read(io.BytesIO(data[:JPEG_SEARCH_BYTES]))


def _read(f: BinaryIO) -> ImageHeader | None:
    head = f.read(64)
    kind = sniff(head)
    if kind is None:
        return None
    if kind == "png":
        width, height = _png(head)
    elif kind == "webp":
        width, height = _webp(head)
    else:
        width, height = _jpeg(f)
    if width <= 0 or height <= 0:
        raise HeaderError(f"its header declares a {width}x{height} picture")
    return ImageHeader(kind, width, height)


def _png(head: bytes) -> tuple[int, int]:
    """IHDR must be the first chunk: length 13, then width and height, big-endian."""
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise HeaderError("its PNG header (IHDR) is missing")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _webp(head: bytes) -> tuple[int, int]:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    raise HeaderError("its WebP header (VP8, VP8L or VP8X) is missing or damaged")


def _jpeg(f: BinaryIO) -> tuple[int, int]:
    """Walk the segments from the start to the first start-of-frame marker."""
    f.seek(2)
    while f.tell() < JPEG_SEARCH_BYTES:
        byte = f.read(1)
        if not byte:
            break
        if byte != b"\xff":
            continue  # entropy-coded bytes or padding between segments
        code = _marker(f)
        if code is None:
            break
        if code in _STANDALONE or code == 0x00:
            continue
        length_bytes = f.read(2)
        if len(length_bytes) < 2:
            break
        (length,) = struct.unpack(">H", length_bytes)
        if code in _SOF:
            frame = f.read(5)
            if len(frame) < 5:
                break
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        if length < 2:
            break
        f.seek(length - 2, 1)
    raise HeaderError("no JPEG frame header (SOF) was found near its start")


def _marker(f: BinaryIO) -> int | None:
    """The marker code after an 0xFF byte, past any fill bytes; None at the end of the file."""
    marker = f.read(1)
    while marker == b"\xff":
        marker = f.read(1)
    return marker[0] if marker else None


# ---- animations inside one picture ---------------------------------------------------------

_APNG_CHUNKS = frozenset({b"acTL", b"fcTL", b"fdAT"})
_ANIMATED_WEBP_CHUNKS = frozenset({b"ANIM", b"ANMF"})
_VP8X_ANIMATION = 0x02  # the animation bit of the VP8X chunk's flags


def animation(header: ImageHeader, data: bytes | memoryview) -> str | None:
    """What makes the picture in `data` (one packet, whose header is `header`) an animation:
    "an animated PNG (APNG)", "an animated WebP", or None for a still."""
    if header.format == "png" and _png_animated(data):
        return "an animated PNG (APNG)"
    if header.format == "webp" and _webp_animated(data):
        return "an animated WebP"
    return None


def _png_animated(data: bytes | memoryview) -> bool:
    """An APNG chunk is among its chunks, up to its IEND (each a length, a type, the data and
    a CRC)."""
    at = len(PNG_MAGIC)
    while at + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        if kind in _APNG_CHUNKS:
            return True
        if kind == b"IEND":
            break
        at += 12 + length
    return False


def _webp_animated(data: bytes | memoryview) -> bool:
    """The VP8X flags say so, or an ANIM or ANMF chunk is there (RIFF chunks: a FourCC and a
    little-endian length, padded to an even size)."""
    at = 12
    while at + 8 <= len(data):
        kind, length = struct.unpack_from("<4sI", data, at)
        if kind in _ANIMATED_WEBP_CHUNKS:
            return True
        if kind == b"VP8X" and at + 8 < len(data) and data[at + 8] & _VP8X_ANIMATION:
            return True
        at += 8 + length + (length & 1)
    return False
