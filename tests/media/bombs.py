"""Hostile media made cheaply: what would cost a worker hours or gigabytes costs a test
kilobytes and a second to make.

- `png_in_mov`: one PNG frame whose header says `side` x `side`, its rows all zero (zlib
  shrinks them ~1000:1), muxed into a MOV as is. 16000x16000 is a 250 KB file.
- `endless_mkv`: black video without a Duration element (`-live 1`): ten seconds are encoded,
  then stream-copied over and over (`-stream_loop`), so an hour costs a few seconds to make.
- `lying_mkv`: the same, finished normally, then its Duration element rewritten to claim
  less than the file holds.
"""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av

from tests.media.conftest import ffmpeg

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Matroska's Duration element: ID 0x4489, size 8 (0x88), a big-endian double in ms.
MKV_DURATION = b"\x44\x89\x88"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bytes(width: int, height: int, rgb: bool = False) -> bytes:
    """An 8-bit grey (or RGB) PNG of zero rows: tiny on disk, 1 (or 3) bytes a pixel decoded."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2 if rgb else 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = b"\x00" * (width * (3 if rgb else 1) + 1)  # filter byte + pixels
    block = max(1, min(height, (8 << 20) // len(row)))  # ~8 MB at a time
    parts = [packer.compress(row * min(block, height - y)) for y in range(0, height, block)]
    data = b"".join(parts) + packer.flush()
    return PNG_MAGIC + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def png_in_mov(folder: Path, side: int, *, height: int | None = None, rgb: bool = False,
               declare: tuple[int, int] | None = None) -> Path:  # fmt: skip
    """A MOV holding one `side` x `side` (or `height`) PNG, muxed by PyAV without decoding it;
    `declare` rewrites the size the MOV's headers (track header and sample description) state,
    so only the PNG itself tells the truth."""
    height = height or side
    suffix = f"-as-{declare[0]}x{declare[1]}" if declare else ""
    target = folder / f"bomb{side}x{height}{'-rgb' if rgb else ''}{suffix}.mov"
    with av.open(str(target), "w", format="mov") as out:
        stream = out.add_stream("png", rate=25)
        stream.width, stream.height = side, height
        stream.pix_fmt = "rgb24" if rgb else "gray"
        packet = av.Packet(png_bytes(side, height, rgb))
        packet.stream, packet.pts, packet.dts, packet.duration = stream, 0, 0, 1
        packet.time_base = Fraction(1, 25)
        out.mux(packet)
    if declare:
        target.write_bytes(_declare_size(target.read_bytes(), (side, height), *declare))
    return target


def _declare_size(mov: bytes, size: tuple[int, int], width: int, height: int) -> bytes:
    data = bytearray(mov)
    # tkhd ends with width and height as 16.16 fixed point
    tkhd = data.index(b"tkhd") - 4
    end = tkhd + struct.unpack(">I", data[tkhd : tkhd + 4])[0]
    data[end - 8 : end] = struct.pack(">II", width << 16, height << 16)
    # the visual sample entry: fourcc, 6 reserved, 2 data-ref index, 16 pre-defined, w, h
    entry = data.index(b"png ", data.index(b"stsd")) + 4 + 6 + 2 + 16
    assert struct.unpack(">HH", data[entry : entry + 4]) == size
    data[entry : entry + 4] = struct.pack(">HH", width, height)
    return bytes(data)


CHUNK_SECONDS = 10


def _black_chunk(folder: Path, size: str, preset: str) -> Path:
    """Ten seconds of black, one keyframe: looped, a few hundred bytes to a few KB a second
    (`veryfast` makes the smaller packets, `ultrafast` makes them sooner)."""
    chunk = folder / f"black-{size}-{preset}.mkv"
    if not chunk.exists():
        ffmpeg(["-f", "lavfi", "-i", f"color=black:s={size}:r=30:d={CHUNK_SECONDS}",
                "-c:v", "libx264", "-preset", preset, "-g", str(30 * CHUNK_SECONDS),
                "-f", "matroska"], chunk)  # fmt: skip
    return chunk


def _looped(folder: Path, seconds: int, size: str, preset: str = "ultrafast") -> list[str]:
    assert seconds % CHUNK_SECONDS == 0, f"a multiple of {CHUNK_SECONDS} s"
    loops = seconds // CHUNK_SECONDS - 1
    return ["-stream_loop", str(loops), "-i", str(_black_chunk(folder, size, preset))]


def endless_mkv(folder: Path, seconds: int, size: str = "320x240",
                preset: str = "ultrafast") -> Path:  # fmt: skip
    """`seconds` of black video in a Matroska file that declares no duration."""
    target = folder / f"endless-{seconds}-{size}-{preset}.mkv"
    ffmpeg([*_looped(folder, seconds, size, preset), "-c", "copy", "-f", "matroska",
            "-live", "1"], target)  # fmt: skip
    return target


def lying_mkv(folder: Path, seconds: int, declared: float) -> Path:
    """`seconds` of black video whose Duration element says `declared` seconds."""
    target = folder / f"lying-{seconds}-{declared:g}.mkv"
    ffmpeg([*_looped(folder, seconds, "320x240"), "-c", "copy", "-f", "matroska"], target)
    data = bytearray(target.read_bytes())
    at = data.index(MKV_DURATION) + len(MKV_DURATION)
    data[at : at + 8] = struct.pack(">d", declared * 1000)  # TimestampScale is 1 ms
    target.write_bytes(bytes(data))
    return target
