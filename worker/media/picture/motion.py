"""How an overlay moves through its window: position, scale and opacity over time.

An overlay's state at `u` seconds into its window is the product of three things:

- its keyframes (`x`, `y`, `scale`, `opacity` at given times, eased between them by `easing`;
  each property on its own, through the keyframes that set it: from the overlay's own value at
  the start of its window (unless a keyframe at 0 sets it), held after its last keyframe),
- its `animation`: an entrance over `animation_duration` seconds (at most a third of the
  window), the same played in reverse as the exit,
- its `fade_in` and `fade_out`, linear ramps of opacity.

The curves are written once, over `Num`: a Python float, or an `Expr`, the same arithmetic as an
FFmpeg expression in `t` (the output time). Image and video overlays get exact expressions for
the `overlay`, `scale` and `eq` filters (evaluated per frame by FFmpeg); text overlays are drawn
by libass, which moves and scales linearly within one event, so the text is cut into a bounded
number of events, each linear between two evaluations of the same curves (`steps`). The size of
an expression grows with the number of keyframes only (at most MAX_KEYFRAMES), never with the
window's length or anything else.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal, Union

from worker.media.specs import Animation, Easing, MotionSpec

SLIDE = 0.1  # how far a slide travels, as a fraction of the frame's width or height
POP_OVERSHOOT = 1.70158  # the "back" easing's usual constant: about 10% past full size
ZOOM_FROM = 0.5  # `zoom` grows from half its size
STEPS_PER_SPAN = 8  # libass events per curved span of a text overlay's motion
MIN_STEP = 0.04  # seconds: no event shorter than about a frame


class Expr:
    """An FFmpeg expression under construction; arithmetic with numbers and other Exprs."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def _op(self, op: str, other: Num, swap: bool = False) -> Expr:
        a, b = (text(other), self.text) if swap else (self.text, text(other))
        return Expr(f"({a}{op}{b})")

    def __add__(self, other: Num) -> Expr:
        return self._op("+", other)

    def __radd__(self, other: Num) -> Expr:
        return self._op("+", other, swap=True)

    def __sub__(self, other: Num) -> Expr:
        return self._op("-", other)

    def __rsub__(self, other: Num) -> Expr:
        return self._op("-", other, swap=True)

    def __mul__(self, other: Num) -> Expr:
        return self._op("*", other)

    def __rmul__(self, other: Num) -> Expr:
        return self._op("*", other, swap=True)

    def __truediv__(self, other: Num) -> Expr:
        return self._op("/", other)


Num = Union[float, Expr]  # noqa: UP007 (a runtime alias: `|` on a str forward reference fails)


def text(value: Num) -> str:
    """A value as FFmpeg expression text (numbers with six decimals, never an exponent)."""
    return value.text if isinstance(value, Expr) else f"{value:.6f}"


def number(value: Num) -> float:
    """A value evaluated in Python (its curve was given a number, not an expression)."""
    assert not isinstance(value, Expr), "an FFmpeg expression, not a number"
    return value


def clip01(value: Num) -> Num:
    if isinstance(value, Expr):
        return Expr(f"clip({value},0,1)")
    return min(max(value, 0.0), 1.0)


def smaller(a: Num, b: Num) -> Num:
    if isinstance(a, Expr) or isinstance(b, Expr):
        return Expr(f"min({text(a)},{text(b)})")
    return min(a, b)


def before(u: Num, moment: float, then: Num, after: Num) -> Num:
    """`then` while u < moment, else `after`."""
    if isinstance(u, Expr):
        return Expr(f"if(lt({u},{moment:.6f}),{text(then)},{text(after)})")
    return then if u < moment else after


def ease(easing: Easing, p: Num) -> Num:
    """Progress p (0 → 1) eased: in slow then fast, out the other way, in and out along the
    smoothstep curve (the stills' motion uses the same curves)."""
    match easing:
        case "linear":
            return p
        case "ease_in":
            return p * p
        case "ease_out":
            return p * (2 - p)
        case "ease_in_out":
            return p * p * (3 - 2 * p)


Property = Literal["x", "y", "scale", "opacity"]


@dataclass(frozen=True)
class State:
    """Where an overlay is: its centre (fractions of the frame), scale and opacity."""

    x: Num
    y: Num
    scale: Num
    opacity: Num


@dataclass(frozen=True)
class Window:
    """An overlay's window on the output: from `start`, `length` seconds; `centre` is where it
    sits without motion (fractions of the frame)."""

    start: float
    length: float
    centre: tuple[float, float]


def animation_seconds(motion: MotionSpec, length: float) -> float:
    """The entrance's (and the exit's) length: `animation_duration`, at most a third of the
    window (the payload refuses more when it knows the window; an open end is only known
    here)."""
    if motion.animation == "none":
        return 0.0
    return min(motion.animation_duration, length / 3)


def state(motion: MotionSpec, window: Window, u: Num) -> State:
    """The overlay's state at `u` seconds into its window."""
    base: dict[Property, float] = {
        "x": window.centre[0],
        "y": window.centre[1],
        "scale": 1.0,
        "opacity": 1.0,
    }
    keyed = {name: keyed_value(motion, name, base[name], u) for name in base}
    dx, dy, scale, opacity = _animated(motion, window.length, u)
    return State(
        x=keyed["x"] + dx,
        y=keyed["y"] + dy,
        scale=keyed["scale"] * scale,
        opacity=keyed["opacity"] * opacity * _faded(motion, window.length, u),
    )


def keyed_value(motion: MotionSpec, name: Property, base: float, u: Num) -> Num:
    """One property through the keyframes that set it: from `base` (the overlay's own value)
    at the window's start to the first of them, held after the last."""
    keys: list[tuple[float, float]] = [
        (k.t, v) for k in motion.keyframes if (v := getattr(k, name)) is not None
    ]
    if not keys:
        return base
    if keys[0][0] > 0:  # as CSS does: from the overlay's own value at its start
        keys.insert(0, (0.0, base))
    value: Num = keys[-1][1]
    for (t0, v0), (t1, v1) in reversed(list(itertools.pairwise(keys))):
        p = clip01((u - t0) / (t1 - t0))
        value = before(u, t1, v0 + (v1 - v0) * ease(motion.easing, p), value)
    return value


def _animated(motion: MotionSpec, length: float, u: Num) -> tuple[Num, Num, Num, Num]:
    """The animation's (dx, dy, scale, opacity) at `u`: progress p runs 0 → 1 over the
    entrance and 1 → 0 over the exit."""
    seconds = animation_seconds(motion, length)
    if seconds <= 0:
        return 0.0, 0.0, 1.0, 1.0
    p = smaller(clip01(u / seconds), clip01((length - u) / seconds))
    k = ease("ease_out", p)
    return _preset(motion.animation, p, k)


def _preset(animation: Animation, p: Num, k: Num) -> tuple[Num, Num, Num, Num]:
    away = (1 - k) * SLIDE
    match animation:
        case "slide_up":  # comes up from below
            return 0.0, away, 1.0, k
        case "slide_down":
            return 0.0, -1 * away, 1.0, k
        case "slide_left":  # comes in from the right
            return away, 0.0, 1.0, k
        case "slide_right":
            return -1 * away, 0.0, 1.0, k
        case "pop":  # grows past its size and settles ("back" easing)
            q = p - 1
            c = POP_OVERSHOOT
            return 0.0, 0.0, 1 + (c + 1) * q * q * q + c * q * q, k
        case "zoom":
            return 0.0, 0.0, ZOOM_FROM + (1 - ZOOM_FROM) * k, k
        case _:  # fade
            return 0.0, 0.0, 1.0, k


def _faded(motion: MotionSpec, length: float, u: Num) -> Num:
    factor: Num = 1.0
    if motion.fade_in > 0:
        factor = clip01(u / motion.fade_in)
    if motion.fade_out > 0:
        factor = smaller(factor, clip01((length - u) / motion.fade_out))
    return factor


def largest_scale(motion: MotionSpec) -> float:
    """The most the overlay is ever scaled (what it is fitted to before it moves)."""
    scales = [k.scale for k in motion.keyframes if k.scale is not None] or [1.0]
    grown = 1 + 0.11 if motion.animation == "pop" else 1.0  # the back easing's peak is ~1.1
    return max(1.0, max(scales)) * grown


def still(motion: MotionSpec) -> bool:
    """Whether the overlay never moves, scales or fades (drawn once, as a plain layer)."""
    return (
        motion.animation == "none"
        and not motion.keyframes
        and motion.fade_in <= 0
        and motion.fade_out <= 0
    )


def scales(motion: MotionSpec) -> bool:
    return motion.animation in ("pop", "zoom") or any(k.scale is not None for k in motion.keyframes)


def steps(motion: MotionSpec, length: float) -> list[tuple[float, float]]:
    """The window cut into spans each drawn linearly: at every keyframe, animation and fade
    boundary, and each such span into STEPS_PER_SPAN steps (at least MIN_STEP long), unless
    the overlay is still. At most (MAX_KEYFRAMES + 5) × STEPS_PER_SPAN steps."""
    if still(motion):
        return [(0.0, length)]
    seconds = animation_seconds(motion, length)
    cuts = {0.0, length, seconds, length - seconds, motion.fade_in, length - motion.fade_out}
    cuts |= {k.t for k in motion.keyframes}
    points = sorted(c for c in cuts if 0 <= c <= length)
    spans = []
    for a, b in itertools.pairwise(points):
        n = max(1, min(STEPS_PER_SPAN, int((b - a) / MIN_STEP)))
        spans += [(a + (b - a) * i / n, a + (b - a) * (i + 1) / n) for i in range(n)]
    return [s for s in spans if s[1] > s[0]]
