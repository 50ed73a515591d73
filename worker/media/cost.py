"""A job's cost, known from its plan before the first encode, and the bounds it must stay in.

ImageMagick refuses work by a policy of width, height, area and time before it decodes; this is
the same idea for a video job. Everything a payload can ask for turns into frames of output
and things drawn on each frame (the clips' pictures, two during a transition; the caption
block; the overlays, a video overlay one more picture decoded per frame), and into pixels
decoded per input. `estimate` reads those from the plan,
the probed inputs and the caption child's counts; `check` refuses a job past its bounds at once,
at attempt 1, naming the field, before FFmpeg spends anything:

    work = frames × things drawn per frame  ≤  MAX_OUTPUT_SECONDS × fps × MAX_LAYERS

so no payload field can make the work grow faster than the output's frames times the number of
things drawn on them (the contract's bound). The caption child already guarantees one caption
block at a time (picture/captions.py `one_at_a_time`); the check holds the guarantee, so a
regression fails a job with a sentence instead of costing libass seconds per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from worker.errors import InputError, PayloadError
from worker.media.plan import Plan
from worker.media.probe.info import MediaInfo
from worker.media.specs import ClipSpec, ImageOverlaySpec, OverlaySpec, VideoOverlaySpec

# caption events on screen at once: one caption block, drawn as two events in `pop` and
# `word_box` (the block, and the spoken word's layer over or under it)
MAX_CAPTION_LAYERS = 2
MAX_OVERLAY_LAYERS = 50  # the contract's most overlays (the payload's MAX_OVERLAYS)
MAX_VIDEO_OVERLAYS = 20  # of which videos, each decoded beside the clips
CLIP_LAYERS = 2  # the clips' own pictures: two while a transition blends them
MAX_LAYERS = CLIP_LAYERS + MAX_CAPTION_LAYERS + MAX_OVERLAY_LAYERS


@dataclass(frozen=True)
class Cost:
    """What the encode will do: `frames` of output, at most `layers` things drawn on one."""

    frames: int
    fps: float
    clip_layers: int
    caption_layers: int
    overlay_layers: int
    largest_input: tuple[str, int]  # (source, pixels of its largest picture)
    overlay_pixels: int = 0  # pixels the video overlays decode for each output frame

    @property
    def layers(self) -> int:
        return self.clip_layers + self.caption_layers + self.overlay_layers

    @property
    def work(self) -> int:
        """Frames times things drawn: the unit every bound is stated in."""
        return self.frames * self.layers


def estimate(
    plan: Plan, clips: Sequence[ClipSpec], overlays: Sequence[OverlaySpec], caption_layers: int
) -> Cost:
    """The plan's cost; `caption_layers` is the most caption events the caption child counted
    on screen at once (0 without captions)."""
    inputs = [(f"clips[{n}]", clip.info) for n, clip in enumerate(clips)]
    inputs += [(f"overlays[{n}].image", o.info) for n, o in enumerate(overlays)
               if isinstance(o, ImageOverlaySpec)]  # fmt: skip
    videos = [(f"overlays[{n}].video", o.info) for n, o in enumerate(overlays)
              if isinstance(o, VideoOverlaySpec)]  # fmt: skip
    inputs += videos
    transitions = any(plan.overlaps)
    return Cost(
        frames=plan.frames,
        fps=float(plan.geometry.fps),
        clip_layers=CLIP_LAYERS if transitions else min(1, len(clips)),
        caption_layers=caption_layers,
        overlay_layers=len(overlays),
        largest_input=max(
            ((s, _pixels(i)) for s, i in inputs), key=lambda p: p[1], default=("", 0)
        ),
        overlay_pixels=sum(_pixels(info) for _, info in videos),
    )


def check(cost: Cost, *, max_seconds: float, max_pixels: int) -> None:
    """Refuse a job past its bounds, naming the field or input that put it there."""
    if cost.caption_layers > MAX_CAPTION_LAYERS:
        raise PayloadError(
            "payload.captions", f"would show {cost.caption_layers} caption blocks at once; "
            f"at most {MAX_CAPTION_LAYERS} may be on screen at a time"
        )  # fmt: skip
    if cost.overlay_layers > MAX_OVERLAY_LAYERS:
        raise PayloadError("payload.overlays", f"has {cost.overlay_layers} overlays; at most "
                           f"{MAX_OVERLAY_LAYERS} are allowed")  # fmt: skip
    if cost.overlay_pixels > MAX_VIDEO_OVERLAYS * max_pixels:
        raise PayloadError("payload.overlays", f"decode {cost.overlay_pixels} pixels of video "
                           f"overlays a frame; at most {MAX_VIDEO_OVERLAYS} videos of "
                           "MAX_INPUT_PIXELS are allowed")  # fmt: skip
    if cost.frames > max_seconds * cost.fps + 1:
        raise PayloadError("payload.clips", f"make {cost.frames} frames, more than "
                           f"MAX_OUTPUT_SECONDS ({max_seconds:g} s) allows")  # fmt: skip
    source, pixels = cost.largest_input
    if pixels > max_pixels:
        raise InputError(source, f"has pictures of {pixels} pixels; at most {max_pixels} "
                         "(MAX_INPUT_PIXELS) are allowed")  # fmt: skip


def _pixels(info: MediaInfo) -> int:
    video = info.video
    if video is None:
        return 0
    width, height = video.display_size
    return width * height
