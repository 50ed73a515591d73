"""Probing an input with PyAV: what it holds, and whether it is a usable video or audio file.

Everything the join decision needs (codec, profile, size, pixel format, time base, frame rate,
rotation, audio layout, parameter sets) is read here once, into frozen dataclasses. Inputs that
cannot work are refused with an `InputError` whose sentence tells the user what is wrong with
which input, before any FFmpeg run: a web page saved as `.mp4`, an image, a playlist, an empty
or truncated file, a clip with no picture, a voice-over with no sound.

PyAV opens files with the same protocol and demuxer whitelists as the FFmpeg command lines.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.error

from worker.errors import InputError
from worker.media.ffmpeg import MEDIA_FORMATS

Kind = Literal["clip", "audio"]

# Where the end of a file must still be decodable, and how far short of its declared duration
# the last packet may end before we call the file truncated.
END_CHECK_SECONDS = 1.0
END_TOLERANCE_SECONDS = 0.5
# How many packets we read from the start looking for a first decodable frame.
FIRST_FRAME_PACKETS = 600

_TRANSFER = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
             13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084",
             18: "arib-std-b67"}  # fmt: skip
_PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020",
              11: "smpte431", 12: "smpte432"}  # fmt: skip
_MATRIX = {0: "gbr", 1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc",
           10: "bt2020c"}  # fmt: skip
_FIELD_ORDER = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})
INTERLACED = frozenset({"tt", "bb", "tb", "bt"})


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream. `rotation` is the display matrix angle in degrees (0/90/180/270)."""

    index: int
    codec: str
    profile: str | None
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    avg_frame_rate: Fraction | None
    r_frame_rate: Fraction | None
    time_base: Fraction
    rotation: int
    sample_aspect_ratio: Fraction
    color_transfer: str | None
    color_primaries: str | None
    color_space: str | None
    field_order: str | None
    duration: float | None
    extradata_sha1: str

    @property
    def frame_rate(self) -> Fraction:
        """The rate to plan with: the average one, else the real base rate, else 30."""
        return self.avg_frame_rate or self.r_frame_rate or Fraction(30)

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown, after the rotation a player (and FFmpeg) applies."""
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height

    @property
    def interlaced(self) -> bool:
        """Coded as fields (top or bottom first), as camcorders and broadcast record."""
        return self.field_order in INTERLACED

    @property
    def is_hdr(self) -> bool:
        """PQ or HLG: needs tone mapping, not just a bit-depth cut, to look right in 8-bit."""
        return self.color_transfer in HDR_TRANSFERS


@dataclass(frozen=True)
class AudioInfo:
    """The first audio stream."""

    index: int
    codec: str
    profile: str | None
    sample_rate: int
    channels: int
    layout: str
    duration: float | None
    extradata_sha1: str


@dataclass(frozen=True)
class MediaInfo:
    """One probed local file: the container, and its first video and audio streams."""

    path: Path
    format: str
    duration: float
    size: int
    stream_count: int
    video: VideoInfo | None
    audio: AudioInfo | None


async def probe_async(path: Path, source: str, kind: Kind = "clip") -> MediaInfo:
    """`probe` in a worker thread: it decodes frames, which must not stall the event loop."""
    return await asyncio.to_thread(probe, path, source, kind)


def release_memory() -> None:
    """Hand freed heap back to the OS after decoding (glibc keeps it otherwise: a 4K probe
    leaves tens of MB in the worker's RSS for good). A no-op where malloc_trim is missing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return


def probe(path: Path, source: str, kind: Kind = "clip") -> MediaInfo:
    """Describe `path`, or raise `InputError(source, …)` if it cannot be used as a `kind`.

    A clip must have a decodable picture from its first frame to its end (sound optional); an
    audio input (voice-over, music) must have decodable sound, a picture is ignored.
    """
    path = Path(path)
    size = _size(path, source)
    _reject_by_content(path, source)
    with _open(path, source) as container:
        info = _describe(container, path, size)
        _check_usable(container, info, source, kind)
    return info


def describe(path: Path, source: str) -> MediaInfo:
    """Headers and first frame only, without the usability checks: for files we just wrote.

    Checking our own output's end would decode up to a whole GOP again for nothing; this
    keeps reading the result back cheap next to a stream-copy join.
    """
    path = Path(path)
    size = _size(path, source)
    with _open(path, source) as container:
        return _describe(container, path, size)


def _size(path: Path, source: str) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(source, "the downloaded file is missing") from None
    if size == 0:
        raise InputError(source, "the file is empty (0 bytes); check that the URL serves the file")
    return size


_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
)


def _reject_by_content(path: Path, source: str) -> None:
    """Refuse by its first bytes what is plainly not media, with a message saying what it is.

    Playlists and concat lists are refused here by name, not only by the demuxer whitelist,
    because they are the known way to make FFmpeg read other files into a video.
    """
    with path.open("rb") as f:
        head = f.read(4096)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    lowered = text[:256].lower()
    if text.startswith(b"#EXTM3U") or b"#ext-x-" in lowered:
        problem = "is an HLS playlist (.m3u8), not a video file; link the video file itself"
    elif lowered.startswith(b"ffconcat") or lowered.startswith(b"file "):
        problem = "is an FFmpeg concat list, not a media file"
    elif lowered.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"<")):
        problem = (
            "is not a media file (looks like HTML); the URL may lead to a web page, a login "
            "or an error page instead of the file itself"
        )
    elif head[8:12] == b"WEBP" and head[:4] == b"RIFF":
        problem = "is a WebP image, not a video"
    else:
        problem = next((f"is {name}, not a video" for magic, name in _IMAGE_MAGIC
                        if head.startswith(magic)), "")  # fmt: skip
        if not problem and _looks_like_text(head):
            problem = "is a text file, not a media file"
    if problem:
        raise InputError(source, problem)


def _looks_like_text(head: bytes) -> bool:
    """True for bytes that decode as UTF-8 and are nearly all printable: no media file is."""
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in decoded)
    return printable >= 0.95 * max(1, len(decoded))


def _open(path: Path, source: str) -> Any:
    """Open with the FFmpeg command lines' restrictions: the file protocol, media demuxers."""
    options = {"protocol_whitelist": "file", "format_whitelist": ",".join(MEDIA_FORMATS)}
    try:
        return av.open(str(path.resolve()), mode="r", container_options=options)
    except av.error.ArgumentError:
        raise InputError(
            source, "is not in a supported format; use MP4, MOV, WebM or MKV (video), "
            "or MP3, M4A, WAV, OGG or FLAC (audio)"
        ) from None  # fmt: skip
    except av.error.FFmpegError as exc:
        raise InputError(
            source, f"could not be read: the file is damaged, incomplete or not a media file "
            f"({exc.strerror or exc}); upload it again"
        ) from None  # fmt: skip


def _describe(container: Any, path: Path, size: int) -> MediaInfo:
    video = next((s for s in container.streams.video if not _is_cover_art(s)), None)
    audio = next(iter(container.streams.audio), None)
    duration = container.duration / 1_000_000 if container.duration else 0.0
    return MediaInfo(
        path=path,
        format=container.format.name,
        duration=duration,
        size=size,
        stream_count=len(container.streams),
        video=_video_info(container, video) if video is not None else None,
        audio=_audio_info(audio) if audio is not None else None,
    )


def _is_cover_art(stream: Any) -> bool:
    """An MP3's or M4A's embedded picture shows up as a one-frame video stream: not a video."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _video_info(container: Any, stream: Any) -> VideoInfo:
    cc = stream.codec_context
    pix_fmt = cc.format.name if cc.format is not None else "unknown"
    return VideoInfo(
        index=stream.index,
        codec=cc.codec.canonical_name,
        profile=cc.profile,
        width=cc.width,
        height=cc.height,
        pix_fmt=pix_fmt,
        bit_depth=_bit_depth(cc.format),
        avg_frame_rate=_fraction(stream.average_rate),
        r_frame_rate=_fraction(stream.base_rate),
        time_base=_fraction(stream.time_base) or Fraction(1, 1000),
        rotation=_first_frame_rotation(container, stream),
        sample_aspect_ratio=_fraction(cc.sample_aspect_ratio) or Fraction(1),
        color_transfer=_TRANSFER.get(cc.color_trc),
        color_primaries=_PRIMARIES.get(cc.color_primaries),
        color_space=_MATRIX.get(cc.colorspace),
        field_order=_FIELD_ORDER.get(cc.field_order),
        duration=_stream_seconds(stream),
        extradata_sha1=hashlib.sha1(cc.extradata or b"", usedforsecurity=False).hexdigest(),
    )


def _audio_info(stream: Any) -> AudioInfo:
    cc = stream.codec_context
    return AudioInfo(
        index=stream.index,
        codec=cc.codec.canonical_name,
        profile=cc.profile,
        sample_rate=cc.sample_rate,
        channels=cc.channels,
        layout=cc.layout.name,
        duration=_stream_seconds(stream),
        extradata_sha1=hashlib.sha1(cc.extradata or b"", usedforsecurity=False).hexdigest(),
    )


def _bit_depth(fmt: Any) -> int:
    if fmt is None or not fmt.components:
        return 8
    return max(c.bits for c in fmt.components)


def _fraction(value: Any) -> Fraction | None:
    if value is None or not value.denominator or not value.numerator:
        return None
    return Fraction(value.numerator, value.denominator)


def _stream_seconds(stream: Any) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _first_frame_rotation(container: Any, stream: Any) -> int:
    """The display matrix rotation, which PyAV exposes on decoded frames, not on streams.

    This also proves the first picture decodes; `_check_usable` reports a failure properly.
    """
    try:
        frame = _first_frame(container, stream)
    except av.error.FFmpegError:
        return 0
    return round(frame.rotation) % 360 if frame is not None else 0


def _first_frame(container: Any, stream: Any) -> Any:
    """The first decodable frame of `stream` from the start of the file, or None."""
    container.seek(0, any_frame=False, backward=True)
    for count, packet in enumerate(container.demux(stream)):
        if count >= FIRST_FRAME_PACKETS:
            break
        for frame in packet.decode():
            return frame
    return None


def _check_usable(container: Any, info: MediaInfo, source: str, kind: Kind) -> None:
    """Refuse a file without the stream `kind` needs, or whose stream fails to decode."""
    if kind == "clip":
        if info.video is None:
            what = "an audio file" if info.audio is not None else "a file without a picture"
            raise InputError(source, f"has no video stream (it is {what}); a clip must be a video")
        target = container.streams[info.video.index]
    else:
        if info.audio is None:
            raise InputError(source, "has no audio stream; a voice-over or music must have sound")
        target = container.streams[info.audio.index]
    _check_decodes(container, target, info, source)


def _check_decodes(container: Any, stream: Any, info: MediaInfo, source: str) -> None:
    """Decode the first frame and the last second: a cut-off download fails one of them."""
    what = "picture" if stream.type == "video" else "sound"
    try:
        # keep only whether it decoded: holding a 4K frame through the tail decode costs ~12 MB
        first_decodes = _first_frame(container, stream) is not None
        declared = info.duration or _stream_seconds(stream) or 0.0
        ends_at, decoded = _decode_tail(container, stream, declared)
    except av.error.FFmpegError as exc:
        raise InputError(
            source, f"is truncated or damaged: its {what} cannot be decoded ({exc.strerror or exc})"
        ) from None
    if not first_decodes:
        raise InputError(source, f"is damaged: no {what} could be decoded from its start")
    if decoded == 0 or (declared and ends_at < declared - END_TOLERANCE_SECONDS):
        raise InputError(
            source, f"is truncated or damaged: its {what} stops at {ends_at:.1f} s of "
            f"{declared:.1f} s; the download or upload may have been cut off"
        )  # fmt: skip


def _decode_tail(container: Any, stream: Any, declared: float) -> tuple[float, int]:
    """Seek to the last second and decode to the end: (where the packets end, frames decoded)."""
    start = max(0.0, declared - END_CHECK_SECONDS)
    if stream.time_base is not None:
        container.seek(int(start / stream.time_base), stream=stream, backward=True)
    origin = (container.start_time or 0) / 1_000_000
    ends_at, decoded = 0.0, 0
    for packet in container.demux(stream):
        if packet.pts is not None and stream.time_base is not None:
            end = (packet.pts + (packet.duration or 0)) * stream.time_base
            ends_at = max(ends_at, float(end) - origin)
        decoded += len(packet.decode())
    return ends_at, decoded
