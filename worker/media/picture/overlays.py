"""Overlays on the output timeline (a logo, a watermark, a title), drawn after transitions.

An image overlay is scaled to its share of the frame's width, given its opacity, converted to
BT.709 (FFmpeg's automatic conversion would use BT.601 and shift a logo's colours), and laid
over the picture between `start` and `end`. A text overlay is drawn by libass, as captions are:
one small ASS file per overlay (`text_document`), so it gets the same fonts, per-character
fallback across them, HarfBuzz shaping and bidi order (`drawtext` has one font file and no
fallback: Japanese, Arabic and emoji were boxes), and a later animation is ASS tags on the same
event. The text is the user's: it is escaped as caption text is (`ass_text`), and it sits in a
file, so neither ASS tags nor filter-graph syntax in it can mean anything to FFmpeg.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from worker.media.ffmpeg import input_args
from worker.media.picture import motion
from worker.media.picture.captions import ass_colour, ass_text
from worker.media.plan import Geometry
from worker.media.specs import (
    ImageOverlaySpec,
    MotionSpec,
    PictureOverlaySpec,
    Position,
    TextOverlaySpec,
    VideoOverlaySpec,
)

TEXT_MARGIN = 0.05  # a text overlay's distance from the frame's edges, as a fraction
TEXT_BOX_ALPHA = 0.55
_COLOUR = re.compile(r"^#?([0-9A-Fa-f]{6})$")
# eq's brightness that, with contrast o, maps an alpha of a to a·o: (a - ½)·o + ½ + b = a·o
_HALF = 128 / 255

# ASS's numpad alignment for each position: column (left, centre, right) and row (bottom,
# middle, top) are (n - 1) % 3 and (n - 1) // 3.
_ALIGNMENT: dict[Position, int] = {
    "bottom_left": 1, "bottom": 2, "bottom_right": 3, "left": 4, "center": 5, "right": 6,
    "top_left": 7, "top": 8, "top_right": 9,
}  # fmt: skip
TEXT_OUTLINE_ALPHA = 0x33  # the outline without a box: black at 80%
FOREVER = "9:59:59.99"  # an overlay without `end` stays to the end (ASS's latest time)


def enable(start: float, end: float | None) -> str:
    """The timeline expression that shows an overlay from `start` to `end` (None: the end)."""
    if end is None:
        return f"gte(t,{start:.6f})"
    return f"between(t,{start:.6f},{end:.6f})"


def _edge(column: int, margin: float, size: float, whole: float) -> float:
    """Where a `size`-long thing's centre sits along a side of `whole`: at the low edge
    (column 0), centred (1) or at the high edge (2), `margin` from the edge."""
    return (margin + size / 2, whole / 2, whole - margin - size / 2)[column]


def image_centre(overlay: PictureOverlaySpec, size: tuple[int, int], geometry: Geometry,
                 margin: int) -> tuple[float, float]:  # fmt: skip
    """The overlay's centre without motion, as fractions of the frame: `x`, `y`, else where
    `position` puts a picture of `size` pixels, `margin` px from the edges."""
    n = _ALIGNMENT[overlay.position] - 1
    column, row = n % 3, 2 - n // 3  # rows counted from the top here
    motion = overlay.motion
    x = motion.x if motion.x is not None else _edge(column, margin, size[0], geometry.width)
    y = motion.y if motion.y is not None else _edge(row, margin, size[1], geometry.height)
    return (
        x / geometry.width if motion.x is None else x,
        y / geometry.height if motion.y is None else y,
    )


def overlay_size(overlay: PictureOverlaySpec, geometry: Geometry) -> tuple[int, int]:
    """The overlay's size in pixels without motion: its share of the frame's width, its own
    aspect ratio (even sides, as `scale=W:-2` makes them)."""
    width = max(2, 2 * round(overlay.width * geometry.width / 2))
    video = overlay.info.video
    source = video.display_size if video is not None else (1, 1)
    return width, max(2, 2 * round(width * source[1] / max(1, source[0]) / 2))


def placement(
    overlay: PictureOverlaySpec, geometry: Geometry, ends: float
) -> tuple[tuple[int, int], motion.State]:
    """A picture overlay's size on the frame, and where it is and how it looks at each moment
    (expressions in `t`, motion.py) over its window, which lasts to `ends` without an `end`."""
    size = overlay_size(overlay, geometry)
    margin = round(overlay.margin * min(geometry.width, geometry.height))
    centre = image_centre(overlay, size, geometry, margin)
    length = (overlay.end if overlay.end is not None else ends) - overlay.start
    now = motion.state(overlay.motion, motion.Window(overlay.start, length, centre),
                       motion.Expr(f"(t-{overlay.start:.6f})"))  # fmt: skip
    return size, now


def image_overlay(
    overlay: ImageOverlaySpec, source: str, main: str, label: str, geometry: Geometry,
    *, ends: float, frames: tuple[int, int],
) -> list[str]:  # fmt: skip
    """Graph parts: the image input `source` prepared, then laid over `main` into `label`.

    `ends` is when the output ends (an overlay without `end` lasts until then), `frames` the
    output frames this pass makes (first, count). A still overlay is one picture the `overlay`
    filter repeats; a moving one is that picture repeated as a stream over its window (within
    `frames`), scaled and faded per frame by expressions in `t` (motion.py)."""
    size, now = placement(overlay, geometry, ends)
    fitted = round(size[0] * motion.largest_scale(overlay.motion) / 2) * 2
    prepared = label[:-1] + "img]"
    head = (f"{source}format=rgba,colorchannelmixer=aa={overlay.opacity:.4f},"
            f"scale={fitted}:-2:out_color_matrix=bt709:out_range=tv,format=yuva420p")  # fmt: skip
    still = motion.still(overlay.motion)
    parts = [head + prepared] if still else _moving(overlay, head, now, size, geometry, frames,
                                                    prepared)  # fmt: skip
    x, y = f"W*{motion.text(now.x)}-w/2", f"H*{motion.text(now.y)}-h/2"
    return [
        *parts,
        f"{main}{prepared}overlay=x='{x}':y='{y}':eof_action={'repeat' if still else 'pass'}"
        f":format=yuv420:enable='{enable(overlay.start, overlay.end)}'{label}",
    ]


def _moving(overlay: ImageOverlaySpec, head: str, now: motion.State, size: tuple[int, int],
            geometry: Geometry, frames: tuple[int, int], prepared: str) -> list[str]:  # fmt: skip
    """`head` (the fitted picture) as a stream over the overlay's frames in this pass, scaled
    and faded per frame by the motion, into `prepared`."""
    fps = geometry.fps
    first, count = overlay_frames(overlay, frames, fps)
    steps = [f"loop=loop={count - 1}:size=1:start=0", f"settb={fps.denominator}/{fps.numerator}",
             f"setpts=N+{first}"]  # fmt: skip
    return _in_motion(",".join([head, *steps]), overlay.motion, now, size, now.opacity, prepared)


def overlay_frames(overlay: PictureOverlaySpec, frames: tuple[int, int],
                   fps: Fraction) -> tuple[int, int]:  # fmt: skip
    """The output frames (first, count) an overlay is drawn on within a pass making `frames`
    (first, count): its window cut to the pass (at least one frame, so the input is used)."""
    first = max(frames[0], round(overlay.start * fps))
    last = frames[0] + frames[1]
    if overlay.end is not None:
        last = min(last, round(overlay.end * fps))
    return first, max(1, last - first)


def _in_motion(chain: str, moving: MotionSpec, now: motion.State, size: tuple[int, int],
               opacity: motion.Num, prepared: str) -> list[str]:  # fmt: skip
    """`chain` (a picture stream on the output's timeline, fitted for its largest scale) with
    its alpha multiplied by `opacity` when that changes or is below 1 (`eq` on the alpha plane:
    a·o is (a - ½)·o + ½ + (o - 1)·½), then scaled per frame by `now` when the motion scales
    it (last: `alphamerge` needs both its inputs the size they started at)."""
    scale = ""
    if motion.scales(moving):
        factor = motion.text(now.scale)
        scale = (f",scale=w='max(2,2*trunc({size[0]}*{factor}/2))'"
                 f":h='max(2,2*trunc({size[1]}*{factor}/2))':eval=frame")  # fmt: skip
    if not isinstance(opacity, motion.Expr) and opacity >= 1:  # never fades
        return [chain + scale + prepared]
    stem = prepared[:-1]
    alpha = motion.text(opacity)
    return [
        chain + f",split{stem}a]{stem}b]",
        f"{stem}b]alphaextract,eq=contrast='{alpha}'"
        f":brightness='({alpha}-1)*{_HALF:.6f}':eval=frame{stem}c]",
        f"{stem}a]{stem}c]alphamerge{scale}{prepared}",
    ]


def video_input(overlay: VideoOverlaySpec, frames: tuple[int, int], fps: Fraction, *,
                threads: int, max_pixels: int) -> list[str]:  # fmt: skip
    """A video overlay's `-i`: seeked to where its window (cut to this pass) starts playing,
    looped with `-stream_loop` when asked, read for no longer than it is drawn."""
    first, count = overlay_frames(overlay, frames, fps)
    seek = _source_time(overlay, float(first / fps) - overlay.start)
    loop = ["-stream_loop", "-1"] if overlay.loop else []
    before = ["-threads", str(threads), "-ss", f"{seek:.6f}", *loop,
              "-t", f"{float((count + 1) / fps):.6f}"]  # fmt: skip
    return input_args(overlay.path, before=before, max_pixels=max_pixels)


def _source_time(overlay: VideoOverlaySpec, elapsed: float) -> float:
    """Where in its file a video overlay is, `elapsed` s into its window: from `from`; a
    looped one starts again from the file's beginning (as `-stream_loop` plays it)."""
    at = overlay.from_ + max(0.0, elapsed)
    length = overlay.info.duration
    if overlay.loop and length > 0 and at >= length:
        at = (at - length) % length
    return at


def video_overlay(
    overlay: VideoOverlaySpec, source: str, main: str, label: str, geometry: Geometry,
    *, ends: float, frames: tuple[int, int],
) -> list[str]:  # fmt: skip
    """Graph parts: the video input `source` on the output's timeline over its window (cut to
    this pass), fitted, its corners rounded, moved and faded as the motion says, laid over
    `main` into `label`."""
    size, now = placement(overlay, geometry, ends)
    fitted = (_even(size[0] * motion.largest_scale(overlay.motion)),
              _even(size[1] * motion.largest_scale(overlay.motion)))  # fmt: skip
    fps = geometry.fps
    first, count = overlay_frames(overlay, frames, fps)
    stem = label[:-1]
    timed = f"settb={fps.denominator}/{fps.numerator},setpts=N+{first}"
    chain = (f"{source}setpts=PTS-STARTPTS,fps={fps.numerator}/{fps.denominator},"
             f"scale={fitted[0]}:{fitted[1]}:out_color_matrix=bt709:out_range=tv,"
             f"format=yuva420p,trim=end_frame={count},{timed}")  # fmt: skip
    parts = []
    radius = round(overlay.radius * geometry.width * fitted[0] / max(1, size[0]))
    if radius > 0:
        parts.append(_corner_mask(fitted, radius, count, timed, f"{stem}mask]"))
        parts.append(f"{chain}{stem}raw]")
        chain = f"{stem}raw]{stem}mask]alphamerge"
    prepared = f"{stem}vid]"
    parts += _in_motion(chain, overlay.motion, now, size, now.opacity * overlay.opacity, prepared)
    x, y = f"W*{motion.text(now.x)}-w/2", f"H*{motion.text(now.y)}-h/2"
    return [
        *parts,
        f"{main}{prepared}overlay=x='{x}':y='{y}':eof_action=pass:format=yuv420"
        f":enable='{enable(overlay.start, overlay.end)}'{label}",
    ]


def _corner_mask(size: tuple[int, int], radius: int, count: int, timed: str, label: str) -> str:
    """A grey mask of `size` with corners rounded by `radius` px (antialiased), drawn once by
    `geq` and repeated for `count` frames on the video's timestamps: `alphamerge` makes it the
    video's alpha."""
    w, h = size
    r = min(radius, w // 2, h // 2)
    dx = f"max(0,max({r}-X-0.5,X+0.5-{w - r}))"
    dy = f"max(0,max({r}-Y-0.5,Y+0.5-{h - r}))"
    return (f"color=c=white:s={w}x{h},trim=end_frame=1,format=gray,"
            f"geq=lum='255*clip({r}-hypot({dx},{dy})+0.5,0,1)',"
            f"loop=loop={count - 1}:size=1:start=0,{timed}{label}")  # fmt: skip


def _even(size: float) -> int:
    return max(2, 2 * round(size / 2))


def text_overlay(textfile: str, main: str, label: str) -> str:
    """An `ass` filter from `main` into `label` drawing `textfile` (a plain relative name: the
    command runs in the folder that holds it, with the fonts configuration of fonts.py)."""
    return f"{main}ass=filename={textfile}{label}"


def text_document(overlay: TextOverlaySpec, geometry: Geometry, ends: float) -> str:
    """The overlay as an ASS script for the frame: one style, and its window as one event, or
    as consecutive events each moving linearly (motion.py `steps`) when it moves."""
    size = max(8, round(overlay.size * geometry.height))
    margin = round(TEXT_MARGIN * min(geometry.width, geometry.height))
    # libass wraps a line at the frame less the side margins, wherever \pos puts it
    side = (
        margin if overlay.max_width is None else round((1 - overlay.max_width) * geometry.width / 2)
    )
    shade = _shade(overlay)
    border, outline = (3, size // 4) if overlay.box else (1, 2)  # a box `outline` px around
    colour = ass_colour(overlay.color)
    return "\n".join([
        "[Script Info]", "ScriptType: v4.00+", f"PlayResX: {geometry.width}",
        f"PlayResY: {geometry.height}", "WrapStyle: 0", "ScaledBorderAndShadow: yes", "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
        f"Style: Text,{overlay.font},{size},{colour},{colour},{ass_colour('#000000', shade)},"
        f"{ass_colour('#000000', shade)},-1,0,0,0,100,100,"
        f"0,0,{border},{outline},0,{_ALIGNMENT[overlay.position]},{side},{side},{margin},1",
        "", "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        *_text_events(overlay, geometry, ends, margin),
        "",
    ])  # fmt: skip


def _shade(overlay: TextOverlaySpec) -> int:
    """The box's or the outline's own alpha (ASS: 0 opaque, 255 clear)."""
    return round(255 * (1 - TEXT_BOX_ALPHA)) if overlay.box else TEXT_OUTLINE_ALPHA


def _text_events(overlay: TextOverlaySpec, geometry: Geometry, ends: float,
                 margin: int) -> list[str]:  # fmt: skip
    """Dialogue lines over the window: each from one state of the motion to the next (steps
    that do not move or change are one line)."""
    alignment, point = _text_anchor(overlay, geometry, margin)
    length = (overlay.end if overlay.end is not None else ends) - overlay.start
    window = motion.Window(overlay.start, max(length, 0.0), point)
    events: list[tuple[float, float, str]] = []
    for a, b in motion.steps(overlay.motion, window.length):
        first = motion.state(overlay.motion, window, a)
        then = motion.state(overlay.motion, window, b)
        tags = _text_tags(alignment, first, then, geometry, _shade(overlay), b - a)
        if events and events[-1][2] == tags and "\\move" not in tags and "\\t(" not in tags:
            events[-1] = (events[-1][0], b, tags)
        else:
            events.append((a, b, tags))
    lines = []
    for k, (a, b, tags) in enumerate(events):
        last = overlay.end is None and k == len(events) - 1
        end = FOREVER if last else _ass_time(overlay.start + b)
        lines.append(f"Dialogue: 0,{_ass_time(overlay.start + a)},{end},Text,,0,0,0,,"
                     f"{{{tags}}}{ass_text(overlay.text)}")  # fmt: skip
    return lines


def _text_anchor(overlay: TextOverlaySpec, geometry: Geometry,
                 margin: int) -> tuple[int, tuple[float, float]]:  # fmt: skip
    """The ASS alignment and the point (fractions of the frame) it is drawn at: on an axis
    the overlay's `x` or `y` (or keyframes) set, the text's centre; on the other, the edge its
    `position` names, `margin` px in."""
    n = _ALIGNMENT[overlay.position] - 1
    column, row = n % 3, n // 3  # rows counted from the bottom, as ASS does
    motion_ = overlay.motion
    keyed_x = motion_.x is not None or any(k.x is not None for k in motion_.keyframes)
    keyed_y = motion_.y is not None or any(k.y is not None for k in motion_.keyframes)
    column, row = (1 if keyed_x else column), (1 if keyed_y else row)
    mx, my = margin / geometry.width, margin / geometry.height
    x = motion_.x if motion_.x is not None else (mx, 0.5, 1 - mx)[column]
    y = motion_.y if motion_.y is not None else (1 - my, 0.5, my)[row]
    return row * 3 + column + 1, (x, y)


def _text_tags(alignment: int, first: motion.State, then: motion.State, geometry: Geometry,
               shade: int, seconds: float) -> str:  # fmt: skip
    """Override tags that draw one event from state `first` to state `then`, linearly."""
    w, h = geometry.width, geometry.height
    x0, y0 = motion.number(first.x) * w, motion.number(first.y) * h
    x1, y1 = motion.number(then.x) * w, motion.number(then.y) * h
    if abs(x1 - x0) < 0.05 and abs(y1 - y0) < 0.05:
        place = f"\\pos({x0:.2f},{y0:.2f})"
    else:
        place = f"\\move({x0:.2f},{y0:.2f},{x1:.2f},{y1:.2f})"
    tags = f"\\an{alignment}{place}{_look(first, shade)}"
    if _look(first, shade) != _look(then, shade):
        tags += f"\\t(0,{round(seconds * 1000)},{_look(then, shade)})"
    return tags


def _look(state: motion.State, shade: int) -> str:
    """Scale and opacity as ASS tags: the text's alpha, and the box's or outline's own alpha
    made clearer by the same factor."""
    scale = max(0.0, motion.number(state.scale)) * 100
    opacity = min(max(motion.number(state.opacity), 0.0), 1.0)
    text = round(255 * (1 - opacity))
    back = 255 - round((255 - shade) * opacity)
    return (f"\\fscx{scale:.2f}\\fscy{scale:.2f}\\1a&H{text:02X}&\\3a&H{back:02X}&"
            f"\\4a&H{back:02X}&")  # fmt: skip


def _ass_time(seconds: float) -> str:
    cs = min(round(max(0.0, seconds) * 100), 35_999_999)
    hours, rest = divmod(cs, 360_000)
    minutes, rest = divmod(rest, 6_000)
    return f"{hours}:{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}"


def hex_colour(colour: str) -> str:
    """`#RRGGBB` as FFmpeg's `0xRRGGBB`; anything else is refused, never put in a graph."""
    match = _COLOUR.match(colour)
    if match is None:
        raise ValueError(f"not a #RRGGBB colour: {colour!r}")
    return "0x" + match.group(1).upper()


def write_texts(texts: Sequence[TextOverlaySpec], folder: Path, geometry: Geometry,
                ends: float) -> list[str]:  # fmt: skip
    """Each text overlay as its own ASS file (`text_document`), named for the `ass` filter;
    `ends` is when the output ends."""
    names = []
    for k, overlay in enumerate(texts):
        name = f"overlay{k:02d}.ass"
        (folder / name).write_text(text_document(overlay, geometry, ends), encoding="utf-8")
        names.append(name)
    return names
