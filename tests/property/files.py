"""Fabricated inputs: plausible probe results (`MediaInfo`) for a payload's inputs, without files.

Planning (worker/pipeline/assembly_specs.py `assembly_specs`, then worker/media/plan.py
`make_plan`) reads only what the probe reported, never the files, so a property test can run the
payload → specs → plan path for thousands of payloads with no FFmpeg at all. The values
stay within what the probe child's answer may hold (worker/media/probe/info.py `info_from_json`:
lengths finite and 0 or more, sizes whole, rates and aspect ratios fractions of up to 12 digits,
zero and negative included), and include the odd ones a user's file may well have: no frame
rate, a huge or a zero rate, a rotated or anamorphic picture, no audio, zero length, a stream
declaring another length than the file's.

`files_for(payload)` draws a `Files` for a payload: each clip a video or a still (the file
decides, as in the pipeline), each sound an audio file, each overlay image a still and each
overlay video a video; a caption
file is only a path (the caption child reads it, after planning). Reusable for any property
over planned payloads (e.g. a cost estimate).
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path
from typing import Literal

from hypothesis import strategies as st

from worker.media.probe.info import AudioInfo, MediaInfo, VideoInfo
from worker.payload import Payload
from worker.pipeline.assembly_specs import Files
from worker.pipeline.inputs import Input, InputId, Role, job_inputs

ROOT = Path("/nonexistent/property-inputs")  # never opened: planning reads only the infos
NO_EXTRADATA = hashlib.sha1(b"").hexdigest()


def video_info(
    path: Path,
    *,
    width: int = 320,
    height: int = 240,
    fps: Fraction | None = Fraction(30),
    duration: float = 2.0,
    audio: bool = True,
    rotation: int = 0,
    sample_aspect_ratio: Fraction = Fraction(1),
    stream_duration: float | Literal["same"] | None = "same",
) -> MediaInfo:
    """An H.264 MP4 as the probe reports it, with an AAC track unless `audio` is False.

    `duration` is the file's real length; the video stream declares `stream_duration` (None:
    nothing), the same unless given."""
    stream = duration if stream_duration == "same" else stream_duration
    video = VideoInfo(
        index=0, codec="h264", profile="High", width=width, height=height, pix_fmt="yuv420p",
        bit_depth=8, avg_frame_rate=fps, r_frame_rate=fps, time_base=Fraction(1, 15360),
        rotation=rotation, sample_aspect_ratio=sample_aspect_ratio, color_transfer=None,
        color_primaries=None, color_space=None, field_order="progressive", duration=stream,
        extradata_sha1=NO_EXTRADATA,
    )  # fmt: skip
    sound = _aac(duration, index=1) if audio else None
    streams = 2 if audio else 1
    return MediaInfo(path, "mov,mp4,m4a,3gp,3g2,mj2", duration, 1 << 20, streams, video, sound)


def audio_info(path: Path, *, duration: float = 2.0) -> MediaInfo:
    """A sound file (an AAC in MP4): no picture."""
    return MediaInfo(path, "mov,mp4,m4a,3gp,3g2,mj2", duration, 1 << 16, 1, None, _aac(duration))


def image_info(path: Path, *, width: int = 320, height: int = 240) -> MediaInfo:
    """A still (PNG) as the image probe reports it: one picture, no rate, no length, no sound."""
    video = VideoInfo(
        index=0, codec="png", profile=None, width=width, height=height, pix_fmt="rgb24",
        bit_depth=8, avg_frame_rate=None, r_frame_rate=None, time_base=Fraction(1, 25),
        rotation=0, sample_aspect_ratio=Fraction(1), color_transfer=None, color_primaries=None,
        color_space="gbr", field_order=None, duration=None, extradata_sha1=NO_EXTRADATA,
    )  # fmt: skip
    return MediaInfo(path, "png_pipe", 0.0, 1 << 12, 1, video, None)


def _aac(duration: float, index: int = 0) -> AudioInfo:
    return AudioInfo(
        index=index, codec="aac", profile="LC", sample_rate=48000, channels=2, layout="stereo",
        duration=duration, extradata_sha1=NO_EXTRADATA,
    )  # fmt: skip


# --- strategies: odd but possible probe results ------------------------------------------------

# Lengths a probe can report: zero, a frame, ordinary, and very long (a lying or endless file
# is measured by its packets, so its length is real but may be anything finite).
lengths = st.one_of(
    st.sampled_from([2.0, 10.0, 3600.0, 1.0, 1 / 30, 0.001, 0.0, 1e9, 1e300]),
    st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
)
sides = st.one_of(st.sampled_from([1, 2, 16, 320, 1080, 4096, 8192, 65535]), st.integers(1, 2**16))
# Rates as the probe's fractions allow (up to 12 digits each side), and none at all.
rates = st.one_of(
    st.none(),
    st.sampled_from([Fraction(30), Fraction(30000, 1001), Fraction(1, 10**12), Fraction(10**12),
                     Fraction(0), Fraction(-30)]),
    st.fractions(min_value=Fraction(1, 10**12), max_value=10**12, max_denominator=10**12),
)  # fmt: skip
aspect_ratios = st.sampled_from(
    [Fraction(1), Fraction(4, 3), Fraction(1, 100), Fraction(100), Fraction(0), Fraction(-1)]
)


@st.composite
def videos(draw: st.DrawFn, path: Path) -> MediaInfo:
    duration = draw(lengths)
    return video_info(
        path, width=draw(sides), height=draw(sides), fps=draw(rates), duration=duration,
        stream_duration=draw(st.one_of(st.just(duration), st.none(), lengths)),
        audio=draw(st.booleans()), rotation=draw(st.sampled_from([0, 90, 180, 270])),
        sample_aspect_ratio=draw(aspect_ratios),
    )  # fmt: skip


def images(path: Path) -> st.SearchStrategy[MediaInfo]:
    return st.builds(image_info, st.just(path), width=sides, height=sides)


def sounds(path: Path) -> st.SearchStrategy[MediaInfo]:
    return st.builds(audio_info, st.just(path), duration=lengths)


def info_for(source: InputId, path: Path, *, still: bool = False) -> st.SearchStrategy[MediaInfo]:
    """What the probe may report for this input, by its role (as `InputId.probe_kind` says).

    A clip is a video or a still (the file decides); `still` makes a still the likelier, for a
    clip whose payload gives a `duration` (one without is refused as a still, by name)."""
    if source.role is Role.CLIP:
        first, second = (images(path), videos(path)) if still else (videos(path), images(path))
        return st.integers(0, 3).flatmap(lambda n: first if n < 3 else second)
    if source.role is Role.OVERLAY:
        return images(path)
    if source.role is Role.OVERLAY_VIDEO:
        return videos(path)
    return sounds(path)


@st.composite
def files_for(draw: st.DrawFn, payload: Payload) -> Files:
    """A `Files` for every input of `payload`: fabricated paths, and drawn probe results for
    its media."""
    inputs = job_inputs(payload)
    paths = {i.id: _path(i) for i in inputs}
    stills = {InputId.clip(n) for n, clip in enumerate(payload.clips) if clip.duration is not None}
    media = [i for i in inputs if i.id.probe_kind is not None]
    infos = {i.id: draw(info_for(i.id, paths[i.id], still=i.id in stills)) for i in media}
    return Files(paths=paths, infos=infos)


def _path(item: Input) -> Path:
    return ROOT / item.id.name.replace("[", "_").replace("]", "").replace(".", "_")
