"""What a probe found in one file, as frozen values, and their JSON form across the process line.

Probing runs in a child process (`process.py` starts it, `child.py` runs in it) that parses
hostile files with FFmpeg. Its answer comes back as JSON, never as a pickle: a child taken over
through a decoder bug must not be able to run code in the worker by what it sends.
`info_from_json` therefore checks every field's type, and the few strings that end up inside
FFmpeg filter graphs (colour names, field order) must be names this module knows. This module
imports no FFmpeg binding, so the worker process can hold these values without loading PyAV.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from worker.media.confine import DEFAULT_MAX_PIXELS, MIB, ChildLimits

# What an input must be: a video ("clip"), sound ("audio"), a still ("image": PNG, JPEG or
# WebP), or either of the first and third ("visual": a clip's URL may be a video or a still,
# and the file decides which).
Kind = Literal["clip", "audio", "image", "visual"]
# PyAV's names for the still-image formats the probe accepts (one per format: FFmpeg's image
# pipe demuxers), which the assembly's FFmpeg inputs must allow for image clips and overlays.
IMAGE_FORMATS: tuple[str, ...] = ("png_pipe", "jpeg_pipe", "webp_pipe")


TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
             13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084",
             18: "arib-std-b67"}  # fmt: skip
PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020",
             11: "smpte431", 12: "smpte432"}  # fmt: skip
MATRICES = {0: "gbr", 1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc",
            10: "bt2020c"}  # fmt: skip
FIELD_ORDERS = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
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
    """One probed local file: the container, and its first video and audio streams.

    A still image is a MediaInfo too (`is_image`): its `video` is the picture (no frame rate,
    no duration), `audio` is None and `duration` is 0.

    `duration` is the real length: the declared one, or what the packets show when the file
    holds more than it declares or declares nothing.
    """

    path: Path
    format: str
    duration: float
    size: int
    stream_count: int
    video: VideoInfo | None
    audio: AudioInfo | None

    @property
    def is_image(self) -> bool:
        """A still image (PNG, JPEG, WebP): one picture, no length of its own (`duration` 0)."""
        return self.format in IMAGE_FORMATS


def info_to_json(info: MediaInfo) -> dict[str, Any]:
    """A JSON-ready dict: fractions as "num/den" strings, the path as text."""
    return asdict(info, dict_factory=lambda items: {k: _plain(v) for k, v in items})


def _plain(value: object) -> object:
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, Path):
        return str(value)
    return value


def info_from_json(data: object, path: Path) -> MediaInfo:
    """Rebuild a `MediaInfo` from the child's JSON, refusing anything out of shape.

    `path` is the file the worker asked about; the child's own word for it is ignored.
    Raises `ValueError` when a field is missing or has the wrong type or value.
    """
    obj = _mapping(data)
    video, audio = obj.get("video"), obj.get("audio")
    return MediaInfo(
        path=path,
        format=_text(obj.get("format")),
        duration=_seconds(obj.get("duration")),
        size=_count(obj.get("size")),
        stream_count=_count(obj.get("stream_count")),
        video=_video(video) if video is not None else None,
        audio=_audio(audio) if audio is not None else None,
    )


def _video(data: object) -> VideoInfo:
    obj = _mapping(data)
    return VideoInfo(
        index=_count(obj.get("index")),
        codec=_text(obj.get("codec")),
        profile=_optional(_text, obj.get("profile")),
        width=_count(obj.get("width")),
        height=_count(obj.get("height")),
        pix_fmt=_text(obj.get("pix_fmt")),
        bit_depth=_count(obj.get("bit_depth")),
        avg_frame_rate=_optional(_fraction, obj.get("avg_frame_rate")),
        r_frame_rate=_optional(_fraction, obj.get("r_frame_rate")),
        time_base=_fraction(obj.get("time_base")),
        rotation=_choice(obj.get("rotation"), {0, 90, 180, 270}),
        sample_aspect_ratio=_fraction(obj.get("sample_aspect_ratio")),
        color_transfer=_optional_choice(obj.get("color_transfer"), TRANSFERS.values()),
        color_primaries=_optional_choice(obj.get("color_primaries"), PRIMARIES.values()),
        color_space=_optional_choice(obj.get("color_space"), MATRICES.values()),
        field_order=_optional_choice(obj.get("field_order"), FIELD_ORDERS.values()),
        duration=_optional(_seconds, obj.get("duration")),
        extradata_sha1=_sha1(obj.get("extradata_sha1")),
    )


def _audio(data: object) -> AudioInfo:
    obj = _mapping(data)
    return AudioInfo(
        index=_count(obj.get("index")),
        codec=_text(obj.get("codec")),
        profile=_optional(_text, obj.get("profile")),
        sample_rate=_count(obj.get("sample_rate")),
        channels=_count(obj.get("channels")),
        layout=_text(obj.get("layout")),
        duration=_optional(_seconds, obj.get("duration")),
        extradata_sha1=_sha1(obj.get("extradata_sha1")),
    )


# Codec, profile, format and layout names: FFmpeg's are short and plain ("High 4:4:4
# Predictive", "5.1(side)", "mov,mp4,m4a,3gp,3g2,mj2").
_TEXT = re.compile(r"[\w .,:;()/+\-]{0,120}")
_SHA1 = re.compile(r"[0-9a-f]{40}")


def _mapping(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {type(value).__name__}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not _TEXT.fullmatch(value):
        raise ValueError(f"not a plain name: {value!r:.80}")
    return value


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError(f"not a whole number >= 0: {value!r:.80}")
    return value


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r:.80}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a length in seconds: {value!r:.80}")
    return float(value)


def _fraction(value: object) -> Fraction:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d{1,12}/\d{1,12}", value):
        raise ValueError(f"not a fraction: {value!r:.80}")
    try:
        return Fraction(value)
    except ZeroDivisionError:
        raise ValueError(f"not a fraction: {value!r:.80}") from None


def _sha1(value: object) -> str:
    if not isinstance(value, str) or not _SHA1.fullmatch(value):
        raise ValueError(f"not a SHA-1: {value!r:.80}")
    return value


def _choice(value: Any, allowed: Any) -> Any:
    if isinstance(value, bool) or value not in allowed:
        raise ValueError(f"not one of the known values: {value!r:.80}")
    return value


def _optional_choice(value: object, allowed: Any) -> str | None:
    return None if value is None else _choice(value, set(allowed))


def _optional(convert: Any, value: object) -> Any:
    return None if value is None else convert(value)


@dataclass(frozen=True)
class ProbeLimits:
    """What probing one input may cost; sent to the probe's child with each session.

    `max_pixels` (MAX_INPUT_PIXELS) and `max_streams` are checked from the headers inside the
    child, and so is `max_image_bytes`, the most a still image (a clip or an overlay) may weigh:
    a real photo at 8K is well under it, and a larger file is a cost, not a picture.
    `timeout` (PROBE_TIMEOUT, seconds per input, wall clock) and `memory_bytes`
    (PROBE_MEMORY_MB, the child's address space) are enforced around it, as `child`. Defined
    here, beside the other values both sides of the process line hold, so that examine.py (the
    child's work), child.py (the child's loop) and process.py (which starts the child) do not
    import each other.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_streams: int = 64
    max_image_bytes: int = 64 * MIB
    timeout: float = ChildLimits.timeout
    memory_bytes: int = ChildLimits.memory_bytes

    @property
    def child(self) -> ChildLimits:
        """The time and memory limits of the child that probes (and of the other children)."""
        return ChildLimits(timeout=self.timeout, memory_bytes=self.memory_bytes)
