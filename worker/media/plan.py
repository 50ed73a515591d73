"""Deciding how to build the video before FFmpeg runs: copy, re-encode or compose; size, rate,
lengths.

Stream copy is two orders of magnitude faster than re-encoding, but FFmpeg exits 0 on a
mismatched copy and writes a broken file (29.97 + 30 fps doubles the duration, a first clip
without audio drops all audio, different parameter sets corrupt the picture). So we copy only
when every property that matters is identical across clips and already what the contract asks
for (H.264 8-bit 4:2:0 + one AAC track), and nothing (trim, voice, music, resize) needs the
pixels or samples changed.

Compose (the contract's third join mode) is chosen when the picture needs more than each clip
normalized and joined end to end: a still image, a transition, captions, overlays or output
fades. Then the whole picture is made in one FFmpeg pass (picture/one_pass.py), and the timeline
shortens by every transition's overlap.

Over 300 lines on purpose: every decision made before FFmpeg runs (the way, the size, the
rate, each clip's window and the transitions' overlaps) feeds the one `Plan` built here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from worker.errors import PayloadError
from worker.media.probe.info import MediaInfo
from worker.media.specs import (
    DEFAULT_LOUDNESS_LUFS,
    CaptionSpec,
    ClipSpec,
    Join,
    MusicSpec,
    OutputSpec,
    OverlaySpec,
    any_transcript,
)

COPY_VIDEO_CODEC = "h264"
COPY_PIX_FMT = "yuv420p"
COPY_AUDIO_CODEC = "aac"
STILL_FPS = Fraction(30)  # the rate of a video made of stills only, unless `output.fps` says


@dataclass(frozen=True)
class Geometry:
    """The output picture: even width and height, constant frame rate."""

    width: int
    height: int
    fps: Fraction


@dataclass(frozen=True)
class ClipWindow:
    """The part of a clip that is used: from `start`, `frames` frames at the output rate."""

    start: float
    duration: float
    frames: int


@dataclass(frozen=True)
class Plan:
    """How to build the video; `copy_blockers` says why it cannot be a stream copy.

    `overlaps` holds, per join, the frames the two clips share in a transition (0 for a cut):
    clip `i` starts on the output at frame `starts[i]`, and the output has `frames` frames.
    """

    join: Join
    geometry: Geometry
    windows: tuple[ClipWindow, ...]
    duration: float
    copy_blockers: tuple[str, ...]
    overlaps: tuple[int, ...] = ()

    @property
    def starts(self) -> tuple[int, ...]:
        """The output frame at which each clip begins (a transition pulls the next one in)."""
        starts, at = [], 0
        for i, window in enumerate(self.windows):
            starts.append(at)
            at += window.frames - (self.overlaps[i] if i < len(self.overlaps) else 0)
        return tuple(starts)

    @property
    def frames(self) -> int:
        """The output's frame count: every window, less every transition's overlap."""
        return sum(w.frames for w in self.windows) - sum(self.overlaps)

    def seconds(self, frames: int) -> float:
        """A frame count (or frame number) at the output rate, in seconds."""
        return float(frames / self.geometry.fps)


def make_plan(
    clips: list[ClipSpec],
    audio: MusicSpec | None,
    output: OutputSpec,
    *,
    captions: CaptionSpec | None = None,
    overlays: Sequence[OverlaySpec] = (),
) -> Plan:
    """Plan the assembly, or raise `PayloadError` for a bad trim, image clip or transition, or
    an over-long result."""
    if not clips:
        raise PayloadError("payload.clips", "must list at least one clip")
    geometry = output_geometry(*_geometry_source(clips, output))
    windows = tuple(clip_window(i, clip, geometry.fps) for i, clip in enumerate(clips))
    overlaps = transition_overlaps(clips, windows, geometry.fps)
    reasons = compose_reasons(clips, output, captions, overlays)
    if reasons:  # the copy blockers do not matter (and an image has no copy key)
        length = Fraction(sum(w.frames for w in windows) - sum(overlaps)) / geometry.fps
        check_max_duration(length, output.max_duration)
        return Plan("compose", geometry, windows, float(length), tuple(reasons), overlaps)
    blockers = tuple(copy_blockers(clips, audio, output))
    if blockers:
        length = Fraction(sum(w.frames for w in windows)) / geometry.fps
        check_max_duration(length, output.max_duration)
        duration = sum(float(w.frames / geometry.fps) for w in windows)
    else:
        duration = sum(clip.info.duration for clip in clips)
        check_max_duration(duration, output.max_duration)
    join: Join = "reencode" if blockers else "copy"
    return Plan(join, geometry, windows, duration, blockers, (0,) * (len(clips) - 1))


def compose_reasons(
    clips: Sequence[ClipSpec],
    output: OutputSpec,
    captions: CaptionSpec | None,
    overlays: Sequence[OverlaySpec],
) -> list[str]:
    """Why the plan must take the compose join mode (the whole picture in one FFmpeg pass,
    picture/one_pass.py); empty means the copy or re-encode mode will do."""
    reasons = [f"clips[{i}] is an image" for i, clip in enumerate(clips) if clip.kind == "image"]
    reasons += [f"clips[{i}] has a transition" for i, c in enumerate(clips) if c.transition]
    if captions is not None or any_transcript(clips):
        reasons.append("captions")
    if overlays:
        reasons.append("overlays")
    if output.fade_in > 0 or output.fade_out > 0:
        reasons.append("output fades")
    return reasons


def _geometry_source(clips: Sequence[ClipSpec], output: OutputSpec) -> tuple[MediaInfo, OutputSpec]:
    """Whose size and rate the output follows when `output` leaves them out: the first video
    clip's, else the first image's size at STILL_FPS (a still has no frame rate of its own)."""
    video = next((c.info for c in clips if c.kind == "video"), None)
    if video is not None:
        return video, output
    return clips[0].info, output if output.fps else replace(output, fps=STILL_FPS)


def transition_overlaps(
    clips: Sequence[ClipSpec], windows: Sequence[ClipWindow], fps: Fraction
) -> tuple[int, ...]:
    """Frames each join's transition overlaps, checked: none on the last clip, and none longer
    than half of the shorter of its two clips (the next transition needs the other half)."""
    last = len(clips) - 1
    if clips[last].transition is not None:
        raise PayloadError(
            f"payload.clips[{last}].transition", "a transition on the last clip leads nowhere"
        )
    found = []
    for i, clip in enumerate(clips[:-1]):
        if clip.transition is None:
            found.append(0)
            continue
        field = f"payload.clips[{i}].transition.duration"
        if not clip.transition.duration > 0:
            raise PayloadError(field, "must be more than 0 s")
        shorter = min(windows[i].frames, windows[i + 1].frames)
        frames = overlap_frames(clip.transition.duration, fps)
        half = float(shorter / fps) / 2
        if clip.transition.duration > half + 1e-9 or frames * 2 > shorter:
            raise PayloadError(
                field,
                f"{clip.transition.duration:g} s is more than half of the shorter of clips "
                f"[{i}] and [{i + 1}] ({2 * half:.2f} s); use at most {half:.2f} s",
            )
        found.append(frames)
    return tuple(found)


def overlap_frames(seconds: float, fps: Fraction) -> int:
    """The frames a transition of `seconds` makes its two clips share: whole frames at the output
    rate, at least one (0 for none). The one count of an overlap: the plan's `overlaps`, and from
    them the picture's `xfade`, the captions' timeline, and the sound's crossfades (soundtrack.py
    `overlap_samples`) all come from it."""
    if seconds <= 0:
        return 0
    return max(1, frames_at(seconds, fps))


def check_max_duration(duration: float | Fraction, limit: float) -> None:
    """Refuse before encoding anything: a too-long job would only fail after minutes of work.

    `duration` may be exact (a Fraction of frames over the rate): compared before it is made a
    float, a length no float can hold (a broken header's) is refused rather than overflowing."""
    if duration > limit:
        shown = f"{float(duration):.1f}" if duration < 10**15 else "more than 10^15"
        raise PayloadError(
            "payload.clips",
            f"the video would be {shown} s long, over the limit of {limit:g} s "
            "(MAX_OUTPUT_SECONDS); use fewer or shorter clips",
        )


def frames_at(seconds: float, fps: Fraction) -> int:
    """`seconds` as a whole number of frames at `fps`, rounded to the nearest.

    Exact (a float times a Fraction would be a float): no finite length overflows, however long
    a probe says a file is, and the frame counts add up as whole numbers."""
    return round(Fraction(seconds) * fps)


def clip_window(index: int, clip: ClipSpec, fps: Fraction) -> ClipWindow:
    """Validate the trim against the clip's real length and count its frames at `fps`.

    A still image lasts its `duration` (required: an image has no length of its own)."""
    if clip.kind == "image":
        return _image_window(index, clip, fps)
    length = _clip_length(clip.info)
    start = clip.start or 0.0
    end = length if clip.end is None else min(clip.end, length)
    field = f"payload.clips[{index}]"
    if not start >= 0:  # written so that NaN is refused too
        raise PayloadError(f"{field}.start", "must not be negative")
    if not start < length:
        raise PayloadError(
            f"{field}.start", f"{start:g} s is at or past the end of the clip ({length:.2f} s)"
        )
    if not end > start:
        raise PayloadError(f"{field}.end", f"must be after start ({start:g} s)")
    frames = max(1, frames_at(end - start, fps))
    return ClipWindow(start=start, duration=end - start, frames=frames)


def _image_window(index: int, clip: ClipSpec, fps: Fraction) -> ClipWindow:
    if clip.duration is None:
        raise PayloadError(f"payload.clips[{index}].duration", "is required for an image")
    if not clip.duration > 0:
        raise PayloadError(f"payload.clips[{index}].duration", "must be more than 0 s")
    frames = max(1, frames_at(clip.duration, fps))
    return ClipWindow(start=0.0, duration=clip.duration, frames=frames)


def _clip_length(info: MediaInfo) -> float:
    """The picture's length: a longer audio track would only make a frozen last frame."""
    video = info.video
    if video is not None and video.duration:
        return min(video.duration, info.duration) if info.duration else video.duration
    return info.duration


def output_geometry(first: MediaInfo, output: OutputSpec) -> Geometry:
    """Output size and rate: as asked, else the first clip's (as displayed, after rotation),
    within the payload's limits either way (`max_side`, `max_fps`).

    Sizes are rounded down to even numbers: 4:2:0 chroma needs them, and x264 refuses odd ones.
    """
    assert first.video is not None, "probe guarantees a clip has video"
    src_w, src_h = first.video.display_size
    src_w = max(1, round(src_w * first.video.sample_aspect_ratio))
    src_h = max(1, src_h)
    if output.width and output.height:
        width, height = output.width, output.height
    elif output.width:
        width, height = output.width, round(output.width * src_h / src_w)
    elif output.height:
        width, height = round(output.height * src_w / src_h), output.height
    else:
        width, height = src_w, src_h
    width, height = fit_within(width, height, output.max_side)
    fps = to_fraction(output.fps) if output.fps else first.video.frame_rate
    fps = min(max(fps, Fraction(1)), Fraction(output.max_fps))
    return Geometry(_even(width), _even(height), fps)


def fit_within(width: int, height: int, side: int) -> tuple[int, int]:
    """Scale down (keeping the aspect ratio) so neither side is over `side`."""
    longest = max(width, height)
    if longest <= side:
        return width, height
    return max(1, round(width * side / longest)), max(1, round(height * side / longest))


def to_fraction(fps: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction; 29.97, 23.976 and 59.94 mean the NTSC x/1001 rates."""
    if isinstance(fps, Fraction):
        return fps
    ntsc = round(fps * 1.001)
    if abs(fps - round(fps)) > 0.001 and abs(fps * 1.001 - ntsc) < 0.002:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def _even(value: int) -> int:
    return max(2, value - value % 2)


def copy_blockers(clips: list[ClipSpec], audio: MusicSpec | None, output: OutputSpec) -> list[str]:
    """Every reason the clips cannot be joined by stream copy; empty means copy is safe."""
    reasons = [reason for i, clip in enumerate(clips) for reason in _edit_blockers(i, clip)]
    if audio is not None:
        reasons.append("background music")
    reasons += _output_blockers(clips[0].info, output)
    reasons += [reason for i, clip in enumerate(clips) for reason in _format_blockers(i, clip)]
    first = _copy_key(clips[0].info)
    for i, clip in enumerate(clips[1:], start=1):
        key = _copy_key(clip.info)
        reasons += [f"clips[{i}] differs in {name}" for name in key if key[name] != first[name]]
    return reasons


def _edit_blockers(index: int, clip: ClipSpec) -> list[str]:
    reasons = []
    if clip.start or clip.end is not None:
        reasons.append(f"clips[{index}] is trimmed")
    if clip.voice_path is not None:
        reasons.append(f"clips[{index}] has a voice-over")
    if clip.volume != 1.0:
        reasons.append(f"clips[{index}] has its volume changed")
    if clip.layers:
        reasons.append(f"clips[{index}] has audio layers")
    return reasons


def _output_blockers(first: MediaInfo, output: OutputSpec) -> list[str]:
    assert first.video is not None
    width, height = first.video.display_size
    reasons = []
    if (output.width and output.width != width) or (output.height and output.height != height):
        reasons.append("output size differs from the clips")
    if output.fps and to_fraction(output.fps) != first.video.frame_rate:
        reasons.append("output frame rate differs from the clips")
    if max(width, height) > output.max_side:
        reasons.append(f"the clips are larger than {output.max_side} px")
    if first.video.frame_rate > output.max_fps:
        reasons.append(f"the clips are faster than {output.max_fps} frames a second")
    if output.loudness != DEFAULT_LOUDNESS_LUFS:  # a copy keeps the clips' sound as it is
        reasons.append(f"a loudness target of {output.loudness:g} LUFS")
    return reasons


def _format_blockers(index: int, clip: ClipSpec) -> list[str]:
    """What keeps one clip from being copied as is into an H.264 + AAC MP4."""
    video, audio, info = clip.info.video, clip.info.audio, clip.info
    assert video is not None
    reasons = []
    if video.codec != COPY_VIDEO_CODEC or video.pix_fmt != COPY_PIX_FMT:
        reasons.append(f"clips[{index}] is {video.codec} {video.pix_fmt}, not h264 yuv420p")
    if video.is_hdr:
        reasons.append(f"clips[{index}] is HDR")
    if video.interlaced:
        reasons.append(f"clips[{index}] is interlaced (browsers show the combing)")
    if audio is None:
        reasons.append(f"clips[{index}] has no audio")
    elif audio.codec != COPY_AUDIO_CODEC:
        reasons.append(f"clips[{index}] audio is {audio.codec}, not aac")
    if info.stream_count != 2 or video.index != 0 or (audio is not None and audio.index != 1):
        reasons.append(f"clips[{index}] has a stream layout other than one video + one audio")
    return reasons


def _copy_key(info: MediaInfo) -> dict[str, object]:
    """The properties that must be identical across clips for the concat demuxer to copy."""
    video, audio = info.video, info.audio
    assert video is not None
    return {
        "video codec": (video.codec, video.profile),
        "size": (video.width, video.height, video.sample_aspect_ratio),
        "pixel format": video.pix_fmt,
        "time base": video.time_base,
        "frame rate": (video.avg_frame_rate, video.r_frame_rate),
        "rotation": video.rotation,
        "field order": video.field_order,
        "colour": (video.color_transfer, video.color_primaries, video.color_space),
        "H.264 parameter sets": video.extradata_sha1,
        "audio format": (audio.codec, audio.sample_rate, audio.layout) if audio else None,
        "audio parameters": audio.extradata_sha1 if audio else None,
    }
