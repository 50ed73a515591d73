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
from pathlib import Path

from worker.media.captions import ass_colour, ass_text
from worker.media.plan import Geometry
from worker.media.specs import ImageOverlaySpec, Position, TextOverlaySpec

TEXT_MARGIN = 0.05  # a text overlay's distance from the frame's edges, as a fraction
TEXT_BOX_ALPHA = 0.55
_COLOUR = re.compile(r"^#?([0-9A-Fa-f]{6})$")

# Where an overlay of size (w, h) goes in a W x H frame, leaving margins (mx, my): x, y.
_ANCHORS: dict[Position, tuple[str, str]] = {
    "top_left": ("{mx}", "{my}"),
    "top": ("(W-w)/2", "{my}"),
    "top_right": ("W-w-{mx}", "{my}"),
    "left": ("{mx}", "(H-h)/2"),
    "center": ("(W-w)/2", "(H-h)/2"),
    "right": ("W-w-{mx}", "(H-h)/2"),
    "bottom_left": ("{mx}", "H-h-{my}"),
    "bottom": ("(W-w)/2", "H-h-{my}"),
    "bottom_right": ("W-w-{mx}", "H-h-{my}"),
}


def place_xy(position: Position, margin: int) -> tuple[str, str]:
    """The x and y expressions (in terms of W, H, w, h) for `position` with a margin in px."""
    x, y = _ANCHORS[position]
    return x.format(mx=margin), y.format(my=margin)


def enable(start: float, end: float | None) -> str:
    """The timeline expression that shows an overlay from `start` to `end` (None: the end)."""
    if end is None:
        return f"gte(t,{start:.6f})"
    return f"between(t,{start:.6f},{end:.6f})"


def image_overlay(
    overlay: ImageOverlaySpec, source: str, main: str, label: str, geometry: Geometry
) -> list[str]:
    """Graph parts: the image input `source` prepared, then laid over `main` into `label`."""
    width = max(2, 2 * round(overlay.width * geometry.width / 2))
    margin = round(overlay.margin * min(geometry.width, geometry.height))
    x, y = place_xy(overlay.position, margin)
    prepared = label[:-1] + "img]"
    return [
        f"{source}format=rgba,colorchannelmixer=aa={overlay.opacity:.4f},"
        f"scale={width}:-2:out_color_matrix=bt709:out_range=tv,format=yuva420p{prepared}",
        f"{main}{prepared}overlay=x={x}:y={y}:eof_action=repeat:format=yuv420"
        f":enable='{enable(overlay.start, overlay.end)}'{label}",
    ]


# ASS's numpad alignment for each position
_ALIGNMENT: dict[Position, int] = {
    "bottom_left": 1, "bottom": 2, "bottom_right": 3, "left": 4, "center": 5, "right": 6,
    "top_left": 7, "top": 8, "top_right": 9,
}  # fmt: skip
TEXT_OUTLINE_ALPHA = 0x33  # the outline without a box: black at 80%
FOREVER = "9:59:59.99"  # an overlay without `end` stays to the end (ASS's latest time)


def text_overlay(textfile: str, main: str, label: str) -> str:
    """An `ass` filter from `main` into `label` drawing `textfile` (a plain relative name: the
    command runs in the folder that holds it, with the fonts configuration of fonts.py)."""
    return f"{main}ass=filename={textfile}{label}"


def text_document(overlay: TextOverlaySpec, geometry: Geometry) -> str:
    """The overlay as an ASS script for the frame: one style, one event in its window."""
    size = max(8, round(overlay.size * geometry.height))
    margin = round(TEXT_MARGIN * min(geometry.width, geometry.height))
    if overlay.box:
        shade = ass_colour("#000000", round(255 * (1 - TEXT_BOX_ALPHA)))
        border, outline = 3, size // 4  # an opaque box, `outline` px around the text
    else:
        shade = ass_colour("#000000", TEXT_OUTLINE_ALPHA)
        border, outline = 1, 2
    colour = ass_colour(overlay.color)
    end = FOREVER if overlay.end is None else _ass_time(overlay.end)
    return "\n".join([
        "[Script Info]", "ScriptType: v4.00+", f"PlayResX: {geometry.width}",
        f"PlayResY: {geometry.height}", "WrapStyle: 0", "ScaledBorderAndShadow: yes", "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
        f"Style: Text,{overlay.font},{size},{colour},{colour},{shade},{shade},-1,0,0,0,100,100,"
        f"0,0,{border},{outline},0,{_ALIGNMENT[overlay.position]},{margin},{margin},{margin},1",
        "", "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        f"Dialogue: 0,{_ass_time(overlay.start)},{end},Text,,0,0,0,,{ass_text(overlay.text)}",
        "",
    ])  # fmt: skip


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


def write_texts(texts: Sequence[TextOverlaySpec], folder: Path, geometry: Geometry) -> list[str]:
    """Each text overlay as its own ASS file (`text_document`), named for the `ass` filter."""
    names = []
    for k, overlay in enumerate(texts):
        name = f"overlay{k:02d}.ass"
        (folder / name).write_text(text_document(overlay, geometry), encoding="utf-8")
        names.append(name)
    return names
