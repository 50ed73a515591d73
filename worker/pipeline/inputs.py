"""A job's inputs by what they are: which clip, which role, and the name errors call them.

Every file a job downloads has an `InputId`: its role (a clip's picture, its voice-over, one
of its audio layers, the music, a caption file, an overlay image or video) and where it sits in
the payload. The id gives the name the contract uses in errors (`clips[2]`, `clips[2].voice_url`,
`clips[0].audio[1]`, `audio`, `captions.srt_url`, `overlays[0].image`, `overlays[1].video`), how
the probe must
check the file, and how many bytes it may have; the pipeline looks files up by id, never by
taking a name apart again.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from worker.media.picture.caption_child import MAX_CAPTION_FILE_BYTES
from worker.media.probe.info import Kind
from worker.payload import ImageOverlay, Payload, VideoOverlay

MIB = 1024 * 1024
# An overlay is a logo or a watermark: the probe's image limit, applied on the wire already.
MAX_OVERLAY_BYTES = 64 * MIB


class Role(enum.Enum):
    """What an input is for."""

    CLIP = "clip"  # clips[N].url: a video or a still image (the file decides)
    VOICE = "voice"  # clips[N].voice_url
    LAYER = "layer"  # clips[N].audio[K].url: ambient sound, an effect
    MUSIC = "music"  # audio.url
    SRT = "srt"  # captions.srt_url
    VTT = "vtt"  # captions.vtt_url
    OVERLAY = "overlay"  # overlays[N].image
    OVERLAY_VIDEO = "overlay_video"  # overlays[N].video: fetched, probed and bounded as a clip


# How the probe checks each role's file; caption files are text, read by the pipeline.
_PROBE: dict[Role, Kind | None] = {
    Role.CLIP: "visual",
    Role.VOICE: "audio",
    Role.LAYER: "audio",
    Role.MUSIC: "audio",
    Role.SRT: None,
    Role.VTT: None,
    Role.OVERLAY: "image",
    Role.OVERLAY_VIDEO: "clip",  # a video: a still image is refused, naming the input
}
_CAPS: dict[Role, int] = {
    Role.SRT: MAX_CAPTION_FILE_BYTES,
    Role.VTT: MAX_CAPTION_FILE_BYTES,
    Role.OVERLAY: MAX_OVERLAY_BYTES,
}


@dataclass(frozen=True)
class InputId:
    """One input's identity: its role, its clip or overlay (`index`) and its layer (`layer`)."""

    role: Role
    index: int | None = None
    layer: int | None = None

    @classmethod
    def clip(cls, n: int) -> InputId:
        return cls(Role.CLIP, n)

    @classmethod
    def voice(cls, n: int) -> InputId:
        return cls(Role.VOICE, n)

    @classmethod
    def audio_layer(cls, n: int, k: int) -> InputId:
        return cls(Role.LAYER, n, k)

    @classmethod
    def overlay(cls, n: int) -> InputId:
        return cls(Role.OVERLAY, n)

    @classmethod
    def overlay_video(cls, n: int) -> InputId:
        return cls(Role.OVERLAY_VIDEO, n)

    @property
    def name(self) -> str:
        """The input as errors name it, in the contract's words."""
        match self.role:
            case Role.CLIP:
                return f"clips[{self.index}]"
            case Role.VOICE:
                return f"clips[{self.index}].voice_url"
            case Role.LAYER:
                return f"clips[{self.index}].audio[{self.layer}]"
            case Role.MUSIC:
                return "audio"
            case Role.SRT:
                return "captions.srt_url"
            case Role.VTT:
                return "captions.vtt_url"
            case Role.OVERLAY:
                return f"overlays[{self.index}].image"
            case Role.OVERLAY_VIDEO:
                return f"overlays[{self.index}].video"

    @property
    def probe_kind(self) -> Kind | None:
        """What the probe must find in the file; None for a caption file (text, not media)."""
        return _PROBE[self.role]

    @property
    def max_bytes(self) -> int | None:
        """A tighter byte cap than MAX_INPUT_BYTES for small kinds of input, else None."""
        return _CAPS.get(self.role)

    def __str__(self) -> str:
        return self.name


MUSIC = InputId(Role.MUSIC)
SRT = InputId(Role.SRT)
VTT = InputId(Role.VTT)


@dataclass(frozen=True)
class Input:
    """An input to download: who it is and where it comes from."""

    id: InputId
    url: str


def job_inputs(payload: Payload) -> list[Input]:
    """Every input of the job, in playing order (each clip with its own sounds), then the
    music, the caption file and the overlays' images and videos."""
    return list(_inputs(payload))


def _inputs(payload: Payload) -> Iterator[Input]:
    for n, clip in enumerate(payload.clips):
        yield Input(InputId.clip(n), clip.url)
        if clip.voice_url is not None:
            yield Input(InputId.voice(n), clip.voice_url)
        for k, layer in enumerate(clip.audio):
            yield Input(InputId.audio_layer(n, k), layer.url)
    if payload.audio is not None:
        yield Input(MUSIC, payload.audio.url)
    captions = payload.captions
    if captions is not None and captions.srt_url is not None:
        yield Input(SRT, captions.srt_url)
    if captions is not None and captions.vtt_url is not None:
        yield Input(VTT, captions.vtt_url)
    for n, overlay in enumerate(payload.overlays):
        if isinstance(overlay, ImageOverlay):
            yield Input(InputId.overlay(n), overlay.image)
        elif isinstance(overlay, VideoOverlay):
            yield Input(InputId.overlay_video(n), overlay.video)
