"""FFmpeg command lines that normalize one clip's picture into the shared intermediate format.

Every picture intermediate is identical in everything the concat demuxer cares about: H.264
High 8-bit yuv420p BT.709 at the output size and constant frame rate with one fixed set of x264
settings (so one set of parameter sets). The sound is prepared apart, by sound/soundtrack.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from worker.media.ffmpeg import input_args
from worker.media.plan import ClipWindow, Geometry
from worker.media.probe.info import MediaInfo, VideoInfo
from worker.media.specs import ClipSpec, Fit

X264_PRESET = "veryfast"
X264_CRF = 20


@dataclass(frozen=True)
class ClipJob:
    """One clip's normalization: the FFmpeg arguments and the seconds of output they make."""

    args: list[str]
    output: Path
    duration: float


def video_job(
    clip: ClipSpec, window: ClipWindow, geometry: Geometry, fit: Fit, output: Path, threads: int,
    *, max_pixels: int,
) -> ClipJob:  # fmt: skip
    """The FFmpeg arguments that turn `clip`'s picture (trimmed to `window`) into an intermediate,
    its decoder refusing pictures over `max_pixels` (MAX_INPUT_PIXELS).

    The trim is done by input seeking (`-ss`/`-t` before `-i`), which is frame-accurate when
    transcoding; sound/soundtrack.py cuts the sound with the same window.
    """
    inputs = input_args(clip.path, before=["-threads", str(threads), *_trim(clip, window)],
                        max_pixels=max_pixels)  # fmt: skip
    args = [
        *inputs,
        "-filter_complex", video_chain(clip.info, geometry, window.frames, fit),
        "-filter_complex_threads", str(threads),
        "-map", "[v]", *x264_args(geometry, threads),
        "-map_metadata", "-1", "-map_chapters", "-1",
        str(output),
    ]  # fmt: skip
    return ClipJob(args=args, output=output, duration=float(window.frames / geometry.fps))


def _trim(clip: ClipSpec, window: ClipWindow) -> list[str]:
    if not _is_trimmed(clip, window):
        return []
    return ["-ss", f"{window.start:.6f}", "-t", f"{window.duration:.6f}"]


def _is_trimmed(clip: ClipSpec, window: ClipWindow) -> bool:
    return bool(window.start) or clip.end is not None


def x264_args(geometry: Geometry, threads: int) -> list[str]:
    """One fixed x264 setup for every intermediate, so they share SPS/PPS and can be copied.

    Keyframes every 2 s keep seeking in a browser quick. (Colour tags come from the frames,
    set by `video_chain`: FFmpeg ignores `-color_trc` and friends when frames carry their own.)
    """
    gop = max(1, round(2 * geometry.fps))
    return [
        "-c:v", "libx264", "-preset", X264_PRESET, "-crf", str(X264_CRF),
        "-profile:v", "high", "-pix_fmt", "yuv420p", "-threads", str(threads),
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
    ]  # fmt: skip


def video_chain(info: MediaInfo, geometry: Geometry, frames: int, fit: Fit) -> str:
    """`[0:v]` → `[v]`: 8-bit BT.709, fitted to the output size, constant rate, exact length.

    FFmpeg applies the rotation itself (autorotate is on by default), before our filters, so
    the chain sees the picture upright. `tpad` + `trim` make exactly `frames` frames even when
    the stream ends a little early, so video and audio stay the same length.
    """
    return "[0:v]" + ",".join(video_steps(info, geometry, frames, fit)) + "[v]"


def video_steps(
    info: MediaInfo, geometry: Geometry, frames: int, fit: Fit, tag: str = ""
) -> list[str]:
    """The filters of `video_chain`, for a graph that has more than one clip in it (`tag`, unique
    per clip, names the pads of any branch the fit makes)."""
    video = info.video
    assert video is not None
    fitted = fit_steps(video, geometry, fit, tag)
    steps = [*_deinterlace_steps(video), *_colour_steps(video), *fitted]
    return [*steps, *normal_steps(geometry), *length_steps(frames)]


def normal_steps(geometry: Geometry) -> list[str]:
    """Square pixels at the output rate, tagged with the one colour description we write."""
    return [
        "setsar=1",
        f"fps={geometry.fps.numerator}/{geometry.fps.denominator}",
        "format=yuv420p",
        # one colour description for every intermediate, so all share one SPS
        "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv",
    ]


def length_steps(frames: int) -> list[str]:
    """Exactly `frames` frames: the last one repeated if the stream ends early, then cut."""
    return ["tpad=stop_mode=clone:stop=-1", f"trim=end_frame={frames}"]


def _deinterlace_steps(video: VideoInfo) -> list[str]:
    """Interlaced input is deinterlaced first, before any scaling mixes its two fields: bwdif
    (the better of FFmpeg's two CPU deinterlacers), one frame out per frame in, only on frames
    flagged interlaced."""
    if not video.interlaced:
        return []
    return ["bwdif=mode=send_frame:parity=auto:deint=interlaced"]


def _colour_steps(video: VideoInfo) -> list[str]:
    """Bring any input to 8-bit BT.709: tone-map PQ/HLG with zimg, dither other >8-bit input.

    The zscale chain follows FFmpeg's `tonemap` documentation: linearize, convert primaries in
    float RGB, tone-map (hable), then back to BT.709 limited-range YUV.
    """
    if video.is_hdr:
        tin = video.color_transfer
        pin = video.color_primaries or "bt2020"
        min_ = video.color_space or "bt2020nc"
        return [
            f"zscale=tin={tin}:pin={pin}:min={min_}:t=linear:npl=100",
            "format=gbrpf32le",
            "zscale=p=bt709",
            "tonemap=tonemap=hable:desat=0",
            "zscale=t=bt709:m=bt709:r=tv",
            "format=yuv420p",
        ]
    if video.bit_depth > 8 or video.pix_fmt != "yuv420p":
        return ["format=yuv420p"]
    return []


# Input matrix names (probe/examine.py's) as the scale filter's in_color_matrix takes them.
_SWS_MATRIX = {
    "bt709": "bt709",
    "smpte170m": "smpte170m",
    "bt470bg": "bt470",
    "smpte240m": "smpte240m",
    "bt2020nc": "bt2020",
}


def _matrix_options(video: VideoInfo) -> str:
    """The fitting scale's colour options: convert the input's YUV matrix and range to BT.709
    limited range, so what the output's BT.709 tags say is true. (Relabelling alone shifts a
    BT.601 clip's colours; pure red came out as (255, 23, 0), and full-range input came out
    washed.) An untagged input is taken as BT.709, the usual meaning for video from the web;
    the range comes from the frames (yuvj formats are full range). After HDR tone mapping the
    frames are BT.709 already."""
    if video.is_hdr:
        matrix = "auto"
    else:
        matrix = _SWS_MATRIX.get(video.color_space or "", "bt709")
    return f"in_color_matrix={matrix}:out_color_matrix=bt709:out_range=tv"


def fit_steps(video: VideoInfo, geometry: Geometry, fit: Fit, tag: str = "") -> list[str]:
    """Scale to cover (crop), fit inside (pad), or fit inside over a blurred fill (blur) the
    output size, keeping the aspect ratio. `tag` makes the blur's pad labels unique in a graph
    of several clips (one_pass.py passes the clip's index)."""
    w, h = geometry.width, geometry.height
    colour = _matrix_options(video)
    steps = []
    if video.sample_aspect_ratio != 1:
        steps.append("scale=trunc(iw*sar/2)*2:ih")  # square pixels first
    if fit == "crop":
        return [
            *steps,
            f"scale={w}:{h}:force_original_aspect_ratio=increase:{colour}",
            f"crop={w}:{h}",
        ]
    steps.append(
        f"scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:{colour}"
    )
    if fit == "blur" and leaves_bands(video, geometry):
        return [*steps, "format=yuv420p", blur_fill(geometry, tag)]
    return [*steps, f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black"]


# The blurred fill is made at 1/BLUR_SHRINK of the frame's size: blurring there costs 1/64 of
# blurring the frame, and a blur hides the detail a full-size copy would have kept anyway.
BLUR_SHRINK = 8
BLUR_RADIUS = 0.1  # of the small copy's shorter side (boxblur, applied twice: near Gaussian)
BLUR_DARKEN = 0.55  # the fill's brightness, as a factor on R, G and B


def blur_fill(geometry: Geometry, tag: str) -> str:
    """Graph steps from the fitted picture to the frame: the picture, centred over a blurred,
    darkened copy of itself that covers the frame.

    The copy is the fitted picture's centre at the frame's aspect ratio, made small
    (BLUR_SHRINK), blurred, darkened and scaled up to the frame; the picture goes over it by
    `overlay`, which places it where `pad` would (both round the corner down to even pixels), so
    the picture is the same as `pad`'s. It all stays in 8-bit yuv420p, the fitted picture's
    format. The darkening multiplies Y−16 and the chroma's distance from 128 by BLUR_DARKEN,
    which multiplies R, G and B alike (limited-range BT.709 is linear in them).
    """
    w, h = geometry.width, geometry.height
    small_w, small_h = _small(w), _small(h)
    luma = max(1, round(min(small_w, small_h) * BLUR_RADIUS))
    chroma = max(1, luma // 2)  # the chroma planes are half as large
    f = f"{BLUR_DARKEN:g}"
    picture, fill, back = f"[fit{tag}p]", f"[fit{tag}f]", f"[fit{tag}b]"
    return (
        f"split{picture}{fill};"
        f"{fill}crop='min(iw,ih*{w}/{h})':'min(ih,iw*{h}/{w})',"
        f"scale={small_w}:{small_h},"
        f"boxblur=luma_radius={luma}:luma_power=2:chroma_radius={chroma}:chroma_power=2,"
        f"lutyuv=y=16+(val-16)*{f}:u=128+(val-128)*{f}:v=128+(val-128)*{f},"
        f"scale={w}:{h}{back};"
        f"{back}{picture}overlay=x=(W-w)/2:y=(H-h)/2:format=yuv420"
    )


def _small(side: int) -> int:
    """A side of the blur's small copy: even, and at least 8 (boxblur's radius must fit in the
    chroma planes, half as large)."""
    return max(8, 2 * round(side / BLUR_SHRINK / 2))


def leaves_bands(video: VideoInfo, geometry: Geometry) -> bool:
    """Whether fitting inside leaves bands to fill: the picture's aspect ratio differs from the
    frame's by more than the scale's rounding to even sides. (Wrong either way only at that
    rounding's edge: a two-pixel band of black, or a blur that shows nowhere.)"""
    width, height = video.display_size
    sar = video.sample_aspect_ratio
    if video.rotation in (90, 270) and sar:
        sar = 1 / sar  # the rotation turns the pixels too
    if sar != 1:
        width = int(width * sar / 2) * 2
    if not width or not height:
        return False
    w, h = geometry.width, geometry.height
    if width * h >= height * w:  # as wide as the frame or wider: bands above and below
        return 2 * _round_half_up(Fraction(w * height, width * 2)) < h
    return 2 * _round_half_up(Fraction(h * width, height * 2)) < w


def _round_half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2))
