"""Probing an input with PyAV: what it holds, and whether it is a usable video or audio file.

Everything the join decision needs (codec, profile, size, pixel format, time base, frame rate,
rotation, audio layout, parameter sets) is read here once, into the frozen values of `info.py`.
Inputs that cannot work are refused with an `InputError` whose sentence tells the user what is
wrong with which input, before any FFmpeg run: a web page saved as `.mp4`, an image, a playlist,
an empty or truncated file, a clip with no picture, a voice-over with no sound.

Inputs are hostile, so every cost is bounded before it is spent (`ProbeLimits`):

- pixel counts, stream counts and audio channels are checked from the headers, before any
  frame is decoded, and every decoder gets FFmpeg's own `max_pixels` limit as a second line
  (a container may declare a small picture around a huge one);
- lengths are measured from demuxed packet timestamps, which cost no decoding, so a file that
  holds more than it declares (or declares nothing) shows its real length;
- decoding for the checks reads a bounded number of packets: the start, and the tail from the
  last keyframe;
- a still image is demuxed whole (packets only, bounded by its bytes): FFmpeg's image demuxers
  return every picture a file holds, so each picture's header is sized, and a file of more
  than one picture, or an animated PNG or WebP, is refused; only the first is decoded.

This module runs inside the probe's child process (`child.py`, started by `process.py`), which
adds the time and memory limits; PyAV opens files with the same protocol and demuxer whitelists
as the FFmpeg command lines.

Over 300 lines on purpose: every check an input passes before FFmpeg decodes it (streams,
pictures, durations measured from packets, images from their headers) reads one PyAV container
in one child process; split, the checks would reopen the file or pass the container around.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import av.logging
from av.video.format import VideoFormat

from worker.errors import InputError, PermanentError
from worker.media.confine import MEDIA_FORMATS, MIB
from worker.media.probe.image_header import (
    HeaderError,
    ImageHeader,
    animation,
    packet_header,
    read_header,
)
from worker.media.probe.info import (
    FIELD_ORDERS,
    HDR_TRANSFERS,
    IMAGE_FORMATS,
    INTERLACED,
    MATRICES,
    PRIMARIES,
    TRANSFERS,
    AudioInfo,
    Kind,
    MediaInfo,
    ProbeLimits,
    VideoInfo,
)

__all__ = [
    "HDR_TRANSFERS",
    "INTERLACED",
    "AudioInfo",
    "Kind",
    "MediaInfo",
    "ProbeLimits",
    "VideoInfo",
    "describe",
    "probe",
]

# Where the end of a file must still be decodable, and how far short of its declared duration
# the last packet may end before we call the file truncated (or past it, before we call the
# declared duration a lie and use the packets' word instead).
END_CHECK_SECONDS = 1.0
END_TOLERANCE_SECONDS = 0.5
# How many packets we read from the start looking for a first decodable frame, and how many we
# decode from the last keyframe to show the end decodes: a fixed budget, whatever the file says.
FIRST_FRAME_PACKETS = 600
TAIL_DECODE_PACKETS = 150
# ... fewer for large pictures: the tail decode costs about as much as 150 frames of 1080p
# (an 8K clip gets 9 packets), so a legitimate 8K file stays well inside PROBE_TIMEOUT.
TAIL_DECODE_PIXELS = TAIL_DECODE_PACKETS * 1920 * 1088
MIN_TAIL_PACKETS = 8
# Sound beyond these is no recording a user makes (22.2 is 24 channels), only a cost.
MAX_AUDIO_CHANNELS = 32
MAX_SAMPLE_RATE = 384_000


def probe(
    path: Path, source: str, kind: Kind = "clip", limits: ProbeLimits | None = None
) -> MediaInfo:
    """Describe `path`, or raise `InputError(source, …)` if it cannot be used as a `kind`.

    A clip must have a decodable picture from its first frame to its end (sound optional); an
    audio input (voice-over, music) must have decodable sound, a picture is ignored. An image
    must be a PNG, JPEG or WebP within the pixel and byte limits, checked from its header before
    it is decoded; "visual" takes either a clip or an image, and the file decides which
    (`MediaInfo.is_image`).
    """
    limits = limits or ProbeLimits()
    path = Path(path)
    size = _size(path, source)
    if kind in ("image", "visual"):
        header = _image_header(path, source)
        if header is not None:
            return _probe_image(path, source, size, header, limits)
        if kind == "image":
            raise InputError(source, _not_an_image(path))
        kind = "clip"
    _reject_by_content(path, source)
    with _open(path, source, limits) as container:
        target = _target(container, source, kind)
        first = _first_frame_facts(container)
        lengths = _measure_end(container, target)
        info = _describe(container, path, size, first, lengths)
        _check_decodes(container, target, first, lengths, source)
    return info


def describe(path: Path, source: str, limits: ProbeLimits | None = None) -> MediaInfo:
    """Headers and first frame only, without the usability checks: for files we just wrote.

    Checking our own output's end would decode up to a whole GOP again for nothing; this
    keeps reading the result back cheap next to a stream-copy join.
    """
    path = Path(path)
    size = _size(path, source)
    with _open(path, source, limits or ProbeLimits()) as container:
        first = _first_frame_facts(container)
        return _describe(container, path, size, first, None)


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


_PIXEL_REFUSAL = re.compile(r"Picture size (\d+)x(\d+) exceeds specified max pixel count")


def _open(path: Path, source: str, limits: ProbeLimits) -> Any:
    """Open with the FFmpeg command lines' restrictions and the header checks.

    Opening already decodes a frame where the headers leave a parameter out (a PNG's pixel
    format), so the decoders get `max_pixels` from the start; FFmpeg's log is read during
    the open only, to name the size it refused.
    """
    options = {"protocol_whitelist": "file", "format_whitelist": ",".join(MEDIA_FORMATS)}
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture() as logs:
            container = av.open(str(path.resolve()), mode="r", container_options=options,
                                options=_decoder_options(limits))  # fmt: skip
    except av.error.ArgumentError:
        raise InputError(
            source, "is not in a supported format; use MP4, MOV, WebM or MKV (video), "
            "or MP3, M4A, WAV, OGG or FLAC (audio)"
        ) from None  # fmt: skip
    except av.error.FFmpegError as exc:
        _reraise_memory(exc)
        _check_refused_pixels(logs, source, limits)
        raise InputError(
            source, f"could not be read: the file is damaged, incomplete or not a media file "
            f"({exc.strerror or exc}); upload it again"
        ) from None  # fmt: skip
    finally:
        av.logging.set_level(None)
    try:
        _check_refused_pixels(logs, source, limits)
        _check_headers(container, source, limits)
    except BaseException:
        container.close()
        raise
    for stream in container.streams:
        if stream.codec_context is not None:
            stream.codec_context.options = _decoder_options(limits)
            stream.codec_context.thread_count = 1
    return container


def _decoder_options(limits: ProbeLimits) -> dict[str, str]:
    """One thread: we decode a few frames, and a thread per core would multiply memory."""
    return {"max_pixels": str(limits.max_pixels), "threads": "1"}


def _reraise_memory(exc: BaseException) -> None:
    """Out of memory is the probe's limit speaking, not a damaged file: let it through."""
    if isinstance(exc, MemoryError):
        raise exc


def _check_refused_pixels(logs: Iterable[Any], source: str, limits: ProbeLimits) -> None:
    for _level, _name, message in logs:
        found = _PIXEL_REFUSAL.search(message or "")
        if found:
            _refuse_size(int(found[1]), int(found[2]), source, limits)


def _refuse_size(width: int, height: int, source: str, limits: ProbeLimits) -> None:
    raise InputError(
        source, f"its picture is {width}x{height} ({width * height / 1e6:.1f} megapixels), over "
        f"the limit of {limits.max_pixels / 1e6:.1f} megapixels (MAX_INPUT_PIXELS); "
        "use a video of at most 8K"
    )  # fmt: skip


def _check_headers(container: Any, source: str, limits: ProbeLimits) -> None:
    """Refuse from the headers alone what would cost too much to decode or mix."""
    streams = container.streams
    if len(streams) > limits.max_streams:
        raise InputError(source, f"has {len(streams)} streams; at most {limits.max_streams} "
                                 "are allowed in one file")  # fmt: skip
    for video in streams.video:
        cc = video.codec_context
        if cc is not None and cc.width * cc.height > limits.max_pixels:
            _refuse_size(cc.width, cc.height, source, limits)
    for audio in streams.audio:
        cc = audio.codec_context
        if cc is None:
            continue
        if cc.channels > MAX_AUDIO_CHANNELS or cc.sample_rate > MAX_SAMPLE_RATE:
            raise InputError(
                source, f"has sound with {cc.channels} channels at {cc.sample_rate} Hz; at "
                f"most {MAX_AUDIO_CHANNELS} channels at {MAX_SAMPLE_RATE} Hz are supported"
            )  # fmt: skip


def _target(container: Any, source: str, kind: Kind) -> Any:
    """The stream `kind` needs, or the refusal saying it is missing."""
    video = _main_video(container)
    audio = next(iter(container.streams.audio), None)
    if kind == "clip":
        if video is None:
            what = "an audio file" if audio is not None else "a file without a picture"
            raise InputError(source, f"has no video stream (it is {what}); a clip must be a video")
        return video
    if audio is None:
        raise InputError(source, "has no audio stream; a voice-over or music must have sound")
    return audio


def _main_video(container: Any) -> Any:
    return next((s for s in container.streams.video if not _is_cover_art(s)), None)


def _is_cover_art(stream: Any) -> bool:
    """An MP3's or M4A's embedded picture shows up as a one-frame video stream: not a video."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


@dataclass(frozen=True)
class _FirstFrame:
    """What decoding the first picture showed: whether it decodes, and its rotation."""

    decoded: bool
    rotation: int
    error: str | None = None


def _first_frame_facts(container: Any) -> _FirstFrame | None:
    """Decode the main video's first frame once, for its rotation and for `_check_decodes`.

    The frame itself is not kept: holding a 4K frame through the tail check costs ~12 MB.
    """
    stream = _main_video(container)
    if stream is None:
        return None
    try:
        frame = _first_frame(container, stream)
    except av.error.FFmpegError as exc:
        _reraise_memory(exc)
        return _FirstFrame(False, 0, exc.strerror or str(exc))
    if frame is None:
        return _FirstFrame(False, 0)
    return _FirstFrame(True, round(frame.rotation) % 360)


def _first_frame(container: Any, stream: Any) -> Any:
    """The first decodable frame of `stream` from the start of the file, or None."""
    container.seek(0, any_frame=False, backward=True)
    for count, packet in enumerate(container.demux(stream)):
        if count >= FIRST_FRAME_PACKETS:
            break
        for frame in packet.decode():
            return frame
    return None


@dataclass(frozen=True)
class _Lengths:
    """Where each stream's packets end (seconds from the file's start), from demuxing only.

    `ends` holds the streams that have packets after the tail check's starting point;
    `target_keyframe` is the pts of the target stream's last keyframe, where the tail decode
    starts; `error` is a demuxing failure (a cut-off file).
    """

    declared: float
    ends: dict[int, float]
    target_keyframe: int | None
    error: str | None = None


def _measure_end(container: Any, target: Any) -> _Lengths:
    """Demux (without decoding) from the last declared second, or from the start when nothing
    is declared, to the end of the file: the packets' timestamps give the real length.

    This reads every packet past that point, so it is bounded by the file's bytes, and a file
    that declares one second but holds an hour is measured rather than believed.
    """
    declared = _declared(container, target)
    start = max(0.0, declared - END_CHECK_SECONDS)
    origin = (container.start_time or 0) / 1_000_000
    ends: dict[int, float] = {}
    keyframe = None
    try:
        _seek(container, target, start)
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base) - origin
            index = packet.stream_index
            ends[index] = max(ends.get(index, 0.0), end)
            if index == target.index and packet.is_keyframe:
                keyframe = packet.pts
    except av.error.FFmpegError as exc:
        _reraise_memory(exc)
        return _Lengths(declared, ends, keyframe, exc.strerror or str(exc))
    return _Lengths(declared, ends, keyframe)


def _declared(container: Any, stream: Any) -> float:
    if container.duration:
        return float(container.duration / 1_000_000)
    return _stream_seconds(stream) or 0.0


def _seek(container: Any, stream: Any, seconds: float) -> None:
    if stream.time_base is not None:
        container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
    else:
        container.seek(0, backward=True)


def _describe(container: Any, path: Path, size: int, first: _FirstFrame | None,
              lengths: _Lengths | None) -> MediaInfo:  # fmt: skip
    video = _main_video(container)
    audio = next(iter(container.streams.audio), None)
    declared = container.duration / 1_000_000 if container.duration else 0.0
    measured = max(lengths.ends.values(), default=0.0) if lengths else 0.0
    return MediaInfo(
        path=path,
        format=container.format.name,
        duration=_real(declared, measured) or 0.0,
        size=size,
        stream_count=len(container.streams),
        video=_video_info(video, first, lengths) if video is not None else None,
        audio=_audio_info(audio, lengths) if audio is not None else None,
    )


def _real(declared: float | None, measured: float | None) -> float | None:
    """The declared length, unless the packets run past it (or it is missing)."""
    if measured and (not declared or measured > declared + END_TOLERANCE_SECONDS):
        return measured
    return declared


def _stream_real(stream: Any, lengths: _Lengths | None) -> float | None:
    measured = lengths.ends.get(stream.index) if lengths else None
    return _real(_stream_seconds(stream), measured)


def _video_info(stream: Any, first: _FirstFrame | None, lengths: _Lengths | None) -> VideoInfo:
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
        rotation=first.rotation if first is not None else 0,
        sample_aspect_ratio=_fraction(cc.sample_aspect_ratio) or Fraction(1),
        color_transfer=TRANSFERS.get(cc.color_trc),
        color_primaries=PRIMARIES.get(cc.color_primaries),
        color_space=MATRICES.get(cc.colorspace),
        field_order=FIELD_ORDERS.get(cc.field_order),
        duration=_stream_real(stream, lengths),
        extradata_sha1=hashlib.sha1(cc.extradata or b"", usedforsecurity=False).hexdigest(),
    )


def _audio_info(stream: Any, lengths: _Lengths | None) -> AudioInfo:
    cc = stream.codec_context
    return AudioInfo(
        index=stream.index,
        codec=cc.codec.canonical_name,
        profile=cc.profile,
        sample_rate=cc.sample_rate,
        channels=cc.channels,
        layout=cc.layout.name,
        duration=_stream_real(stream, lengths),
        extradata_sha1=hashlib.sha1(cc.extradata or b"", usedforsecurity=False).hexdigest(),
    )


def _bit_depth(fmt: VideoFormat | None) -> int:
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


def _check_decodes(
    container: Any, stream: Any, first: _FirstFrame | None, lengths: _Lengths, source: str
) -> None:
    """The first frame and the tail must decode, and the packets must reach the declared end:
    a cut-off download fails one of them."""
    what = "picture" if stream.type == "video" else "sound"
    try:
        if stream.type == "video":
            assert first is not None, "a video target has first-frame facts"
            if first.error is not None:
                raise _Undecodable(first.error)
            first_decodes = first.decoded
        else:
            first_decodes = _first_frame(container, stream) is not None
        if lengths.error is not None:
            raise _Undecodable(lengths.error)
        decoded = _decode_tail(container, stream, lengths)
    except (av.error.FFmpegError, _Undecodable) as exc:
        _reraise_memory(exc)
        detail = exc.strerror if isinstance(exc, av.error.FFmpegError) else str(exc)
        raise InputError(
            source, f"is truncated or damaged: its {what} cannot be decoded ({detail or exc})"
        ) from None
    if not first_decodes:
        raise InputError(source, f"is damaged: no {what} could be decoded from its start")
    declared = lengths.declared
    ends_at = lengths.ends.get(stream.index, 0.0)
    if decoded == 0 or (declared and ends_at < declared - END_TOLERANCE_SECONDS):
        raise InputError(
            source, f"is truncated or damaged: its {what} stops at {ends_at:.1f} s of "
            f"{declared:.1f} s; the download or upload may have been cut off"
        )  # fmt: skip


def _tail_budget(stream: Any) -> int:
    cc = stream.codec_context
    pixels = cc.width * cc.height if stream.type == "video" and cc is not None else 0
    if not pixels:
        return TAIL_DECODE_PACKETS
    return max(MIN_TAIL_PACKETS, min(TAIL_DECODE_PACKETS, TAIL_DECODE_PIXELS // pixels))


class _Undecodable(PermanentError):
    """A decoding or demuxing failure found earlier, reported with the tail check's words
    (as an InputError: the file will not decode on another attempt either)."""


def _decode_tail(container: Any, stream: Any, lengths: _Lengths) -> int:
    """Decode a fixed budget of packets from the last keyframe: the frames decoded.

    Decoding from the last keyframe rather than the last declared second keeps the cost fixed
    when the declared length lies: the old way decoded the whole real length of such a file.
    """
    if lengths.target_keyframe is not None:
        container.seek(lengths.target_keyframe, stream=stream, backward=True)
    else:
        _seek(container, stream, max(0.0, lengths.declared - END_CHECK_SECONDS))
    decoded, budget = 0, _tail_budget(stream)
    for count, packet in enumerate(container.demux(stream)):
        if count >= budget:
            break
        decoded += len(packet.decode())
    if decoded == 0:
        decoded += len(stream.codec_context.decode(None))  # frames a decoder still holds
    return decoded


# ---- still images ------------------------------------------------------------------------------

# Picture packets decoded looking for the first frame: one, a few more cover odd files.
IMAGE_PACKETS = 4
# Pictures counted before the count stops: past this the number says nothing more.
MAX_COUNTED_PICTURES = 1000
ONE_PICTURE = "a still image must hold exactly one"


def _image_header(path: Path, source: str) -> ImageHeader | None:
    try:
        return read_header(path)
    except HeaderError as exc:
        raise InputError(source, f"is a damaged image: {exc}") from None


def _not_an_image(path: Path) -> str:
    """Why a file given as an image is not one, in the words `_reject_by_content` would use."""
    with path.open("rb") as f:
        head = f.read(4096)
    for magic, name in _IMAGE_MAGIC:
        if head.startswith(magic):
            return f"is {name}; an image must be a PNG, JPEG or WebP file"
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:256].lower()
    if lowered.startswith((b"<!doctype", b"<html", b"<")):
        return (
            "is not an image (looks like HTML); the URL may lead to a web page, a login or an "
            "error page instead of the image itself"
        )
    return "is not an image: an image must be a PNG, JPEG or WebP file"


def _probe_image(
    path: Path, source: str, size: int, header: ImageHeader, limits: ProbeLimits
) -> MediaInfo:
    """Bounded by bytes and by the header's pixel count first, then demuxed whole (packets
    only, so bounded by the bytes): every picture's header is sized and checked for an
    animation, the pictures are counted (one is allowed), and the first one is decoded (with
    `max_pixels` on the decoder too) to show that FFmpeg can read it."""
    if size > limits.max_image_bytes:
        raise InputError(
            source, f"is a {size / MIB:.1f} MB image; at most {limits.max_image_bytes // MIB} MB "
            "are allowed for one image"
        )  # fmt: skip
    if header.pixels > limits.max_pixels:
        _refuse_image_size(header.width, header.height, source, limits)
    options = {"protocol_whitelist": "file", "format_whitelist": ",".join(IMAGE_FORMATS)}
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture() as logs:
            with av.open(str(path.resolve()), mode="r", format=f"{header.format}_pipe",
                         container_options=options,
                         options=_decoder_options(limits)) as container:  # fmt: skip
                stream = container.streams.video[0]
                stream.codec_context.options = _decoder_options(limits)
                stream.codec_context.thread_count = 1
                frame, pictures = _read_pictures(container, stream, source, limits)
                info = _image_info(container, stream, frame, path, size)
    except av.error.FFmpegError as exc:
        _reraise_memory(exc)
        _check_refused_image_pixels(logs, source, limits)
        raise InputError(
            source, f"is a damaged image: it cannot be decoded ({exc.strerror or exc})"
        ) from None
    finally:
        av.logging.set_level(None)
    _check_one_picture(pictures, source)
    if frame is None:
        raise InputError(source, "is a damaged image: no picture could be decoded from it")
    if frame.width * frame.height > limits.max_pixels:
        _refuse_image_size(frame.width, frame.height, source, limits)
    return info


def _read_pictures(
    container: Any, stream: Any, source: str, limits: ProbeLimits
) -> tuple[Any, int]:
    """Demux the whole file, checking every picture's header, and decode the first picture
    only: its frame, and how many pictures the file holds (FFmpeg would decode each one).

    A packet that does not start like an image is no picture: bytes after a PNG's end, say,
    from which no decoder makes a picture.
    """
    frame, count = None, 0
    for packet in container.demux(stream):
        data = memoryview(packet)
        header = _picture_header(data, source)
        if header is None:
            continue
        count += 1
        _check_picture(header, data, count, source, limits)
        if frame is None and count <= IMAGE_PACKETS:
            frame = next(iter(packet.decode()), None)
        if count > MAX_COUNTED_PICTURES:
            break
    return frame, count


def _picture_header(data: memoryview, source: str) -> ImageHeader | None:
    try:
        return packet_header(data)
    except HeaderError as exc:
        raise InputError(source, f"is a damaged image: {exc}") from None


def _check_picture(
    header: ImageHeader, data: memoryview, nth: int, source: str, limits: ProbeLimits
) -> None:
    """Each picture within MAX_INPUT_PIXELS, and none an animation."""
    if header.pixels > limits.max_pixels:
        _refuse_image_size(header.width, header.height, source, limits, nth)
    moving = animation(header, data)
    if moving is not None:
        raise InputError(source, f"is {moving}; {ONE_PICTURE} picture")


def _check_one_picture(pictures: int, source: str) -> None:
    if pictures > MAX_COUNTED_PICTURES:
        held = f"more than {MAX_COUNTED_PICTURES} pictures"
    elif pictures > 1:
        held = f"{pictures} pictures"
    else:
        return
    raise InputError(
        source, f"holds {held} (an animation or several images one after another); {ONE_PICTURE}"
    )


def _image_info(container: Any, stream: Any, frame: Any, path: Path, size: int) -> MediaInfo:
    cc = stream.codec_context
    fmt = frame.format if frame is not None else None
    video = VideoInfo(
        index=stream.index,
        codec=cc.codec.canonical_name,
        profile=None,
        width=frame.width if frame is not None else 0,
        height=frame.height if frame is not None else 0,
        pix_fmt=fmt.name if fmt is not None else "unknown",
        bit_depth=_bit_depth(fmt),
        avg_frame_rate=None,
        r_frame_rate=None,
        time_base=_fraction(stream.time_base) or Fraction(1, 25),
        rotation=0,
        sample_aspect_ratio=Fraction(1),
        color_transfer=None,
        color_primaries=None,
        color_space=None,
        field_order=None,
        duration=None,
        extradata_sha1=hashlib.sha1(cc.extradata or b"", usedforsecurity=False).hexdigest(),
    )
    return MediaInfo(path=path, format=container.format.name, duration=0.0, size=size,
                     stream_count=len(container.streams), video=video, audio=None)  # fmt: skip


def _check_refused_image_pixels(logs: Iterable[Any], source: str, limits: ProbeLimits) -> None:
    for _level, _name, message in logs:
        found = _PIXEL_REFUSAL.search(message or "")
        if found:
            _refuse_image_size(int(found[1]), int(found[2]), source, limits)


def _refuse_image_size(
    width: int, height: int, source: str, limits: ProbeLimits, nth: int = 1
) -> None:
    """The size refusal; for a picture after the first (`nth`), the word that one is allowed."""
    what, advice = f"is a {width}x{height} image", "use a smaller image"
    if nth > 1:
        what, advice = f"its picture {nth} is {width}x{height}", f"{ONE_PICTURE} picture"
    raise InputError(
        source, f"{what} ({width * height / 1e6:.1f} megapixels), over the limit of "
        f"{limits.max_pixels / 1e6:.1f} megapixels (MAX_INPUT_PIXELS); {advice}"
    )  # fmt: skip
