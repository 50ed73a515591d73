"""What `assemble` is asked to build and what it reports back, as frozen values."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from worker.media.info import MediaInfo

Fit = Literal["pad", "crop"]
Join = Literal["copy", "reencode"]


@dataclass(frozen=True)
class ClipSpec:
    """One downloaded, probed clip, with its optional trim (seconds) and voice-over."""

    path: Path
    info: MediaInfo
    start: float | None = None
    end: float | None = None
    voice_path: Path | None = None
    voice_info: MediaInfo | None = None


@dataclass(frozen=True)
class MusicSpec:
    """A background track under the whole video; `duck` lowers it under clip audio and voice."""

    path: Path
    info: MediaInfo
    volume: float = 1.0
    duck: bool = False


@dataclass(frozen=True)
class OutputSpec:
    """Size, frame rate and fit of the result; absent values follow the first clip.

    `max_duration` is the MAX_OUTPUT_SECONDS limit, checked before anything is encoded.
    `max_side` and `max_fps` are the payload's own limits on `output`, which the result keeps
    even when it follows the first clip: an input's size or rate is the uploader's to choose.
    """

    width: int | None = None
    height: int | None = None
    fps: float | Fraction | None = None
    fit: Fit = "pad"
    thumbnail: bool = False
    max_duration: float = 1800.0
    max_side: int = 4096
    max_fps: int = 120


@dataclass(frozen=True)
class AssemblyResult:
    """Facts about the finished MP4, read back by probing it, plus how it was made."""

    output: Path
    thumbnail: Path | None
    bytes: int
    duration: float
    width: int
    height: int
    fps: float
    video_codec: str
    audio_codec: str
    join: Join
    timings: dict[str, float] = field(default_factory=dict)
