"""From a checked payload and its downloaded, probed files to what `assemble` is asked to build.

This is where the payload's words become the assembly's specs (worker/media/specs.py), and
where a fact that only the files know is applied: whether a clip is a video or a still image
(decided by the probed file, never by the URL's suffix), and that a still needs `duration`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from worker.errors import InputError, PayloadError
from worker.media.confine import DEFAULT_MAX_PIXELS
from worker.media.picture.captions import CaptionStyle
from worker.media.picture.fonts import FontSet, installed
from worker.media.probe.info import MediaInfo
from worker.media.specs import (
    CaptionFile,
    CaptionSpec,
    ClipSpec,
    ImageOverlaySpec,
    Keyframe,
    LayerSpec,
    MotionSpec,
    MusicSpec,
    OutputSpec,
    OverlaySpec,
    TextOverlaySpec,
    TransitionSpec,
    VideoOverlaySpec,
    any_transcript,
)
from worker.payload import Clip, ImageOverlay, Payload, TextOverlay, VideoOverlay
from worker.pipeline.inputs import MUSIC, SRT, VTT, InputId

_IMAGE_NAMES = {"png_pipe": "a PNG", "jpeg_pipe": "a JPEG", "webp_pipe": "a WebP"}


@dataclass(frozen=True)
class Files:
    """What the job's inputs turned into: local paths, and probes of the media among them."""

    paths: Mapping[InputId, Path]
    infos: Mapping[InputId, MediaInfo]


@dataclass(frozen=True)
class AssemblySpecs:
    """Everything `assemble` is given for one job."""

    clips: tuple[ClipSpec, ...]
    music: MusicSpec | None
    output: OutputSpec
    captions: CaptionSpec | None = None
    overlays: tuple[OverlaySpec, ...] = ()


def assembly_specs(
    payload: Payload, files: Files, *, max_duration: float,
    max_input_pixels: int = DEFAULT_MAX_PIXELS, fonts: FontSet | None = None,
) -> AssemblySpecs:  # fmt: skip
    """The assembly's specs for `payload`, within the operator's MAX_OUTPUT_SECONDS
    (`max_duration`) and MAX_INPUT_PIXELS (`max_input_pixels`, for FFmpeg's decoders), each
    `font` as the family of `fonts` (default: those installed) it names."""
    fonts = fonts or installed()
    clips = tuple(_clip(n, clip, files) for n, clip in enumerate(payload.clips))
    return AssemblySpecs(
        clips=clips,
        music=_music(payload, files),
        output=_output(payload, max_duration, max_input_pixels),
        captions=_captions(payload, files, fonts),
        overlays=tuple(_overlays(payload, files, fonts)),
    )


def _family(name: str, where: str, fonts: FontSet) -> str:
    """The real family `font` names ("sans" is Noto Sans), as libass will look it up."""
    family = fonts.resolve(name)
    if family is None:  # parse_payload checked it against these fonts; a model built by hand
        raise PayloadError(where, fonts.unknown_font(name))
    return family


def _clip(n: int, clip: Clip, files: Files) -> ClipSpec:
    source = InputId.clip(n)
    info = files.infos[source]
    voice = InputId.voice(n)
    return ClipSpec(
        path=files.paths[source],
        info=info,
        start=clip.start or None,
        end=clip.end,
        voice_path=files.paths.get(voice),
        voice_info=files.infos.get(voice),
        kind="image" if info.is_image else "video",
        duration=_still_duration(n, clip, info),
        motion=clip.motion,
        zoom=clip.zoom,
        easing=clip.easing,
        volume=clip.volume,
        layers=tuple(_layers(n, clip, files)),
        transition=(
            TransitionSpec(clip.transition.type, clip.transition.duration)
            if clip.transition is not None
            else None
        ),
        transcript=clip.transcript,
        voice_transcript=clip.voice_transcript,
    )


def _still_duration(n: int, clip: Clip, info: MediaInfo) -> float | None:
    """A still is shown for `duration` seconds, which it must have; a video has its own
    length, so a `duration` given with one is left out (trims are `start` and `end`)."""
    if not info.is_image:
        return None
    if clip.duration is None:
        what = _IMAGE_NAMES.get(info.format, "an")
        raise InputError(
            f"clips[{n}]",
            f"is {what} image, not a video; a still image needs clips[{n}].duration, the "
            "seconds to show it",
        )
    return clip.duration


def _layers(n: int, clip: Clip, files: Files) -> list[LayerSpec]:
    layers = []
    for k, layer in enumerate(clip.audio):
        source = InputId.audio_layer(n, k)
        layers.append(
            LayerSpec(
                path=files.paths[source],
                info=files.infos[source],
                volume=layer.volume,
                loop=layer.loop,
                start=layer.start,
                fade_in=layer.fade_in,
                fade_out=layer.fade_out,
            )
        )
    return layers


def _music(payload: Payload, files: Files) -> MusicSpec | None:
    if payload.audio is None:
        return None
    return MusicSpec(
        path=files.paths[MUSIC],
        info=files.infos[MUSIC],
        volume=payload.audio.volume,
        duck=payload.audio.ducks,
        duck_db=payload.audio.duck_db,
    )


def _output(payload: Payload, max_duration: float, max_input_pixels: int) -> OutputSpec:
    out = payload.output
    return OutputSpec(
        width=out.width,
        height=out.height,
        fps=out.fps,
        fit=out.fit,
        thumbnail=out.thumbnail,
        max_duration=max_duration,
        max_input_pixels=max_input_pixels,
        fade_in=out.fade_in,
        fade_out=out.fade_out,
        loudness=out.loudness,
    )


def _captions(payload: Payload, files: Files, fonts: FontSet) -> CaptionSpec | None:
    """Captions when any source has words: the output timeline's own (`captions.words` or the
    caption file) and every clip's transcripts (placed by the assembly). The style is the
    payload's `captions`, or the defaults when only transcripts were given."""
    options = payload.captions
    file = _caption_file(files)
    timeline = options.words if options is not None else None
    if timeline is None and file is None and not any_transcript(payload.clips):
        return None
    style = options.caption_style() if options is not None else CaptionStyle(font="sans")
    return CaptionSpec(
        style=replace(style, font=_family(style.font, "payload.captions.font", fonts)),
        words=timeline or (),
        vtt=options.vtt if options is not None else False,
        file=file,
    )


def _caption_file(files: Files) -> CaptionFile | None:
    """The downloaded caption file, if the payload named one (read later, by the child)."""
    for source in (SRT, VTT):
        if source in files.paths:
            kind: Literal["srt", "vtt"] = "srt" if source == SRT else "vtt"
            return CaptionFile(files.paths[source], kind, source.name)
    return None


def _overlays(payload: Payload, files: Files, fonts: FontSet) -> list[OverlaySpec]:
    overlays: list[OverlaySpec] = []
    for n, overlay in enumerate(payload.overlays):
        if isinstance(overlay, ImageOverlay):
            source = InputId.overlay(n)
            overlays.append(
                ImageOverlaySpec(
                    path=files.paths[source],
                    info=files.infos[source],
                    position=overlay.position,
                    width=overlay.width,
                    opacity=overlay.opacity,
                    margin=overlay.margin,
                    start=overlay.start,
                    end=overlay.end,
                    motion=_motion(overlay),
                )
            )
        elif isinstance(overlay, VideoOverlay):
            overlays.append(_video_overlay(n, overlay, files))
        else:
            overlays.append(
                TextOverlaySpec(
                    text=overlay.text,
                    position=overlay.position,
                    size=overlay.size,
                    color=overlay.color,
                    box=overlay.box,
                    start=overlay.start,
                    end=overlay.end,
                    font=_family(overlay.font, f"payload.overlays[{n}].font", fonts),
                    motion=_motion(overlay),
                    max_width=overlay.max_width,
                )
            )
    return overlays


def _video_overlay(n: int, overlay: VideoOverlay, files: Files) -> VideoOverlaySpec:
    """A video overlay, which must start inside its video (a `from` past its end would show
    nothing at all)."""
    source = InputId.overlay_video(n)
    info = files.infos[source]
    if info.duration and overlay.from_ >= info.duration:
        raise PayloadError(
            f"payload.overlays[{n}].from",
            f"must be less than the video's length ({info.duration:.2f} s), "
            f"got {overlay.from_:g} s",
        )
    return VideoOverlaySpec(
        path=files.paths[source],
        info=info,
        position=overlay.position,
        width=overlay.width,
        opacity=overlay.opacity,
        margin=overlay.margin,
        start=overlay.start,
        end=overlay.end,
        from_=overlay.from_,
        volume=overlay.volume,
        loop=overlay.loop,
        radius=overlay.radius,
        motion=_motion(overlay),
    )


def _motion(overlay: ImageOverlay | TextOverlay | VideoOverlay) -> MotionSpec:
    """Where an overlay sits and how it moves, as the drawing takes it."""
    return MotionSpec(
        x=overlay.x,
        y=overlay.y,
        fade_in=overlay.fade_in,
        fade_out=overlay.fade_out,
        animation=overlay.animation,
        animation_duration=overlay.animation_duration,
        keyframes=tuple(
            Keyframe(k.t, x=k.x, y=k.y, scale=k.scale, opacity=k.opacity) for k in overlay.keyframes
        ),
        easing=overlay.easing,
    )
