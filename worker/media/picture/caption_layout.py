"""Caption rows that read well: at most two rows a block, each within the frame, balanced.

A caption block's words are cut into atoms (the pieces a row may break between): a word of a
script written with spaces is one atom; a word of a script without spaces (Chinese, Japanese,
Thai, ...) is one atom per character cluster, so a Japanese sentence that came as one "word"
still wraps, and punctuation that may not start a row (、。」) stays with the character before
it. A word wider than a row by itself is cut between characters as a last resort. Words join
with a space unless both sides are in a script without spaces (Whisper's Japanese tokens come
as separate words and must read as one run of text).

Widths are in font sizes (ASS `Fontsize` units). `estimate_width` guesses them from each
character's script (a per-script factor, on the wide side of the Noto and Source Sans faces);
the caller may pass any other `Measure` (the font's own advance widths, say) instead.

The breaker: everything on one row when it fits; otherwise the break that makes the two rows
most even, never leaving one word alone on the last row when another break fits; a block too
long for two rows becomes consecutive blocks, each balanced the same way.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Measure = Callable[[str], float]  # a text's width, in font sizes

MAX_ROWS = 2  # rows in one caption block
ROW_WIDTH = 0.9  # the widest a row may be, as a fraction of the frame's width

# Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, the CJK symbols and
# punctuation, kana, CJK ideographs, halfwidth and fullwidth forms.
_NO_SPACE = (
    (0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x2E80, 0x2FDF), (0x3000, 0x303F),
    (0x3040, 0x30FF), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF), (0x20000, 0x3FFFF),
)  # fmt: skip
# May not start a row (kinsoku): closing punctuation, small kana, the prolonged sound mark.
_NO_START = set(
    "、。，．,.!?！？：；:;)）」』】〉》〕]｝…‥・ー〜ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ"
)
_NO_END = set("(（「『【〈《〔[｛")  # may not end a row: opening brackets


@dataclass(frozen=True)
class Segment:
    """Part of one row: the text of (part of) the block's word number `word`, and whether a
    space stands before it on its row."""

    word: int
    text: str
    space: bool


Row = tuple[Segment, ...]


@dataclass(frozen=True)
class _Atom:
    word: int
    text: str
    width: float
    space: bool  # a space before it, unless it starts a row
    whole: bool  # it starts its word (a break before it is between words)


def no_space(char: str) -> bool:
    """Is `char` of a script written without spaces between words?"""
    code = ord(char)
    return any(low <= code <= high for low, high in _NO_SPACE)


def joined_without_space(left: str, right: str) -> bool:
    """Do two neighbouring words read with no space between them?"""
    if not left or not right:
        return True
    if right[0] in _NO_START and no_space(right[0]):
        return True
    return no_space(left[-1]) and no_space(right[0])


def join_words(texts: Sequence[str]) -> str:
    """The words as one run of text, spaced where their scripts use spaces."""
    out: list[str] = []
    for n, text in enumerate(texts):
        if n and not joined_without_space(texts[n - 1], text):
            out.append(" ")
        out.append(text)
    return "".join(out)


def estimate_width(text: str) -> float:
    """A text's width in font sizes, from each character's script."""
    return sum(_char_width(c) for c in text)


def _char_width(char: str) -> float:
    if char == " ":
        return 0.25
    category = unicodedata.category(char)
    if category in ("Mn", "Me", "Cf") or unicodedata.combining(char):
        return 0.0
    code = ord(char)
    if code >= 0x1F000 or 0x2600 <= code <= 0x27BF:
        return 1.15  # emoji and pictographs
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 0.9  # CJK ideographs, kana, Hangul, fullwidth forms
    if 0x0590 <= code <= 0x08FF:
        return 0.5  # Hebrew, Arabic, Syriac, Thaana
    if 0x0900 <= code <= 0x0DFF or 0x0E00 <= code <= 0x0EFF:
        return 0.6  # Indic scripts, Thai, Lao
    if category == "Lu":
        return 0.6
    if category.startswith("P"):
        return 0.3
    return 0.46  # Latin, Greek, Cyrillic lower case, digits: Noto Sans Bold's 0.42, and some


def break_rows(texts: Sequence[str], max_width: float, measure: Measure) -> list[list[Row]]:
    """The block's words as consecutive blocks of at most MAX_ROWS rows, each row within
    `max_width` (unless one character alone is wider), breaks balanced."""
    atoms = _atoms(texts, max_width, measure)
    if not atoms:
        return []
    space = measure(" ")
    blocks: list[list[Row]] = []
    for chunk in _chunks(atoms, max_width, space):
        blocks.append([_row(part) for part in _balanced(chunk, max_width, space)])
    return blocks


def _atoms(texts: Sequence[str], max_width: float, measure: Measure) -> list[_Atom]:
    atoms: list[_Atom] = []
    for n, text in enumerate(texts):
        space = n > 0 and not joined_without_space(texts[n - 1], text)
        pieces = _pieces(text, max_width, measure)
        for k, piece in enumerate(pieces):
            atoms.append(_Atom(n, piece, measure(piece), space and k == 0, k == 0))
    return atoms


def _pieces(text: str, max_width: float, measure: Measure) -> list[str]:
    """A word's atoms: itself, or its character clusters where it may break inside."""
    if not text:
        return []
    if not any(no_space(c) for c in text) and measure(text) <= max_width:
        return [text]
    clusters = _clusters(text)
    if not any(no_space(c) for c in text):
        return _fill(clusters, max_width, measure)  # a word wider than a row: cut it
    return clusters


def _clusters(text: str) -> list[str]:
    """Character clusters a row may break between: a base character with its marks; runs of
    letters of spaced scripts kept whole; kinsoku punctuation kept with its neighbour."""
    clusters: list[str] = []
    for char in text:
        if clusters and _sticks(clusters[-1], char):
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def _sticks(before: str, char: str) -> bool:
    """Must `char` stay on the same row as the cluster `before`?"""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Mc", "Me", "Cf"):
        return True
    if before[-1] == "\u200d" or before[-1] in _NO_END or char in _NO_START:
        return True
    spaced = not no_space(char) and not no_space(before[-1])
    return spaced and before[-1].isalnum() and char.isalnum()


def _fill(clusters: list[str], max_width: float, measure: Measure) -> list[str]:
    """Clusters joined greedily into pieces no wider than `max_width`."""
    pieces: list[str] = []
    for cluster in clusters:
        if pieces and measure(pieces[-1] + cluster) <= max_width:
            pieces[-1] += cluster
        else:
            pieces.append(cluster)
    return pieces


class _Widths:
    """Widths of runs of atoms in constant time (prefix sums): a block's breaks are found in
    time linear in its atoms, however many a 1,000-character cue has."""

    def __init__(self, atoms: Sequence[_Atom], space: float) -> None:
        self.atoms, self.space = atoms, space
        self.sums = [0.0]
        for atom in atoms:
            self.sums.append(self.sums[-1] + atom.width + (space if atom.space else 0.0))

    def of(self, start: int, end: int) -> float:
        """The width of atoms[start:end] on a row of their own."""
        lead = self.space if self.atoms[start].space else 0.0
        return self.sums[end] - self.sums[start] - lead


def _chunks(atoms: list[_Atom], max_width: float, space: float) -> list[list[_Atom]]:
    """Atoms in consecutive runs that fit MAX_ROWS rows each (rows filled greedily, breaking
    between words where a row allows it)."""
    rows = _greedy_rows(atoms, max_width, _Widths(atoms, space))
    return [
        [a for row in rows[n : n + MAX_ROWS] for a in row] for n in range(0, len(rows), MAX_ROWS)
    ]


def _greedy_rows(atoms: list[_Atom], max_width: float, widths: _Widths) -> list[list[_Atom]]:
    rows: list[list[_Atom]] = []
    start = 0
    while start < len(atoms):
        end = start + 1
        while end < len(atoms) and widths.of(start, end + 1) <= max_width:
            end += 1
        if end < len(atoms):
            end = _back_to_word_start(atoms, start, end)
        rows.append(atoms[start:end])
        start = end
    return rows


def _back_to_word_start(atoms: list[_Atom], start: int, end: int) -> int:
    """Move a break that falls inside a spaced word back to that word's start, if the row
    keeps something."""
    if atoms[end].whole or no_space(atoms[end].text[0]):
        return end
    back = end
    while back > start + 1 and not atoms[back].whole:
        back -= 1
    return back if atoms[back].whole else end


def _balanced(atoms: list[_Atom], max_width: float, space: float) -> list[list[_Atom]]:
    """One row if it fits; else the two-row break with the most even rows that fit."""
    widths = _Widths(atoms, space)
    if widths.of(0, len(atoms)) <= max_width or len(atoms) == 1:
        return [atoms]
    lone = _lone_from(atoms)
    best: tuple[float, int] | None = None
    for cut in range(1, len(atoms)):
        longest = max(widths.of(0, cut), widths.of(cut, len(atoms)))
        if longest > max_width:
            continue
        cost = longest + _penalty(atoms[cut], cut >= lone) * max_width
        if best is None or cost < best[0]:
            best = (cost, cut)
    cut = best[1] if best is not None else len(atoms) // 2
    return [atoms[:cut], atoms[cut:]]


def _lone_from(atoms: list[_Atom]) -> int:
    """The first cut that would leave one word alone on the last row (of three or more)."""
    last = atoms[-1].word
    if atoms[-1].word - atoms[0].word < 2:
        return len(atoms)
    first = len(atoms) - 1
    while first > 0 and atoms[first - 1].word == last:
        first -= 1
    return first


def _penalty(after: _Atom, lone: bool) -> float:
    """How much worse than an even break this one is: inside a spaced word (a last resort), or
    leaving one word alone on the last row."""
    penalty = 0.0
    if not after.whole and not no_space(after.text[0]):
        penalty += 4.0
    return penalty + (1.0 if lone else 0.0)


def _row(atoms: Sequence[_Atom]) -> Row:
    """The row's segments: the atoms of one word side by side joined into one."""
    segments: list[Segment] = []
    for n, atom in enumerate(atoms):
        if segments and segments[-1].word == atom.word and not atom.space:
            last = segments[-1]
            segments[-1] = Segment(last.word, last.text + atom.text, last.space)
        else:
            segments.append(Segment(atom.word, atom.text, atom.space and n > 0))
    return tuple(segments)


def row_text(row: Row) -> str:
    return "".join((" " if s.space else "") + s.text for s in row)
