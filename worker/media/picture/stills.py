"""Still images as clips: one decoded picture, fitted once, repeated, and moved without jitter.

The picture is decoded and fitted (scaled, padded or cropped, converted to BT.709) once, then
the `loop` filter repeats that one frame for the clip's length: decoding and scaling a 12 MP
photo for every output frame would cost more than the encode.

A still that moves is fitted (with Lanczos) to a canvas 1 + `zoom` times the frame on each
side, not to the frame: the frame shows at most 1/(1 + zoom) of the picture's width, so on that
canvas every frame samples at least one canvas pixel per output pixel, and a zoom or a pan never
enlarges pixels that were first shrunk to the frame. (Fitted to the frame and then enlarged by
1.3, a zoom's last frame kept a fifth to a third of the sharpness of a Lanczos render of the
same view from the source; from the canvas it keeps all of it: tests/media/test_compose.py.)
The canvas is a fixed factor of the frame, whatever the size of the user's picture, at most
MAX_CANVAS on each side: no more than 2.25 times the frame's pixels are sampled per frame.

Motion is done by `perspective`, which samples a rectangle of the canvas with bilinear
interpolation at fractional coordinates and writes it to the top left of its output (which is
the canvas's size), cropped to the frame after. `zoompan` and `crop` place their window on whole
pixels, so a slow zoom or pan moves in visible one-pixel steps (the well-known zoompan jitter);
here the window moves by a fraction of a pixel each frame, so the motion is smooth at any speed.
(`interpolation=cubic` is sharper between the canvas's pixels, but cost 2.4 times as much CPU as
the whole linear motion: more than the compose join mode's time budget allows.)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from worker.media.ffmpeg import input_args
from worker.media.picture.filters import fit_steps, length_steps, normal_steps
from worker.media.picture.motion import Expr, ease
from worker.media.plan import ClipWindow, Geometry
from worker.media.probe.info import MediaInfo, VideoInfo
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
    fps, frames = geometry.fps, total or window.frames
    canvas = canvas_size(clip, geometry, frames)
    return [
        *_lanczos(fit_steps(_as_decoded(video), canvas, fit, tag)),
        "format=yuv420p",  # converted once, here (an `fps` before `loop` would drop the frame)
        # one fitted frame, repeated: timestamps are then simply the frame numbers
        f"loop=loop={window.frames - 1}:size=1:start=0",
        f"settb={fps.denominator}/{fps.numerator}",
        "setpts=N",
        *motion_steps(clip, frames, skip, frame=geometry, canvas=canvas),
        *normal_steps(geometry),
        *length_steps(window.frames),
    ]


def _as_decoded(video: VideoInfo) -> VideoInfo:
    """JPEG (JFIF) is BT.601 full range even when the file does not say so."""
    if video.codec == "mjpeg" and video.color_space is None:
        return replace(video, color_space="bt470bg")
    return video


def _lanczos(steps: list[str]) -> list[str]:
    """The fit's scaling done once per still, so with the sharper of libswscale's filters."""
    return [f"{step}:flags=lanczos" if step.startswith("scale=") else step for step in steps]


def moves(clip: ClipSpec, frames: int) -> bool:
    return clip.motion != "none" and clip.zoom > 0 and frames >= 2


# The most a moving still's canvas is grown, each side: its cost bound (2.25 times the frame's
# pixels sampled per frame), and its aliasing bound: where the whole canvas is in view (a
# zoom_in's first frame), bilinear taps fall `grow` canvas pixels apart, and at 2 (zoom 1) the
# fine detail of a picture aliased (a Laplacian 1.9 to 2.3 times a Lanczos render's; 1.1 at 1.5).
MAX_CANVAS = 1.5


def canvas_size(clip: ClipSpec, geometry: Geometry, frames: int) -> Geometry:
    """What a still is fitted to: the frame, or for a still that moves the frame grown by
    1 + `zoom` (at most MAX_CANVAS) on each side (even sides, for 4:2:0), so the view has no
    fewer pixels than the frame (beyond a zoom of 0.5, 1.5/(1 + zoom) of them)."""
    if not moves(clip, frames):
        return geometry
    grow = min(1 + clip.zoom, MAX_CANVAS)
    return replace(geometry, width=_even(geometry.width * grow),
                   height=_even(geometry.height * grow))  # fmt: skip


def _even(size: float) -> int:
    return 2 * round(size / 2)


def motion_steps(
    clip: ClipSpec, frames: int, skip: int = 0, *, frame: Geometry, canvas: Geometry
) -> list[str]:
    """`perspective` sampling a moving rectangle of the canvas into a `frame`-sized corner.

    `zoom_in` shows 1/(1 + zoom·p) of the picture at progress p (0 → 1 over the clip, eased by
    `easing`), so the picture scales from 1 to 1 + zoom; `zoom_out` the other way. A pan shows
    the picture at 1 + zoom and travels its window across the spare `zoom` of the frame:
    `pan_left` looks further left as it goes (the picture slides right), `pan_right`, `pan_up`,
    `pan_down` alike. The frames given start `skip` frames into the clip's `frames`.
    (`perspective` counts its frames, `in`, from 1.)
    """
    if not moves(clip, frames):
        return []
    # the progress, eased by the overlays' own curves (motion.py `ease`)
    progress = str(ease(clip.easing, Expr(f"((in-1+{skip})/{frames - 1})")))
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
    # the view is W/scale of the canvas's W; the output's W (the canvas's) is `wide` views
    wide, tall = f"({canvas.width}/{frame.width})", f"({canvas.height}/{frame.height})"
    left, top = f"(W-W/{scale})*{across}", f"(H-H/{scale})*{down}"
    right, bottom = f"{left}+{wide}*W/{scale}", f"{top}+{tall}*H/{scale}"
    corners = {"x0": left, "y0": top, "x1": right, "y1": top,
               "x2": left, "y2": bottom, "x3": right, "y3": bottom}  # fmt: skip
    options = ":".join(f"{name}='{expr}'" for name, expr in corners.items())
    return [
        f"perspective={options}:interpolation=linear:sense=source:eval=frame",
        f"crop={frame.width}:{frame.height}:0:0",
    ]
