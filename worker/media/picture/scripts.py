"""The writing systems the contract names, and which one a character belongs to.

Two questions need a script: which scripts a font family covers (`video-worker fonts` lists
them), and, for text no installed font can draw, what to call it in the job's error ("has Thai
text (ไ)"). A family covers a script when it has every character of the script's `sample`,
letters common in everyday text. A character's script comes from the block `ranges` below, or
else from its Unicode name ("ETHIOPIC SYLLABLE HA" is Ethiopic); emoji count as one script,
called `emoji`, as the contract says.

Characters that are never drawn as glyphs (spaces, joiners, direction marks, variation
selectors, control characters) need no font: `IGNORABLE` lists them, and no check asks a font
for them.
"""

from __future__ import annotations

import bisect
import functools
import re
import sys
import unicodedata
from dataclasses import dataclass

Ranges = tuple[tuple[int, int], ...]  # inclusive (first, last) code points, sorted


@dataclass(frozen=True)
class Script:
    """A script as errors and `video-worker fonts` name it."""

    name: str  # lower case, as `video-worker fonts` lists it
    label: str  # as an error names it
    sample: str  # a family covers the script when it has all of these
    ranges: Ranges  # the blocks whose characters are said to be of this script


SCRIPTS: tuple[Script, ...] = (
    Script("latin", "Latin", "AZaz09Éé", ((0x0020, 0x024F), (0x1E00, 0x1EFF))),
    Script("greek", "Greek", "ΑΩαωάΣ", ((0x0370, 0x03FF), (0x1F00, 0x1FFF))),
    Script(
        "cyrillic",
        "Cyrillic",
        "АЯаяЖЁё",
        ((0x0400, 0x052F), (0x1C80, 0x1C8F), (0x2DE0, 0x2DFF), (0xA640, 0xA69F)),
    ),
    Script(
        "chinese",
        "Chinese or Japanese (Han)",
        "中文字幕汉语們",
        (
            (0x2E80, 0x2FDF),
            (0x3000, 0x303F),
            (0x3100, 0x312F),
            (0x31A0, 0x31BF),
            (0x3400, 0x4DBF),
            (0x4E00, 0x9FFF),
            (0xF900, 0xFAFF),
            (0xFE30, 0xFE4F),
            (0xFF00, 0xFF65),
            (0x20000, 0x3FFFF),
        ),
    ),
    Script(
        "japanese",
        "Japanese",
        "ひらがなカタカナ日本",
        ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F)),
    ),
    Script(
        "korean",
        "Korean",
        "한국어글",
        ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF)),
    ),
    Script(
        "arabic",
        "Arabic",
        "العربيةء",
        ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
    ),
    Script("hebrew", "Hebrew", "עברית", ((0x0590, 0x05FF), (0xFB1D, 0xFB4F))),
    Script("devanagari", "Devanagari", "हिन्दी", ((0x0900, 0x097F), (0xA8E0, 0xA8FF))),
    Script("thai", "Thai", "ภาษาไทย", ((0x0E00, 0x0E7F),)),
    Script(
        "emoji",
        "emoji",
        "😀🎉👍❤",
        ((0x2300, 0x23FF), (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0x1F000, 0x1FAFF)),
    ),
)

_UNDRAWN = {"Cc", "Cf", "Zs", "Zl", "Zp"}  # controls, format marks, spaces, separators
_SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))  # variation selectors pick a form, unseen


def script_of(char: str) -> str:
    """What an error calls the script of `char` ("Thai", "emoji", "Ethiopic")."""
    code = ord(char)
    for script in SCRIPTS:
        if any(first <= code <= last for first, last in script.ranges):
            return script.label
    category = unicodedata.category(char)
    if category in ("Co", "Cn", "Cs"):
        return "unassigned or private-use"
    if category[0] in "SPN":
        return {"S": "symbol", "P": "punctuation", "N": "number"}[category[0]]
    name = unicodedata.name(char, "")
    return name.split(" ")[0].title() if name else "unnamed"


def covered_scripts(ranges: Ranges) -> tuple[str, ...]:
    """The names of the scripts whose whole sample lies in `ranges`."""
    return tuple(s.name for s in SCRIPTS if all(within(ranges, ord(c)) for c in s.sample))


def within(ranges: Ranges, code: int) -> bool:
    """Whether `code` is in one of the sorted `ranges`."""
    at = bisect.bisect_right(ranges, (code, sys.maxunicode + 1)) - 1
    return at >= 0 and ranges[at][0] <= code <= ranges[at][1]


@functools.cache
def ignorable() -> Ranges:
    """Every code point that is never drawn as a glyph, as ranges (computed once: about a
    tenth of a second over all of Unicode)."""
    found: list[tuple[int, int]] = list(_SELECTORS)
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in _UNDRAWN:
            found.append((code, code))
    return merge(found)


def merge(ranges: list[tuple[int, int]] | Ranges) -> Ranges:
    """Sorted ranges with overlapping and touching ones joined."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return tuple(merged)


# ---- text no font covers (read in the caption child too: this module imports nothing heavy)


def uncovered_problem(char: str, script: str) -> str:
    """The sentence for text no font covers (the field or source is named before it)."""
    return f"has {script} text ({char} U+{ord(char):04X}), which no font of this worker covers"


def missing_pattern(coverage: Ranges) -> re.Pattern[str]:
    """A pattern matching any character outside `coverage`: one C-speed scan per text."""
    inside = "".join(f"\\U{first:08X}-\\U{last:08X}" for first, last in coverage)
    return re.compile(f"[^{inside}]")


def first_uncovered(text: str, missing: re.Pattern[str]) -> tuple[str, str] | None:
    found = missing.search(text)
    return None if found is None else (found.group(), script_of(found.group()))
