"""Captions: timed words in, ASS for libass to burn into the picture and WebVTT to ship beside it.

Where the words come from (all are lists of `Word` on some clock):

- a transcript object, as the speech-to-text services write it: `{"words": [...]}` (OpenAI and
  Whisper `verbose_json` with word granularity, ElevenLabs Scribe), `{"segments": [{"words":
  [...]}]}` (Whisper with segments), or a bare list; a word is `{"word" or "text", "start",
  "end"}`, and ElevenLabs' `{"type": "spacing"}` entries are skipped;
- an SRT or WebVTT file (cues, no word times: each cue's time is shared out over its words by
  their length, so `highlight` and `karaoke` still move through the line).

A clip's transcript is timed on that clip's source; `place` moves it onto the output timeline
(trim, shift, clip to the clip's window). `group_lines` breaks words into caption lines, and
`ass_document` writes them in one of three styles: `static` (the line as it is), `highlight` (the
word being spoken in another colour: one event per word state) and `karaoke` (the line fills as
it is spoken: `\\kf`).

The text is the end user's, so it can never become styling: ASS has no general escape, so a
backslash gets an invisible WORD JOINER after it (libass then draws it as a backslash and `\\N`
stays two characters), braces are written as libass's `\\{` and `\\}` escapes, and newlines,
tabs and other control characters become spaces.

The style names a font family (`CaptionStyle.font`); fonts.py finds the operator's fonts and
writes the fontconfig file through which libass finds that family and, character by
character, a family for what it lacks.

Over 300 lines on purpose: every caption source (words, transcripts, SRT, WebVTT), the
timeline mapping and both outputs (ASS, WebVTT) share one `Word` and one escaping rule;
kept together so the rule that user text is never markup is in one file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, get_args

from worker.errors import InputError, PayloadError
from worker.media.confine import child_only
from worker.media.picture.caption_layout import (
    ROW_WIDTH,
    Measure,
    Row,
    Segment,
    break_rows,
    estimate_width,
    join_words,
    joined_without_space,
    row_text,
)

FONT_DIR = Path(__file__).with_name("fonts")

# The payload's `captions.style` and `captions.position` (worker/payload/models.py imports them).
CaptionStyleName = Literal["static", "highlight", "karaoke", "pop", "word_box"]
CaptionPosition = Literal["bottom", "center", "top"]
STYLES: tuple[CaptionStyleName, ...] = get_args(CaptionStyleName)
LAYERED: tuple[CaptionStyleName, ...] = ("pop", "word_box")  # the spoken word as a second event
POSITIONS: tuple[CaptionPosition, ...] = get_args(CaptionPosition)

MAX_WORD_CHARS = 200  # longer "words" are cut for display: a caption line must fit a frame
MAX_CAPTION_WORDS = 10_000  # words (or cues) one job's captions may hold, every source together
MAX_CAPTION_TEXT = 1_000  # characters in one word or one cue; more is refused, naming the source
MAX_WORD_SECONDS = 60.0  # how long one timed word may last; more is refused, naming the source
LINE_GAP = 1.0  # seconds of silence that end a caption line even before max_words
LINGER = 0.4  # seconds a line stays after its last word, unless the next line starts sooner
SENTENCE_END = (".", "!", "?", "…", "。", "！", "？")
_WORD_JOINER = "\u2060"
_ALIGNMENT = {"bottom": 2, "center": 5, "top": 8}  # ASS numpad alignment, centred horizontally
# Default text height (fraction of the frame's height) and gap to the edge, by orientation:
# 0.075 is a 54 px line at 720p (cap height about 37 px), 0.045 of a 1920 px portrait frame is
# 86 px (8% of its width), both read on a phone held either way; a portrait frame keeps its
# captions 18% above the bottom, clear of the short-video apps' buttons and descriptions.
SIZE_LANDSCAPE, SIZE_PORTRAIT = 0.075, 0.045
MARGIN_LANDSCAPE, MARGIN_PORTRAIT = 0.06, 0.18
POP_SCALE = 115  # percent: how large the spoken word grows in `pop`
POP_MS = (90, 220)  # it grows over the first 90 ms of its word and is back by 220 ms
_COLOUR = re.compile(r"^#?([0-9A-Fa-f]{6})$")


@dataclass(frozen=True)
class Word:
    """One spoken word and when it is heard, in seconds on some clock."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Line:
    """One caption block: the words shown together, how long the block is on screen, and its
    rows (caption_layout.py; empty until laid out: then all words on one row)."""

    words: tuple[Word, ...]
    start: float
    end: float
    rows: tuple[Row, ...] = ()

    @property
    def text(self) -> str:
        """The words as one run of text (spaced where their scripts use spaces)."""
        return join_words([w.text for w in self.words])

    def shown_rows(self) -> tuple[Row, ...]:
        if self.rows:
            return self.rows
        texts = [w.text for w in self.words]
        return (tuple(Segment(n, t, n > 0 and not joined_without_space(texts[n - 1], t))
                      for n, t in enumerate(texts)),)  # fmt: skip

    def row_texts(self) -> list[str]:
        return [row_text(row) for row in self.shown_rows()]


@dataclass(frozen=True)
class CaptionStyle:
    """How captions look; sizes are fractions of the frame, colours `#RRGGBB`."""

    style: CaptionStyleName = "static"
    position: CaptionPosition = "bottom"
    size: float | None = None  # text height, fraction of the frame's height (None: by shape)
    margin: float | None = None  # gap to the `position` edge, fraction of the frame's height
    color: str = "#FFFFFF"
    highlight_color: str = "#FFD400"
    uppercase: bool = False
    max_words: int = 4
    outline: bool = True
    box: bool = False
    font: str = "Noto Sans"  # a family of the worker's fonts (fonts.py), as libass finds it

    def font_size(self, width: int, height: int) -> int:
        """The text height in pixels: `size`, or the default for the frame's orientation."""
        portrait = height > width
        fraction = self.size if self.size is not None else (
            SIZE_PORTRAIT if portrait else SIZE_LANDSCAPE
        )  # fmt: skip
        return max(8, round(fraction * height))

    def margin_pixels(self, width: int, height: int) -> int:
        """The gap between the `position` edge and the captions (none when centred)."""
        if self.position == "center":
            return 0
        portrait = height > width
        fraction = self.margin if self.margin is not None else (
            MARGIN_PORTRAIT if portrait else MARGIN_LANDSCAPE
        )  # fmt: skip
        return round(fraction * height)


# ---- words from transcripts ------------------------------------------------------------------


def words_from_transcript(
    raw: object, where: str, *, max_words: int, max_seconds: float = math.inf
) -> list[Word]:
    """The words of a transcript object (see the module's docstring), checked.

    A word's times are at most `max_seconds` (the payload passes MAX_OUTPUT_SECONDS).
    Raises PayloadError naming the exact entry (`{where}.words[3].start: …`).
    """
    entries, path = _word_entries(raw, where)
    if len(entries) > max_words:
        raise PayloadError(path, f"has {len(entries)} words; at most {max_words} are allowed")
    words = []
    for n, entry in enumerate(entries):
        word = _word(entry, f"{path}[{n}]", max_seconds)
        if word is not None:
            words.append(word)
    return words


def _word_entries(raw: object, where: str) -> tuple[list[object], str]:
    """The flat list of word entries, and the path to name it by."""
    if isinstance(raw, list):
        return raw, where
    if not isinstance(raw, Mapping):
        raise PayloadError(
            where, 'must be a transcript object like {"words": [{"word", "start", "end"}]} '
            "or a list of words"
        )  # fmt: skip
    if raw.get("words") is not None:
        words = raw["words"]
        if not isinstance(words, list):
            raise PayloadError(f"{where}.words", "must be a list of words")
        return words, f"{where}.words"
    segments = raw.get("segments")
    if isinstance(segments, list):
        return _segment_words(segments, f"{where}.segments"), f"{where}.segments[].words"
    raise PayloadError(where, 'needs "words" (a list of timed words) or "segments" with words')


def _segment_words(segments: list[object], where: str) -> list[object]:
    found: list[object] = []
    for n, segment in enumerate(segments):
        if not isinstance(segment, Mapping) or not isinstance(segment.get("words"), list):
            raise PayloadError(f"{where}[{n}].words", "must be a list of timed words")
        found.extend(segment["words"])
    return found


def _word(entry: object, where: str, max_seconds: float) -> Word | None:
    """One checked word; None for entries that are not words (ElevenLabs' spacing)."""
    if not isinstance(entry, Mapping):
        raise PayloadError(
            where, 'must be an object like {"word": "Hello", "start": 0.2, "end": 0.5}'
        )
    if entry.get("type") in ("spacing", "audio_event"):
        return None
    text = entry.get("word", entry.get("text"))
    if not isinstance(text, str):
        raise PayloadError(f"{where}.word", 'is required: the word\'s text ("word" or "text")')
    if len(text) > MAX_CAPTION_TEXT:
        raise PayloadError(
            f"{where}.word", f"has {len(text)} characters; a word may have at most "
            f"{MAX_CAPTION_TEXT}"
        )  # fmt: skip
    start = _seconds(entry.get("start"), f"{where}.start", max_seconds)
    end = _seconds(entry.get("end"), f"{where}.end", max_seconds)
    if end < start:
        raise PayloadError(f"{where}.end", f"must not be before start ({start:g} s), got {end:g} s")
    if end - start > MAX_WORD_SECONDS:
        raise PayloadError(
            f"{where}.end", f"makes the word last {end - start:g} s; a word may last at most "
            f"{MAX_WORD_SECONDS:g} s"
        )  # fmt: skip
    text = clean_text(text)[:MAX_WORD_CHARS]
    return Word(text, start, end) if text else None


def _seconds(value: object, where: str, most: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(where, "must be a number of seconds")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not math.isfinite(number) or number < 0:
        raise PayloadError(where, "must be a finite number of seconds, 0 or more")
    if number > most:
        raise PayloadError(
            where, f"must be at most {most:.15g} seconds (MAX_OUTPUT_SECONDS), got {number:.15g}"
        )
    return number


def clean_text(text: str) -> str:
    """Control characters (newlines, tabs, escapes) as single spaces, outer spaces trimmed."""
    spaced = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)
    return " ".join(spaced.split())


# ---- words from SRT and WebVTT ---------------------------------------------------------------
#
# A caption file is the end user's bytes: these readers run only in the confined caption child
# (caption_child.py; tests/test_imports.py holds it), in time linear in the file's size (no
# pattern here can backtrack over a line: the tag pattern cannot span a `<`), and refuse a file
# past the bounds before its words are made: MAX_CAPTION_WORDS cues, MAX_CAPTION_TEXT
# characters a cue, no time past the job's MAX_OUTPUT_SECONDS.

_SRT_TIME = re.compile(
    r"^\s*(\d{1,3}):(\d{2}):(\d{2})[,.](\d{1,3})\s*-->\s*(\d{1,3}):(\d{2}):(\d{2})[,.](\d{1,3})"
)
_VTT_TIME = re.compile(
    r"^\s*(?:(\d{1,3}):)?(\d{2}):(\d{2})\.(\d{3})\s*-->\s*(?:(\d{1,3}):)?(\d{2}):(\d{2})\.(\d{3})"
)
_VTT_TAG = re.compile(r"<[^<>]*>")  # `[^<>]`, not `[^>]`: many `<` and no `>` stay linear
_VTT_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&nbsp;": " ", "&lrm;": "", "&rlm;": ""}


@dataclass(frozen=True)
class Cue:
    """One cue of a caption file, as authored: its text and its time on the output timeline."""

    text: str
    start: float
    end: float
    line: int  # where its timing line is, for errors


@child_only
def words_from_srt(text: str, source: str, *, max_seconds: float) -> list[Word]:
    """The words of an SRT file; a malformed or oversized cue raises InputError naming it."""
    return words_from_cues(cues_from_srt(text, source, max_seconds=max_seconds), source)


@child_only
def words_from_vtt(text: str, source: str, *, max_seconds: float) -> list[Word]:
    """The words of a WebVTT file (tags stripped); a malformed cue raises InputError."""
    return words_from_cues(cues_from_vtt(text, source, max_seconds=max_seconds), source)


@child_only
def cues_from_srt(text: str, source: str, *, max_seconds: float) -> list[Cue]:
    lines = _lines(text)
    cues: list[Cue] = []
    n = 0
    while n < len(lines):
        if not lines[n].strip():
            n += 1
            continue
        if lines[n].strip().isdigit():  # the cue's number
            n += 1
        match = _SRT_TIME.match(lines[n]) if n < len(lines) else None
        if match is None:
            raise InputError(
                source, f"line {n + 1} is not a valid SRT time range (expected "
                "00:00:01,000 --> 00:00:02,500); check that the file is SRT"
            )  # fmt: skip
        timing = n + 1
        start, end = _clock(match.groups()[:4]), _clock(match.groups()[4:])
        n, body = _cue_text(lines, n + 1)
        cues.append(_cue(body, start, end, source, timing, max_seconds))
        _check_cue_count(cues, source)
    return cues


@child_only
def cues_from_vtt(text: str, source: str, *, max_seconds: float) -> list[Cue]:
    lines = _lines(text)
    if not lines or not lines[0].startswith("WEBVTT"):
        raise InputError(source, 'line 1 must start with "WEBVTT"; check that the file is WebVTT')
    cues: list[Cue] = []
    n = 1
    while n < len(lines):
        line = lines[n]
        if not line.strip():
            n += 1
        elif line.startswith(("NOTE", "STYLE", "REGION")):
            n = _skip_block(lines, n)
        else:
            match = _VTT_TIME.match(line)
            if match is None and n + 1 < len(lines) and _VTT_TIME.match(lines[n + 1]):
                n, match = n + 1, _VTT_TIME.match(lines[n + 1])  # `line` was the cue's identifier
            if match is None:
                raise InputError(source, f"line {n + 1} is not a valid WebVTT cue timing "
                                 "(expected 00:01.000 --> 00:02.500)")  # fmt: skip
            groups, timing = match.groups(), n + 1
            start = _clock(("0" if groups[0] is None else groups[0], *groups[1:4]))
            end = _clock(("0" if groups[4] is None else groups[4], *groups[5:8]))
            n, body = _cue_text(lines, n + 1)
            cues.append(_cue(_vtt_plain(body), start, end, source, timing, max_seconds))
            _check_cue_count(cues, source)
    return cues


def _cue(text: str, start: float, end: float, source: str, line: int, limit: float) -> Cue:
    """A cue, checked: its times in order and within the job's length, its text not too long."""
    if end < start:
        raise InputError(source, f"the cue at line {line} ends before it starts")
    if end > limit:
        raise InputError(
            source, f"the cue at line {line} ends at {end:g} s, past the most a video may last "
            f"({limit:g} s, MAX_OUTPUT_SECONDS)"
        )  # fmt: skip
    text = clean_text(text)
    if len(text) > MAX_CAPTION_TEXT:
        raise InputError(
            source, f"the cue at line {line} has {len(text)} characters; a cue may have at most "
            f"{MAX_CAPTION_TEXT}"
        )  # fmt: skip
    return Cue(text, start, end, line)


def _check_cue_count(cues: list[Cue], source: str) -> None:
    if len(cues) > MAX_CAPTION_WORDS:
        raise InputError(source, f"has more than {MAX_CAPTION_WORDS} cues; at most "
                         f"{MAX_CAPTION_WORDS} are allowed")  # fmt: skip


def words_from_cues(cues: Sequence[Cue], source: str) -> list[Word]:
    """Every cue's words, its time shared out over them by their length (cues carry no word
    times), refused past MAX_CAPTION_WORDS words."""
    words: list[Word] = []
    for cue in cues:
        words.extend(_spread(cue))
        if len(words) > MAX_CAPTION_WORDS:
            raise InputError(source, f"has more than {MAX_CAPTION_WORDS} words; at most "
                             f"{MAX_CAPTION_WORDS} are allowed in one job")  # fmt: skip
    return words


def _lines(text: str) -> list[str]:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _skip_block(lines: list[str], n: int) -> int:
    while n < len(lines) and lines[n].strip():
        n += 1
    return n


def _cue_text(lines: list[str], n: int) -> tuple[int, str]:
    """The cue's text lines, joined, and the line number after them."""
    body = []
    while n < len(lines) and lines[n].strip():
        body.append(lines[n])
        n += 1
    return n, " ".join(body)


def _vtt_plain(text: str) -> str:
    text = _VTT_TAG.sub("", text)
    for entity, char in _VTT_ENTITIES.items():
        text = text.replace(entity, char)
    return text


def _clock(parts: Sequence[str]) -> float:
    hours, minutes, seconds, fraction = parts
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction.ljust(3, "0")) / 1000


def _spread(cue: Cue) -> list[Word]:
    """A cue's words with its time shared out by their length."""
    tokens = cue.text.split()
    if not tokens:
        return []
    total = sum(len(t) for t in tokens)
    words, at = [], cue.start
    for token in tokens:
        length = (cue.end - cue.start) * len(token) / total
        words.append(Word(token[:MAX_WORD_CHARS], at, at + length))
        at += length
    return words


# ---- onto the output timeline ------------------------------------------------------------------


def place(
    words: Sequence[Word], *, source_start: float, source_end: float | None, offset: float
) -> list[Word]:
    """Words timed on a clip's source, moved to the output: only what the trim keeps, cut to
    the kept window, shifted so `source_start` lands at `offset`."""
    shift = offset - source_start
    placed = []
    for word in words:
        if word.end <= source_start or (source_end is not None and word.start >= source_end):
            continue  # outside the part of the clip that is played
        start = max(word.start, source_start)
        end = word.end if source_end is None else min(word.end, source_end)
        placed.append(Word(word.text, start + shift, end + shift))
    return placed


def group_lines(words: Sequence[Word], max_words: int) -> list[Line]:
    """Caption lines of at most `max_words`, broken early at a sentence's end or a pause.

    One line is on screen at a time: a line stays up to LINGER seconds after its last word but
    ends where the next begins, and a line the next one starts with (words all timed at once)
    is dropped. However the words overlap, at most one line is ever drawn."""
    ordered = sorted(words, key=lambda w: (w.start, w.end))
    groups: list[list[Word]] = []
    for word in ordered:
        last = groups[-1] if groups else None
        if (
            last is None
            or len(last) >= max_words
            or word.start - last[-1].end > LINE_GAP
            or last[-1].text.endswith(SENTENCE_END)
        ):
            groups.append([word])
        else:
            last.append(word)
    lines = []
    for n, group in enumerate(groups):
        end = max(w.end for w in group) + LINGER
        if n + 1 < len(groups):
            end = min(end, groups[n + 1][0].start)
        if end > group[0].start:
            lines.append(Line(tuple(group), group[0].start, end))
    return lines


def cue_lines(cues: Sequence[Cue]) -> list[Line]:
    """One block per cue, as authored: its words (its time shared out over them) shown during
    its own time; `max_words` does not apply."""
    return [Line(tuple(_spread(cue)), cue.start, cue.end) for cue in cues if cue.end > cue.start]


def one_at_a_time(lines: Sequence[Line]) -> list[Line]:
    """The blocks in order of their start, each ending where the next begins (a block the
    next one starts with is dropped): one block on screen at a time, each within its time."""
    ordered = sorted(lines, key=lambda line: line.start)
    shown = []
    for n, line in enumerate(ordered):
        end = min(line.end, ordered[n + 1].start) if n + 1 < len(ordered) else line.end
        if end > line.start:
            shown.append(replace(line, end=end))
    return shown


def lay_out(
    lines: Sequence[Line], style: CaptionStyle, width: int, height: int,
    measure: Measure = estimate_width,
) -> list[Line]:  # fmt: skip
    """Each block broken into rows (at most two, each within ROW_WIDTH of the frame); a block
    too long for two rows becomes consecutive blocks within its own time."""
    max_width = ROW_WIDTH * width / style.font_size(width, height)
    laid: list[Line] = []
    for line in lines:
        shown = _upper(line) if style.uppercase else line
        laid += _parts(shown, break_rows([w.text for w in shown.words], max_width, measure))
    return laid


def _parts(line: Line, blocks: Sequence[Sequence[Row]]) -> list[Line]:
    """The consecutive blocks of one line, each with its own words and time: a part begins
    when its first word begins (at the line's start for the first), and ends where the next
    begins (at the line's end for the last)."""
    spans = [(min(s.word for row in b for s in row), max(s.word for row in b for s in row))
             for b in blocks]  # fmt: skip
    starts = _part_starts(line, spans)
    parts = []
    for k, block in enumerate(blocks):
        end = starts[k + 1] if k + 1 < len(blocks) else line.end
        if end <= starts[k]:
            continue
        first, last = spans[k]
        rows = tuple(tuple(replace(s, word=s.word - first) for s in row) for row in block)
        parts.append(Line(line.words[first : last + 1], starts[k], end, rows))
    return parts


def _part_starts(line: Line, spans: Sequence[tuple[int, int]]) -> list[float]:
    """When each part begins: its first word's start, or the middle of a word cut between two
    parts, always after the part before it (shared out evenly when the words say otherwise)."""
    starts = [line.start]
    for k, (first, _) in enumerate(spans[1:], start=1):
        word = line.words[first]
        at = (word.start + word.end) / 2 if first == spans[k - 1][1] else word.start
        if not starts[-1] < at < line.end:
            at = starts[-1] + (line.end - starts[-1]) / (len(spans) - k + 1)
        starts.append(at)
    return starts


# ---- ASS -----------------------------------------------------------------------------------------


def ass_text(text: str) -> str:
    """User text that libass draws exactly as written: never a tag, never a line break."""
    text = clean_text(text).replace("\\", "\\" + _WORD_JOINER)
    return text.replace("{", "\\{").replace("}", "\\}")


def ass_colour(colour: str, alpha: int = 0) -> str:
    """`#RRGGBB` as ASS's `&HAABBGGRR` (alpha 0 is opaque)."""
    match = _COLOUR.match(colour)
    if match is None:
        raise ValueError(f"not a #RRGGBB colour: {colour!r}")
    rgb = match.group(1).upper()
    return f"&H{alpha:02X}{rgb[4:6]}{rgb[2:4]}{rgb[0:2]}"


def check_colour(value: object, where: str) -> str:
    """A payload colour: `#RRGGBB` (the `#` may be left out); PayloadError otherwise."""
    if not isinstance(value, str) or _COLOUR.match(value) is None:
        raise PayloadError(where, 'must be a colour like "#FFD400"')
    return "#" + value.lstrip("#").upper()


@child_only
def ass_document(lines: Sequence[Line], style: CaptionStyle, width: int, height: int) -> str:
    """A complete ASS script for a `width` x `height` video (see `ass_lines`)."""
    return "".join(f"{line}\n" for line in ass_lines(lines, style, width, height))


@child_only
def ass_lines(lines: Sequence[Line], style: CaptionStyle, width: int, height: int) -> Iterator[str]:
    """The ASS script line by line, so a writer can stop at its size limit before the whole
    document exists (highlight writes a block's text once per word: it grows as words times
    block length). Blocks not yet laid out (no rows) are laid out here."""
    yield from _header(style, width, height)
    for line in lines:
        for part in [line] if line.rows else lay_out([line], style, width, height):
            yield from _events(part, style)


def _upper(line: Line) -> Line:
    return replace(line, words=tuple(replace(w, text=w.text.upper()) for w in line.words))


def _header(style: CaptionStyle, width: int, height: int) -> list[str]:
    size = style.font_size(width, height)
    border = 3 if style.box else 1
    outline = (
        max(1, round(size * (0.25 if style.box else 0.08))) if style.outline or style.box else 0
    )
    shade = ass_colour("#000000", 0x60 if style.box else 0)
    margin_v = style.margin_pixels(width, height)
    margin_h = round(width * 0.05)
    # Encoding -1: each run's direction from its own text, so a right-to-left line keeps its
    # order however its words are coloured (libass starts a new run at every style change)
    place = f"{_ALIGNMENT[style.position]},{margin_h},{margin_h},{margin_v},-1"
    common = f"{shade},{shade},-1,0,0,0,100,100,0,0,{border},{outline},0,{place}"
    base, lit = ass_colour(style.color), ass_colour(style.highlight_color)
    # word_box's box: every glyph's opaque box (BorderStyle 3), text and boxes hidden but the
    # spoken word's; the same face and size as Caption, so the same layout
    pad, hidden = max(2, round(size * 0.1)), ass_colour(style.highlight_color, 0xFF)
    boxed = f"{hidden},{shade},-1,0,0,0,100,100,0,0,3,{pad},0,{place}"
    return [
        "[Script Info]",
        "ScriptType: v4.00+",
        f"PlayResX: {width}",
        f"PlayResY: {height}",
        "WrapStyle: 2",  # no wrapping by libass: the rows are broken here (`\\N`)
        "ScaledBorderAndShadow: yes",
        "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
        f"Style: Caption,{style.font},{size},{base},{base},{common}",
        # karaoke fills from SecondaryColour to PrimaryColour as each word is sung
        f"Style: Karaoke,{style.font},{size},{lit},{base},{common}",
        f"Style: Box,{style.font},{size},{hidden},{hidden},{boxed}",
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]


# Every style but static draws each word (and each space between words) as its own run, in
# every state alike (`_markup`): libass lays out a run at a time, so were the runs to change as
# the spoken word moves, a right-to-left line would reorder. Colours, alpha and the pop's scale
# then change inside runs that never move. The runs differ by an invisible shadow colour (the
# shadow is 0 wide), which is what makes libass start a new one.


def _events(line: Line, style: CaptionStyle) -> list[str]:
    base, lit = ass_colour(style.color), ass_colour(style.highlight_color)
    if style.style == "highlight":
        return [_dialogue(s, e, "Caption", _markup(line, _lit(n, lit, base)))
                for n, s, e in _states(line)]  # fmt: skip
    if style.style == "karaoke":
        return [_dialogue(line.start, line.end, "Karaoke", _markup(line, _karaoke(line)))]
    if style.style == "pop":
        return _pop_events(line, lit, base)
    if style.style == "word_box":
        return _box_events(line)
    rows = "\\N".join(ass_text(text) for text in line.row_texts())
    return [_dialogue(line.start, line.end, "Caption", rows)]


def _states(line: Line) -> list[tuple[int, float, float]]:
    """Each word's turn as the spoken word: (its number, from, until the next word's)."""
    states = []
    words = line.words
    for n, word in enumerate(words):
        start = line.start if n == 0 else max(word.start, line.start)
        end = min(words[n + 1].start, line.end) if n + 1 < len(words) else line.end
        if end > start:
            states.append((n, start, end))
    return states


Tag = Callable[[int | None], str]  # the override tags for word n's runs (None: a space)


def _markup(line: Line, tag: Tag) -> str:
    """The block's rows, every word and every space its own run, `tag` inside each run's
    override block; rows joined by `\\N`."""
    rows = []
    for row in line.shown_rows():
        parts = []
        for segment in row:
            if segment.space:
                parts.append(f"{{\\4c&H000000&{tag(None)}}} ")
            run = f"\\4c&H00000{1 + segment.word % 2}&"
            parts.append(f"{{{run}{tag(segment.word)}}}{ass_text(segment.text)}")
        rows.append("".join(parts))
    return "\\N".join(rows)


def _lit(spoken: int, lit: str, base: str) -> Tag:
    return lambda n: f"\\1c{lit if n == spoken else base}" if n is not None else ""


def _karaoke(line: Line) -> Tag:
    """`\\k` for the pauses and `\\kf` for the words (at a word's first run), in centiseconds
    from the block's start."""
    at, seen = line.start, set()

    def tag(n: int | None) -> str:
        nonlocal at
        if n is None or n in seen:
            return ""
        seen.add(n)
        word = line.words[n]
        gap = _cs(word.start) - _cs(at)
        fill = max(1, _cs(word.end) - _cs(max(word.start, at)))
        at = max(at, word.end)
        return (f"\\k{gap}" if gap > 0 else "") + f"\\kf{fill}"

    return tag


def _pop_events(line: Line, lit: str, base: str) -> list[str]:
    """Per spoken word, two events: the block without it, and over it the block with only it
    showing, in the highlight colour, growing and shrinking back. The block is centred, so the
    word growing by a fraction of its width moves the (hidden) rest by half that and the word
    stays centred on itself; the visible block never moves."""
    grow, back = POP_MS
    scale = f"\\fscx{POP_SCALE}\\fscy{POP_SCALE}"
    popped = f"\\alpha&H00&\\1c{lit}\\t(0,{grow},{scale})\\t({grow},{back},\\fscx100\\fscy100)"
    events = []
    for n, start, end in _states(line):
        rest = _markup(line, _only(n, "\\alpha&HFF&", f"\\alpha&H00&\\1c{base}"))
        word = _markup(line, _only(n, popped, "\\alpha&HFF&\\fscx100\\fscy100"))
        events += [
            _dialogue(start, end, "Caption", rest),
            _dialogue(start, end, "Caption", word, 1),
        ]
    return events


def _box_events(line: Line) -> list[str]:
    """The block once, and under it, per spoken word, the Box style's boxes with only that
    word's showing (soft-edged, so its corners round)."""
    boxes = [
        _dialogue(s, e, "Box", "{\\blur3}" + _markup(line, _only(n, "\\3a&H00&", "\\3a&HFF&")))
        for n, s, e in _states(line)
    ]
    return [*boxes, _dialogue(line.start, line.end, "Caption", _markup(line, _only(-1, "", "")), 1)]


def _only(spoken: int, tags: str, others: str) -> Tag:
    """`tags` for the spoken word's runs, `others` for every other run (spaces included)."""

    def tag(n: int | None) -> str:
        return tags if n == spoken else others

    return tag


def _cs(seconds: float) -> int:
    return round(seconds * 100)


def _dialogue(start: float, end: float, style: str, text: str, layer: int = 0) -> str:
    return f"Dialogue: {layer},{_ass_time(start)},{_ass_time(end)},{style},,0,0,0,,{text}"


def _ass_time(seconds: float) -> str:
    cs = _cs(max(0.0, seconds))
    hours, rest = divmod(cs, 360_000)
    minutes, rest = divmod(rest, 6_000)
    return f"{hours}:{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}"


# ---- WebVTT ----------------------------------------------------------------------------------


@child_only
def vtt_document(lines: Sequence[Line], *, uppercase: bool = False) -> str:
    """The captions as a WebVTT file, one cue per block (its rows on lines of their own), text
    escaped for HTML. The blocks are one at a time, so the cues never overlap."""
    cues = ["WEBVTT", ""]
    for line in lines:
        text = "\n".join(line.row_texts())
        text = text.upper() if uppercase else text
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        cues += [f"{_vtt_time(line.start)} --> {_vtt_time(line.end)}", escaped, ""]
    return "\n".join(cues)


def _vtt_time(seconds: float) -> str:
    ms = round(max(0.0, seconds) * 1000)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
