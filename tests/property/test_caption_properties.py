"""Properties of caption files (`captions.srt_url`, `captions.vtt_url`): whatever text a user
uploads, reading it raises only an InputError naming the source, and the words it gives have
finite times in order.

THE LEAD RE-POINTS THIS TEST: it is written against `words_from_srt(text, source)` and
`words_from_vtt(text, source)` in worker/media/captions.py as they are today; the caption
parsers are moving into the probe child (with linear-time tag stripping), and `READERS` below is
the one place that names them.

The sizes stay small (runs of up to 3,000 '<', lines of up to 20,000 characters): this is about
what is raised, not how long it takes; the VTT tag pattern `<[^>]*>` is quadratic in a run of
'<' without '>' (issue 15), which a property with a fixed budget cannot time, only pay for.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from hypothesis import event, given
from hypothesis import strategies as st

from worker.errors import InputError
from worker.media.captions import Word, words_from_srt, words_from_vtt

READERS: dict[str, Callable[[str, str], list[Word]]] = {
    "captions.srt_url": words_from_srt,
    "captions.vtt_url": words_from_vtt,
}


def good_clocks(fraction: str) -> st.SearchStrategy[str]:
    """Well-formed clocks: `HH:MM:SS{fraction}mmm` (hours up to the 3 digits the parsers take,
    minutes and seconds up to the 99 their patterns allow), and WebVTT's short `MM:SS.mmm`."""
    full = st.builds(
        lambda h, m, s, ms: f"{h:02d}:{m:02d}:{s:02d}{fraction}{ms:03d}",
        st.integers(0, 999), st.integers(0, 99), st.integers(0, 99), st.integers(0, 999),
    )  # fmt: skip
    short = st.builds(lambda m, s, ms: f"{m:02d}:{s:02d}.{ms:03d}",
                      st.integers(0, 99), st.integers(0, 99), st.integers(0, 999))  # fmt: skip
    return st.one_of(full, short) if fraction == "." else full


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
    """`usual` three times in four, `odd` otherwise (so most files get past their first cue)."""
    return st.sampled_from([True, True, True, False]).flatmap(lambda u: usual if u else odd)


def cues(fraction: str) -> st.SearchStrategy[str]:
    clock = _often(good_clocks(fraction), odd_clocks)
    timing = st.builds(
        lambda a, arrow, b, tail: f"{a}{arrow}{b}{tail}",
        clock, _often(st.just(" --> "), st.sampled_from(["-->", " -> ", " --> --> ", ""])),
        clock, st.sampled_from(["", " align:start position:10%", " " * 50, "\x00"]),
    )  # fmt: skip
    return st.builds(
        lambda index, time, lines: "\n".join([index, time, *lines]) + "\n",
        _often(st.integers(1, 10**6).map(str), st.one_of(st.just(""), hostile_text)),
        _often(timing, hostile_text),
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
        words = READERS[source](text, source)
    except InputError as exc:
        assert exc.source == source and str(exc).startswith(f"{source}: "), str(exc)
        assert "\n" not in str(exc)
        event(f"{source}: refused")
        return
    event(f"{source}: {'some' if words else 'no'} words")
    for word in words:
        assert math.isfinite(word.start) and math.isfinite(word.end), word
        assert 0 <= word.start <= word.end, word
        assert word.text and "\n" not in word.text, word
