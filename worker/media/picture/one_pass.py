"""The picture of the compose join mode, in one FFmpeg pass: clips, stills, transitions,
captions, overlays and fades, encoded once.

    clip i (video) ─ -ss/-t trim ─ colour, fit, rate, exact frames ──┐
    clip j (image) ─ fit once, loop, perspective motion ─────────────┤
                                                                     ▼
        joined in order by one `concat`; a transition's overlap frames alone go through
        `xfade` (the next clip starts `overlap` frames early)
        → captions (libass, from the ASS file written beside the command)
        → overlays (images; text by libass too), over everything, transitions included
        → fade from and to black → H.264 (the same x264 settings as every intermediate)

Fitting (filters.py `fit_steps`) is part of each clip's chain: with `fit` "blur" the chain
splits into the picture and a small blurred copy of it, joined again by `overlay`, so the
blurred fill adds no input and no pass.

One pass rather than an intermediate per clip: every frame is encoded once, and a transition
needs both of its clips' frames at the same time anyway. A timeline of more than
MAX_CLIPS_PER_PASS clips is made in pieces of that many (`split_timeline`), one pass each,
joined by stream copy, because a pass holds frames of every input it has. The sound is made
beside the picture and muxed after (assemble.py), as on the re-encode path.

Transition offsets come from frame counts (the plan's windows less the overlaps before them),
so picture, sound and captions agree on where every clip starts, to the frame.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from worker.media.ffmpeg import input_args
from worker.media.picture.filters import _trim, length_steps, normal_steps, video_steps, x264_args
from worker.media.picture.overlays import image_overlay, text_overlay, video_input, video_overlay
from worker.media.picture.stills import image_input, image_steps
from worker.media.plan import ClipWindow, Plan
from worker.media.specs import (
    ClipSpec,
    ImageOverlaySpec,
    OutputSpec,
    OverlaySpec,
    TextOverlaySpec,
    VideoOverlaySpec,
)

FONTS_NAME = "fonts"  # a folder holding a link to the font, where the command runs
FONT_FILE = "SourceSansPro-Bold.ttf"
MAX_CLIPS_PER_PASS = 6  # inputs one FFmpeg pass decodes at once (see `split_timeline`)
_TRANSITION = re.compile(r"^[a-z]{2,20}$")  # xfade's names; anything else is a bug upstream


# ---- pieces of the timeline -------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A stretch of the output made by one FFmpeg pass: some clips (or parts of clips), with
    the transitions between them, from output frame `offset` on.

    `skips[k]` is how many frames of clip k's window an earlier piece already showed, and
    `totals[k]` how many frames the whole clip has (a still's motion runs over all of them)."""

    clips: tuple[ClipSpec, ...]
    plan: Plan
    offset: int
    skips: tuple[int, ...]
    totals: tuple[int, ...]


def split_timeline(clips: Sequence[ClipSpec], plan: Plan, limit: int) -> list[Piece]:
    """The timeline in pieces of at most `limit` clips each (one piece if it has no more).

    A pass decodes all its inputs at once, and FFmpeg holds a few frames of every input from
    the start (about 30 MB per 720p clip), so a long timeline in one pass could take
    gigabytes. Pieces join by stream copy (same x264 settings, each starting on a keyframe),
    so nothing is encoded twice. A piece ends at a cut, or just after a transition has ended,
    so every transition is made whole inside one piece.
    """
    windows = plan.windows
    if len(clips) <= limit:
        whole = tuple(w.frames for w in windows)
        return [Piece(tuple(clips), plan, 0, (0,) * len(clips), whole)]
    bounds = [(0, 0)]
    first = 0
    while first + limit < len(clips):
        cut = first + limit
        if plan.overlaps[cut - 1]:  # the clip after a transition starts in both pieces
            cut -= 1
        bounds.append((cut, plan.overlaps[cut - 1]))
        first = cut
    bounds.append((len(clips), 0))
    return [_piece(clips, plan, start, end) for start, end in itertools.pairwise(bounds)]


def _piece(clips: Sequence[ClipSpec], plan: Plan, start: tuple[int, int],
           end: tuple[int, int]) -> Piece:  # fmt: skip
    """Clips from frame `start[1]` of clip `start[0]` up to frame `end[1]` of clip `end[0]`."""
    fps = plan.geometry.fps
    members = []
    for j in range(start[0], min(end[0] + 1, len(clips))):
        skip = start[1] if j == start[0] else 0
        stop = end[1] if j == end[0] else plan.windows[j].frames
        if stop > skip:
            members.append((j, skip, stop))
    parts, windows, overlaps = [], [], []
    for k, (j, skip, stop) in enumerate(members):
        window = plan.windows[j]
        windows.append(ClipWindow(window.start + float(skip / fps), float((stop - skip) / fps),
                                  stop - skip))  # fmt: skip
        keeps = k + 1 < len(members)  # the transition out of it is inside this piece
        parts.append(replace(clips[j], transition=clips[j].transition if keeps else None))
        if keeps:
            overlaps.append(plan.overlaps[j])
    frames = sum(w.frames for w in windows) - sum(overlaps)
    piece_plan = Plan("compose", plan.geometry, tuple(windows), float(frames / fps), (),
                      tuple(overlaps))  # fmt: skip
    return Piece(
        clips=tuple(parts), plan=piece_plan, offset=plan.starts[start[0]] + start[1],
        skips=tuple(skip for _, skip, _ in members),
        totals=tuple(plan.windows[j].frames for j, _, _ in members),
    )  # fmt: skip


# ---- the command -----------------------------------------------------------------------------


def picture_args(
    piece: Piece,
    timeline: Plan,
    output: OutputSpec,
    *,
    overlays: Sequence[OverlaySpec],
    captions: str | None,
    texts: Sequence[str],
    destination: Path,
    threads: int,
) -> list[str]:
    """FFmpeg arguments for one piece of the picture (`timeline` is the whole output's plan),
    H.264 without sound, into `destination`.

    Run it in the folder that holds `captions` (an ASS file name) and the `texts` (one ASS
    file name per text overlay, in order), with FONTCONFIG_FILE naming the worker's fonts
    (fonts.py: libass finds its families and fallbacks there). Captions, overlays and
    fades are timed on the whole output: the piece's frames are stamped with their output time
    while they are drawn on, and start from 0 again for the encoder.
    """
    plan = piece.plan
    inputs: list[str] = []
    graph = []
    for k, (clip, window) in enumerate(zip(piece.clips, plan.windows, strict=True)):
        inputs += clip_input(clip, window, threads, output.max_input_pixels)
        graph.append(clip_chain(k, clip, window, plan, output, piece.skips[k], piece.totals[k]))
    joins, label = join_parts(piece.clips, plan)
    graph += joins
    if piece.offset:
        graph.append(f"{label}setpts=PTS+{piece.offset}[timed]")
        label = "[timed]"
    if captions is not None:
        graph.append(f"{label}ass=filename={captions}[captioned]")
        label = "[captioned]"
    frames = (piece.offset, plan.frames)
    for overlay in overlays:
        if isinstance(overlay, ImageOverlaySpec):
            inputs += image_input(overlay.path, overlay.info, max_pixels=output.max_input_pixels)
        elif isinstance(overlay, VideoOverlaySpec):
            inputs += video_input(overlay, frames, plan.geometry.fps, threads=threads,
                                  max_pixels=output.max_input_pixels)  # fmt: skip
    parts, label = overlay_parts(overlays, label, len(piece.clips), texts, plan,
                                 ends=timeline.duration, first_frame=piece.offset)  # fmt: skip
    graph += parts
    steps = [*fade_steps(timeline, output), *normal_steps(plan.geometry),
             *length_steps(plan.frames), "setpts=PTS-STARTPTS"]  # fmt: skip
    graph.append(label + ",".join(steps) + "[v]")
    return [
        *inputs,
        "-filter_complex", ";".join(graph),
        "-filter_complex_threads", str(threads),
        "-map", "[v]", *x264_args(plan.geometry, threads),
        "-map_metadata", "-1", "-map_chapters", "-1",
        str(destination),
    ]  # fmt: skip


def clip_input(clip: ClipSpec, window: ClipWindow, threads: int, max_pixels: int) -> list[str]:
    """One clip's `-i`: a video seeked to its trim, or a still read once as a picture; its
    decoder refuses pictures over `max_pixels` (MAX_INPUT_PIXELS)."""
    if clip.kind == "image":
        return image_input(clip.path, clip.info, max_pixels=max_pixels)
    return input_args(clip.path, before=["-threads", str(threads), *_trim(clip, window)],
                      max_pixels=max_pixels)  # fmt: skip


def clip_chain(index: int, clip: ClipSpec, window: ClipWindow, plan: Plan, output: OutputSpec,
               skip: int = 0, total: int | None = None) -> str:  # fmt: skip
    """`[index:v]` → `[c{index}]`: the clip normalized exactly as the re-encode path does."""
    if clip.kind == "image":
        steps = image_steps(clip, window, plan.geometry, output.fit, skip=skip, total=total,
                            tag=str(index))  # fmt: skip
    else:
        steps = video_steps(clip.info, plan.geometry, window.frames, output.fit, str(index))
    return f"[{index}:v]" + ",".join(steps) + f"[c{index}]"


def join_parts(clips: Sequence[ClipSpec], plan: Plan) -> tuple[list[str], str]:
    """The clips in order, in one `concat`; a transition's overlap frames alone go through
    `xfade`.

    `xfade` works in 4:4:4 only, so every frame that reaches it is converted up and, later,
    back down. Chained over whole clips (`[a][b]xfade`, then the result into the next one), it
    would convert every frame of the timeline, blur the chroma of every frame a little, and
    leave every filter after it working at 4:4:4. Here each clip is cut into its head (the
    frames the transition into it shares), its body and its tail (the frames the transition out
    of it shares): bodies pass to `concat` untouched, and each transition blends one clip's tail
    with the next one's head, at the same progress, frame for frame, as over the whole clips.
    The plan keeps every transition within half of the shorter of its clips, so a head and a
    tail never overlap.
    """
    fps = plan.geometry.fps
    if len(clips) == 1:
        return [], "[c0]"
    overlaps = plan.overlaps  # per join: 0 at a cut, the transition's frames otherwise
    parts: list[str] = []
    segments: list[str] = []
    for k, window in enumerate(plan.windows):
        head = overlaps[k - 1] if k > 0 else 0
        tail = overlaps[k] if k < len(overlaps) else 0
        ranges = {"h": (0, head), "b": (head, window.frames - tail),
                  "t": (window.frames - tail, window.frames)}  # fmt: skip
        used = {name: span for name, span in ranges.items() if span[1] > span[0]}
        if not head and not tail:
            labels = {"b": f"[c{k}]"}
        else:
            parts.append(f"[c{k}]split={len(used)}" + "".join(f"[c{k}{n}]" for n in used))
            labels = {}
            for name, (first, stop) in used.items():
                parts.append(f"[c{k}{name}]trim=start_frame={first}:end_frame={stop},"
                             f"setpts=PTS-STARTPTS[s{k}{name}]")  # fmt: skip
                labels[name] = f"[s{k}{name}]"
        if "h" in labels:  # the transition into this clip, from the last one's tail
            transition = clips[k - 1].transition
            assert transition is not None
            if not _TRANSITION.match(transition.type):
                raise ValueError(f"not an xfade transition: {transition.type!r}")
            parts.append(
                f"[s{k - 1}t]{labels['h']}xfade=transition={transition.type}"
                f":duration={float(head / fps):.6f}:offset=0,format=yuv420p[x{k}]"
            )
            segments.append(f"[x{k}]")
        if "b" in labels:
            segments.append(labels["b"])
    # concat's output counts in microseconds; what follows counts frames at 1/fps
    parts.append(
        "".join(segments) + f"concat=n={len(segments)}:v=1:a=0,"
        f"settb={fps.denominator}/{fps.numerator}[joined]"
    )
    return parts, "[joined]"


def overlay_parts(
    overlays: Sequence[OverlaySpec], label: str, first_input: int, texts: Sequence[str],
    plan: Plan, *, ends: float, first_frame: int = 0,
) -> tuple[list[str], str]:  # fmt: skip
    """Each overlay in order over `label`; image and video overlays read inputs from
    `first_input` on, one each, in order.
    `plan` is this pass's, from output frame `first_frame`; the output ends at `ends` s."""
    parts: list[str] = []
    image_input, text = first_input, 0
    for k, overlay in enumerate(overlays):
        out = f"[o{k}]"
        frames = (first_frame, plan.frames)
        if isinstance(overlay, TextOverlaySpec):
            parts.append(text_overlay(texts[text], label, out))
            text += 1
        elif isinstance(overlay, VideoOverlaySpec):
            parts += video_overlay(overlay, f"[{image_input}:v]", label, out, plan.geometry,
                                   ends=ends, frames=frames)  # fmt: skip
            image_input += 1
        else:
            parts += image_overlay(overlay, f"[{image_input}:v]", label, out, plan.geometry,
                                   ends=ends, frames=frames)  # fmt: skip
            image_input += 1
        label = out
    return parts, label


def fade_steps(plan: Plan, output: OutputSpec) -> list[str]:
    """From black over `fade_in` s, to black over `fade_out` s: the first frame is black, and so
    is the last (the fade ends on it, not one frame after it)."""
    steps = []
    last = plan.seconds(plan.frames - 1)
    if output.fade_in > 0:
        steps.append(f"fade=t=in:st=0:d={min(output.fade_in, max(last, 0.001)):.6f}")
    if output.fade_out > 0:
        length = min(output.fade_out, max(last, 0.001))
        steps.append(f"fade=t=out:st={last - length:.6f}:d={length:.6f}")
    return steps
