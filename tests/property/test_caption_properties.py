"""Properties of caption files (`captions.srt_url`, `captions.vtt_url`): whatever text a user
uploads, reading it raises only an InputError naming the source, and the words it gives have
finite times in order, within MAX_OUTPUT_SECONDS.

THE CAPTION-FILE PROPERTY: `READERS` below is the one place that names the readers
(`words_from_srt` / `words_from_vtt` of worker/media/picture/captions.py, `child_only`: called
here as the caption child calls them, inside `confined_here`). Re-point it there if they move.

The sizes stay small (runs of up to 3,000 '<', lines of up to 20,000 characters): this is about
what is raised, not how long it takes (the readers' linear time is bench_bombs' and the hostile
corpus' to measure).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from hypothesis import event, given
from hypothesis import strategies as st

from worker.errors import InputError
from worker.media.confine import confined_here
from worker.media.picture.captions import Word, words_from_srt, words_from_vtt

MAX_SECONDS = 1800.0  # MAX_OUTPUT_SECONDS' default
READERS: dict[str, Callable[..., list[Word]]] = {
    "captions.srt_url": words_from_srt,
    "captions.vtt_url": words_from_vtt,
}


def _clock(ms: int, fraction: str, short: bool) -> str:
    """`ms` milliseconds as a clock: `HH:MM:SS{fraction}mmm`, or WebVTT's `MM:SS.mmm`."""
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    clock = f"{minutes:02d}:{rest // 1000:02d}{fraction}{rest % 1000:03d}"
    return clock if short and not hours else f"{hours:02d}:{clock}"


def good_timings(fraction: str) -> st.SearchStrategy[str]:
    """Well-formed `start --> end`, mostly in order and within MAX_OUTPUT_SECONDS (so words come
    out), sometimes past it (hours up to the 3 digits the parsers take) or reversed."""
    starts = st.integers(0, 1_800_000) | st.integers(0, 999 * 3_600_000)
    lengths = st.integers(0, 10_000) | st.integers(-10_000, 0)
    short = st.booleans() if fraction == "." else st.just(False)

    def timing(start: int, length: int, short: bool) -> str:
        end = max(0, start + length)
        return f"{_clock(start, fraction, short)} --> {_clock(end, fraction, short)}"

    return st.builds(timing, starts, lengths, short)


# Malformed clocks: huge or negative fields, other digits, missing parts.
odd_fields = st.sampled_from(
    ["", "0", "000", "9999", "99999999999999999999", "-1", "1e9", "٠١", "²", " 1", "1 "]
)
odd_clocks = st.builds(
    lambda h, m, s, ms, sep: f"{h}:{m}:{s}{sep}{ms}",
    odd_fields, odd_fields, odd_fields, odd_fields, st.sampled_from([",", ".", ":", ""]),
)  # fmt: skip
hostile_text = st.one_of(
    st.text(max_size=200),
    st.integers(1, 3_000).map(lambda n: "<" * n),
    st.integers(1, 3_000).map(lambda n: "a<b" * (n // 3 + 1)),
    st.integers(1, 20_000).map(lambda n: "\\" * n),
    st.integers(1, 20_000).map(lambda n: "x" * n),
    st.text(st.characters(max_codepoint=0x1F), max_size=200),  # control characters, \r, \0
    st.sampled_from(["<b>bold</b>", "<c.yellow>hi</c>", "<00:00:01.000>", "&amp;&lt;&nbsp;",
                     "{\\an8}top", "NOTE x", "WEBVTT", "-->", "1", "\ufeff"]),
)  # fmt: skip


def _often(usual: st.SearchStrategy[str], odd: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`usual` seven times in eight, `odd` otherwise (so that many files get past their cues)."""
    return st.sampled_from([True] * 7 + [False]).flatmap(lambda u: usual if u else odd)


def cues(fraction: str) -> st.SearchStrategy[str]:
    odd_timing = st.builds(
        lambda a, arrow, b, tail: f"{a}{arrow}{b}{tail}",
        odd_clocks, st.sampled_from(["-->", " -> ", " --> --> ", "", " --> "]), odd_clocks,
        st.sampled_from(["", " align:start position:10%", " " * 50, "\x00"]),
    )  # fmt: skip
    return st.builds(
        lambda index, time, lines: "\n".join([index, time, *lines]) + "\n",
        _often(st.integers(1, 10**6).map(str), st.one_of(st.just(""), hostile_text)),
        _often(good_timings(fraction), st.one_of(odd_timing, hostile_text)),
        st.lists(_often(st.just("Hello there"), hostile_text), min_size=1, max_size=3),
    )


@st.composite
def caption_files(draw: st.DrawFn, kind: str) -> str:
    """An SRT or WebVTT file of hostile cues (line ends of every kind), or hostile text."""
    body = draw(st.lists(cues("," if kind == "srt" else "."), min_size=1, max_size=6))
    text = draw(_often(st.just("\n"), st.sampled_from(["", "\n\n", "\r\n"]))).join(body)
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = text.replace("\n", ending)
    if kind == "vtt" and draw(st.sampled_from([True, True, True, False])):
        text = "WEBVTT" + draw(st.sampled_from(["", " - title", "\ufeff"])) + ending * 2 + text
    return draw(_often(st.just(text), st.one_of(hostile_text, st.text(max_size=1000))))


@given(st.sampled_from(sorted(READERS)), st.data())
def test_a_caption_file_raises_only_an_input_error_naming_it(source: str, data) -> None:
    text = data.draw(caption_files("vtt" if source.endswith("vtt_url") else "srt"), label="file")
    try:
        with confined_here():
            words = READERS[source](text, source, max_seconds=MAX_SECONDS)
    except InputError as exc:
        assert exc.source == source and str(exc).startswith(f"{source}: "), str(exc)
        assert "\n" not in str(exc)
        event(f"{source}: refused")
        return
    event(f"{source}: {'some' if words else 'no'} words")
    for word in words:
        assert math.isfinite(word.start) and math.isfinite(word.end), word
        assert 0 <= word.start <= word.end <= MAX_SECONDS + 1e-6, word
        assert word.text and "\n" not in word.text, word
