"""Still images as clips: one decoded picture, fitted once, repeated, and moved without jitter.

The picture is decoded and fitted (scaled, padded or cropped, converted to BT.709) once, then
the `loop` filter repeats that one frame for the clip's length: decoding and scaling a 12 MP
photo for every output frame would cost more than the encode.

Motion is done by `perspective` at the output size: each frame samples a rectangle of the
fitted picture (smaller than the frame: that is the zoom) with bilinear interpolation at
fractional coordinates. `zoompan` and `crop` place their window on whole pixels, so a slow zoom
or pan moves in visible one-pixel steps (the well-known zoompan jitter); here the window moves by
a fraction of a pixel each frame, so the motion is smooth at any speed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from worker.media.ffmpeg import input_args
from worker.media.filters import fit_steps, length_steps, normal_steps
from worker.media.info import MediaInfo, VideoInfo
from worker.media.plan import ClipWindow, Geometry
from worker.media.specs import ClipSpec, Fit

# The demuxer that reads each still's codec. It is named with `-f`: left to guess, FFmpeg takes
# some JPEGs for an `image2` sequence, which reads `%d` in a file name as a frame pattern.
IMAGE_DEMUXERS = {"png": "png_pipe", "mjpeg": "jpeg_pipe", "webp": "webp_pipe"}
IMAGE_FORMATS: tuple[str, ...] = tuple(IMAGE_DEMUXERS.values())


def image_input(path: Path, info: MediaInfo, *, max_pixels: int) -> list[str]:
    """`-i` arguments for one still (a clip or an overlay), through its own image demuxer.

    The probe found one picture within `max_pixels` (MAX_INPUT_PIXELS); the decoder gets that
    limit as a second line, and one thread: each frame thread holds a decoded picture, and
    FFmpeg gives an image decoder several by default. Both options bind per input."""
    codec = info.video.codec if info.video is not None else ""
    forced = ["-f", IMAGE_DEMUXERS[codec]] if codec in IMAGE_DEMUXERS else []
    return input_args(path, formats=IMAGE_FORMATS, before=["-threads", "1", *forced],
                      max_pixels=max_pixels)  # fmt: skip


def image_steps(
    clip: ClipSpec, window: ClipWindow, geometry: Geometry, fit: Fit, *, skip: int = 0,
    total: int | None = None, tag: str = "",
) -> list[str]:  # fmt: skip
    """The filters that turn a still's one frame into `window.frames` frames of the clip.

    `window` may be a part of the clip (a long timeline is made in pieces): it starts `skip`
    frames into a clip of `total` frames, and the motion carries on from there. The blurred fill
    (`fit` "blur") is made once too, on the one fitted frame, and moves with the picture; `tag`
    names its pads (unique per clip in a graph)."""
    video = clip.info.video
    assert video is not None, "an image clip is probed as one picture"
    fps = geometry.fps
    return [
        *fit_steps(_as_decoded(video), geometry, fit, tag),
        "format=yuv420p",  # converted once, here (an `fps` before `loop` would drop the frame)
        # one fitted frame, repeated: timestamps are then simply the frame numbers
        f"loop=loop={window.frames - 1}:size=1:start=0",
        f"settb={fps.denominator}/{fps.numerator}",
        "setpts=N",
        *motion_steps(clip, total or window.frames, skip),
        *normal_steps(geometry),
        *length_steps(window.frames),
    ]


def _as_decoded(video: VideoInfo) -> VideoInfo:
    """JPEG (JFIF) is BT.601 full range even when the file does not say so."""
    if video.codec == "mjpeg" and video.color_space is None:
        return replace(video, color_space="bt470bg")
    return video


def motion_steps(clip: ClipSpec, frames: int, skip: int = 0) -> list[str]:
    """`perspective` sampling a moving rectangle of the picture onto the whole frame.

    `zoom_in` shows 1/(1 + zoom·p) of the picture at progress p (0 → 1 over the clip), so the
    picture scales from 1 to 1 + zoom; `zoom_out` the other way. A pan shows the picture at
    1 + zoom and travels its window across the spare `zoom` of the frame: `pan_left` looks
    further left as it goes (the picture slides right), `pan_right`, `pan_up`, `pan_down` alike.
    The frames given start `skip` frames into the clip's `frames`.
    """
    if clip.motion == "none" or clip.zoom <= 0 or frames < 2:
        return []
    progress = f"((in+{skip})/{frames - 1})"
    z = f"{clip.zoom:.6f}"
    scale = {
        "zoom_in": f"(1+{z}*{progress})",
        "zoom_out": f"(1+{z}*(1-{progress}))",
    }.get(clip.motion, f"(1+{z})")
    across, down = {
        "pan_left": (f"(1-{progress})", "0.5"),
        "pan_right": (progress, "0.5"),
        "pan_up": ("0.5", f"(1-{progress})"),
        "pan_down": ("0.5", progress),
    }.get(clip.motion, ("0.5", "0.5"))
    left, top = f"(W-W/{scale})*{across}", f"(H-H/{scale})*{down}"
    right, bottom = f"{left}+W/{scale}", f"{top}+H/{scale}"
    corners = {"x0": left, "y0": top, "x1": right, "y1": top,
               "x2": left, "y2": bottom, "x3": right, "y3": bottom}  # fmt: skip
    options = ":".join(f"{name}='{expr}'" for name, expr in corners.items())
    return [f"perspective={options}:interpolation=linear:sense=source:eval=frame"]
