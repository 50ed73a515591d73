"""What `assemble` is asked to build and what it reports back, as frozen values."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal, Protocol

from worker.media.confine import DEFAULT_MAX_PIXELS
from worker.media.picture.captions import CaptionStyle, Word
from worker.media.probe.info import MediaInfo

DEFAULT_DUCK_DB = 12.0  # how far `duck` lowers the music under speech
DEFAULT_LOUDNESS_LUFS = -16.0  # the finished mix's integrated loudness (EBU R128)

# The payload's vocabularies, defined here once; worker/payload/models.py imports them (the
# caption ones are in picture/captions.py). `output.fit`, `clips[i].motion`, a keyframe's
# `easing`, an overlay's `animation` and its `position`:
Fit = Literal["pad", "crop", "blur"]
Motion = Literal["none", "zoom_in", "zoom_out", "pan_left", "pan_right", "pan_up", "pan_down"]
Easing = Literal["linear", "ease_in", "ease_out", "ease_in_out"]
# an overlay's entrance (and, played in reverse, its exit)
Animation = Literal[
    "none", "fade", "slide_up", "slide_down", "slide_left", "slide_right", "pop", "zoom"
]
Position = Literal[
    "top_left", "top", "top_right", "left", "center", "right", "bottom_left", "bottom",
    "bottom_right",
]  # fmt: skip
# The join mode (plan.py decides it): the contract's copy, re-encode or compose.
Join = Literal["copy", "reencode", "compose"]
ClipKind = Literal["video", "image"]


@dataclass(frozen=True)
class LayerSpec:
    """`clips[i].audio[k]`: an extra sound mixed only inside its clip's window (seconds are
    on that clip's played window: `start` 0 is where the clip begins in the output)."""

    path: Path
    info: MediaInfo
    volume: float = 1.0
    loop: bool = False
    start: float = 0.0
    fade_in: float = 0.0
    fade_out: float = 0.0


@dataclass(frozen=True)
class TransitionSpec:
    """`clips[i].transition`: an xfade `type` into the next clip, overlapping `duration` s."""

    type: str
    duration: float


@dataclass(frozen=True)
class ClipSpec:
    """One downloaded, probed clip, with its optional trim (seconds) and voice-over.

    The fields after the first six (a still and its motion, the volume, layers, a transition,
    transcripts) default to a plain video clip, so a ClipSpec built with only the first six fields
    assembles exactly as such a clip does.
    `kind` "image": `path` is a still (PNG, JPEG, WebP) shown for `duration` s with `motion`
    (eased by `easing`).
    `transcript` is timed on the clip's source, `voice_transcript` on its voice-over; the
    assembly places both on the output timeline, through trims and transitions."""

    path: Path
    info: MediaInfo
    start: float | None = None
    end: float | None = None
    voice_path: Path | None = None
    voice_info: MediaInfo | None = None
    kind: ClipKind = "video"
    duration: float | None = None
    motion: Motion = "none"
    zoom: float = 0.15
    easing: Easing = "linear"
    volume: float = 1.0
    layers: tuple[LayerSpec, ...] = ()
    transition: TransitionSpec | None = None
    transcript: tuple[Word, ...] | None = None
    voice_transcript: tuple[Word, ...] | None = None


class Transcribed(Protocol):
    """A clip with its transcripts: a `ClipSpec`, or the payload's clip before it becomes one."""

    @property
    def transcript(self) -> tuple[Word, ...] | None: ...

    @property
    def voice_transcript(self) -> tuple[Word, ...] | None: ...


def any_transcript(clips: Iterable[Transcribed]) -> bool:
    """Whether any clip has a transcript of its own or of its voice-over, even an empty one.

    The contract's rule, written only here: any transcript present means captions (in the default
    style when the payload's `captions` does not give one). The pipeline, the plan and the
    assembly each ask this function.
    """
    return any(c.transcript is not None or c.voice_transcript is not None for c in clips)


@dataclass(frozen=True)
class CaptionFile:
    """The job's caption file (`captions.srt_url` or `vtt_url`), timed on the output timeline.
    Only the confined caption child reads it (picture/caption_child.py)."""

    path: Path
    kind: Literal["srt", "vtt"]
    source: str  # how errors name it: "captions.srt_url"


@dataclass(frozen=True)
class CaptionSpec:
    """Burned-in captions: `words` already on the output timeline (`captions.words`) or the
    cues of a caption `file`, joined by the assembly with every clip's placed transcripts;
    `vtt` asks for a WebVTT sidecar too."""

    style: CaptionStyle
    words: tuple[Word, ...] = ()
    vtt: bool = False
    file: CaptionFile | None = None


@dataclass(frozen=True)
class Keyframe:
    """`overlays[i].keyframes[k]`: the values it sets at `t` s into the overlay's window."""

    t: float
    x: float | None = None
    y: float | None = None
    scale: float | None = None
    opacity: float | None = None


@dataclass(frozen=True)
class MotionSpec:
    """Where an overlay sits and how it moves (picture/motion.py): `x`, `y` (its centre, fractions
    of the frame) override its position; the rest animate it over its window."""

    x: float | None = None
    y: float | None = None
    fade_in: float = 0.0
    fade_out: float = 0.0
    animation: Animation = "none"
    animation_duration: float = 0.4
    keyframes: tuple[Keyframe, ...] = ()
    easing: Easing = "linear"


@dataclass(frozen=True)
class ImageOverlaySpec:
    """`overlays[i]` with an image: sizes are fractions of the frame, times on the output."""

    path: Path
    info: MediaInfo
    position: Position = "top_right"
    width: float = 0.15
    opacity: float = 1.0
    margin: float = 0.03
    start: float = 0.0
    end: float | None = None
    motion: MotionSpec = MotionSpec()


@dataclass(frozen=True)
class TextOverlaySpec:
    """`overlays[i]` with text, shown literally (never interpreted by FFmpeg or libass)."""

    text: str
    position: Position = "center"
    size: float = 0.06
    color: str = "#FFFFFF"
    box: bool = False
    start: float = 0.0
    end: float | None = None
    font: str = "Noto Sans"  # a family of the worker's fonts (picture/fonts.py), as libass finds it
    motion: MotionSpec = MotionSpec()
    max_width: float | None = None  # the widest a line may be, a fraction of the frame's width


@dataclass(frozen=True)
class VideoOverlaySpec:
    """`overlays[i]` with a video (picture-in-picture, B-roll): played from `from_` s into it
    between `start` and `end` on the output, `width` of the frame wide, its corners rounded by
    `radius` (a fraction of the frame's width); its sound mixed at `volume` (0: silent);
    `loop` repeats it to fill its window (else it is gone when it ends)."""

    path: Path
    info: MediaInfo
    position: Position = "top_right"
    width: float = 0.3
    opacity: float = 1.0
    margin: float = 0.03
    start: float = 0.0
    end: float | None = None
    from_: float = 0.0
    volume: float = 0.0
    loop: bool = False
    radius: float = 0.0
    motion: MotionSpec = MotionSpec()


OverlaySpec = ImageOverlaySpec | TextOverlaySpec | VideoOverlaySpec
PictureOverlaySpec = ImageOverlaySpec | VideoOverlaySpec  # drawn from an input file


@dataclass(frozen=True)
class MusicSpec:
    """A background track under the whole video; `duck` lowers it by `duck_db` under clip
    audio and voice."""

    path: Path
    info: MediaInfo
    volume: float = 1.0
    duck: bool = False
    duck_db: float = DEFAULT_DUCK_DB


@dataclass(frozen=True)
class OutputSpec:
    """Size, frame rate and fit of the result; absent values follow the first clip.

    `max_duration` is the MAX_OUTPUT_SECONDS limit, checked before anything is encoded.
    `max_side` and `max_fps` are the payload's own limits on `output`, which the result keeps
    even when it follows the first clip: an input's size or rate is the uploader's to choose.
    `max_input_pixels` is MAX_INPUT_PIXELS, which the probe checked every input against and
    every FFmpeg decoder of an input gets as `-max_pixels`. `loudness` is the finished
    sound's integrated loudness in LUFS.
    """

    width: int | None = None
    height: int | None = None
    fps: float | Fraction | None = None
    fit: Fit = "pad"
    thumbnail: bool = False
    max_duration: float = 1800.0
    max_side: int = 4096
    max_fps: int = 120
    max_input_pixels: int = DEFAULT_MAX_PIXELS
    fade_in: float = 0.0
    fade_out: float = 0.0
    loudness: float = DEFAULT_LOUDNESS_LUFS


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
    captions_vtt: Path | None = None  # the WebVTT sidecar, when CaptionSpec.vtt asked for one


def transition_durations(clips: Sequence[ClipSpec]) -> tuple[float, ...]:
    """Each join's transition duration as asked, in seconds (0 at a cut): one entry per join.
    The frames it overlaps its clips by are plan.py's `overlap_frames` of it."""
    return tuple(c.transition.duration if c.transition else 0.0 for c in clips[:-1])
