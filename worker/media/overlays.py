"""Overlays on the output timeline (a logo, a watermark, a title), drawn after transitions.

An image overlay is scaled to its share of the frame's width, given its opacity, converted to
BT.709 (FFmpeg's automatic conversion would use BT.601 and shift a logo's colours), and laid
over the picture between `start` and `end`. A text overlay is drawn by `drawtext` from a file
with `expansion=none`, in the bundled font: the text is the user's, and neither `%{…}`
expansions nor filter-graph syntax in it can mean anything to FFmpeg.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from worker.media.captions import clean_text
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


def text_overlay(
    overlay: TextOverlaySpec, textfile: str, fontfile: str, main: str, label: str,
    geometry: Geometry,
) -> str:  # fmt: skip
    """A `drawtext` from `main` into `label`; `textfile` and `fontfile` are plain relative
    names (the command runs in the folder that holds them), so no path needs escaping."""
    size = max(8, round(overlay.size * geometry.height))
    margin = round(TEXT_MARGIN * min(geometry.width, geometry.height))
    x, y = place_xy(overlay.position, margin)
    x, y = x.replace("w", "tw"), y.replace("h", "th")
    options = [
        f"fontfile={fontfile}",
        f"textfile={textfile}",
        "expansion=none",
        f"fontsize={size}",
        f"fontcolor={hex_colour(overlay.color)}",
        f"x={x}",
        f"y={y}",
        f"enable='{enable(overlay.start, overlay.end)}'",
    ]
    if overlay.box:
        options += ["box=1", f"boxcolor=black@{TEXT_BOX_ALPHA}", f"boxborderw={size // 4}"]
    else:
        options += ["borderw=2", "bordercolor=black@0.8"]
    return f"{main}drawtext=" + ":".join(options) + label


def hex_colour(colour: str) -> str:
    """`#RRGGBB` as FFmpeg's `0xRRGGBB`; anything else is refused, never put in a graph."""
    match = _COLOUR.match(colour)
    if match is None:
        raise ValueError(f"not a #RRGGBB colour: {colour!r}")
    return "0x" + match.group(1).upper()


def write_texts(texts: Sequence[TextOverlaySpec], folder: Path) -> list[str]:
    """Each text overlay's text in its own file (UTF-8, as given), named for `drawtext`."""
    names = []
    for k, overlay in enumerate(texts):
        name = f"overlay{k:02d}.txt"
        # control characters as spaces: drawtext would break lines at a newline
        (folder / name).write_text(clean_text(overlay.text), encoding="utf-8")
        names.append(name)
    return names
