"""The operator's fonts: which families the worker has, what each covers, and how FFmpeg finds
them.

    search folders: this package's fonts/, the pip font packages (our dependencies and any
    `fontpkg` family), the system's font folders, FONTS_DIR
      → every font file read once with fontTools (name, outlines, cmap)  → `FontSet`
      → fonts.conf for the job (`write_config`), which FFmpeg's libass reads by FONTCONFIG_FILE

Why a fonts.conf of our own: the FFmpeg the worker runs (imageio-ffmpeg's static build) has
libass with fontconfig, HarfBuzz and FriBidi built in, and fontconfig reads its configuration
from FONTCONFIG_FILE (else a built-in one naming /usr/share/fonts). libass draws a character
the chosen family lacks in the first family of fontconfig's `sans-serif` list that has it, so
per-character fallback works across every folder the configuration names. Ours names exactly
the folders read here, so the check (`first_uncovered`) and the renderer see the same fonts; it
puts Noto's families first in that list (otherwise DejaVu, where installed, draws Arabic),
and it leaves out bitmap-only fonts, which libass skips: Noto Color Emoji (CBDT) cannot be
drawn by libass, so emoji come from Noto Emoji, a monochrome outline font.

Reading the fonts costs about a second with Debian's Noto packages (367 faces), once per
process (`installed`); the cmap is read from its raw bytes as ranges (formats 4 and 12), which
is what the checks need and far faster than fontTools' glyph-name dictionary.

Fonts are the operator's: a payload names a family (`font`), never a file.
"""

from __future__ import annotations

import atexit
import functools
import importlib.metadata
import importlib.util
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from worker.log import get_logger
from worker.media.picture.scripts import (
    SCRIPTS,
    Ranges,
    covered_scripts,
    first_uncovered,
    ignorable,
    merge,
    missing_pattern,
    within,
)

BUNDLED_DIR = Path(__file__).with_name("fonts")  # Source Sans Pro Bold (OFL), Latin only
# pip packages of Noto fonts (SIL Open Font License 1.1) the worker depends on, by module name:
# Noto Sans for Latin, Greek, Cyrillic and most other scripts, Noto Emoji; Noto Sans CJK;
# Noto Serif. Any installed `fontpkg` family (entry point group below) is found too.
PIP_FONT_MODULES = ("manimgx_fonts", "manimgx_fonts_cjk", "fontpkg_noto_serif")
FONTPKG_GROUP = "fontpkg.family"
SYSTEM_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
# `font` names every worker understands, and the families they stand for (the first present).
ALIASES: Mapping[str, tuple[str, ...]] = {
    "sans": ("Noto Sans", "Source Sans Pro"),
    "serif": ("Noto Serif",),
}
# The order libass tries families in for a character the chosen one lacks (those present).
FALLBACK_ORDER = (
    "Noto Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK KR", "Noto Sans Arabic",
    "Noto Sans Hebrew", "Noto Sans Devanagari", "Noto Sans Thai", "Noto Emoji",
    "Noto Sans Symbols", "Noto Sans Symbols 2", "Source Sans Pro",
)  # fmt: skip
CONFIG_NAME = "fonts.conf"
MAX_LISTED = 8  # families an error lists before "…"

log = get_logger("video-worker.fonts")


@dataclass(frozen=True)
class Face:
    """One font face as read from its file: what libass would find it by and what it covers."""

    path: Path
    family: str
    ranges: Ranges


@dataclass(frozen=True)
class FontSet:
    """The fonts one worker has: folders, families and what they cover, read once."""

    dirs: tuple[Path, ...]
    families: Mapping[str, Ranges]  # family name → the code points its faces cover
    coverage: Ranges = field(init=False)  # every family together, plus what needs no glyph
    missing: re.Pattern[str] = field(init=False, repr=False)  # a character outside coverage

    def __post_init__(self) -> None:
        every = [r for ranges in self.families.values() for r in ranges]
        object.__setattr__(self, "coverage", merge([*every, *ignorable()]))
        object.__setattr__(self, "missing", missing_pattern(self.coverage))

    def resolve(self, name: str) -> str | None:
        """The family a payload's `font` names (an alias or a family, any case), or None."""
        wanted = name.strip().casefold()
        for real in ALIASES.get(wanted, ()):
            if real in self.families:
                return real
        return next((f for f in self.families if f.casefold() == wanted), None)

    def names(self) -> tuple[str, ...]:
        """What `font` may say: the aliases this worker can honour, then every family."""
        aliases = [a for a in ALIASES if self.resolve(a) is not None]
        return (*aliases, *sorted(self.families))

    def scripts(self, family: str) -> tuple[str, ...]:
        """The contract's scripts `family` covers by itself (fallback aside)."""
        return covered_scripts(self.families[family])

    def unknown_font(self, name: str) -> str:
        """The sentence for a `font` this worker does not have."""
        names = self.names()
        listed = ", ".join(names[:MAX_LISTED]) + (", …" if len(names) > MAX_LISTED else "")
        return (
            f'must be a font family this worker has; "{name}" is not (it has {listed}; '
            "video-worker fonts lists them all)"
        )

    def first_uncovered(self, text: str) -> tuple[str, str] | None:
        """The first character of `text` no font covers, and its script; None when every
        character can be drawn (through fallback: any family's glyph will do)."""
        return first_uncovered(text, self.missing)

    def fallback_families(self) -> list[str]:
        return [f for f in FALLBACK_ORDER if f in self.families]

    def write_config(self, folder: Path, cache: Path | None = None) -> Path:
        """fonts.conf in `folder` naming our folders (the module's docstring says why); the
        fontconfig cache goes to `cache` (default: this process's, so only the first job
        builds it: 0.1 to 0.4 s a job otherwise)."""
        path = folder / CONFIG_NAME
        path.write_text(config_xml(self.dirs, self.fallback_families(),
                                   cache or process_cache()), encoding="utf-8")  # fmt: skip
        return path


@functools.cache
def process_cache() -> Path:
    """A fontconfig cache folder of this process's own (private to its user, removed at exit),
    shared by every job it runs; fontconfig writes it atomically, so jobs at once are safe."""
    folder = Path(tempfile.mkdtemp(prefix="video-worker-fontcache-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def listing(fonts: FontSet) -> str:
    """`video-worker fonts`: each name `font` may say and the scripts that family covers by
    itself; every family falls back to the others for what it lacks."""
    rows = []
    for name in fonts.names():
        family = fonts.resolve(name)
        assert family is not None
        shown = f"{name} ({family})" if family != name else name
        rows.append((shown, ", ".join(fonts.scripts(family)) or "-"))
    width = max((len(shown) for shown, _ in rows), default=0)
    lines = [f"{shown.ljust(width)}  {scripts}" for shown, scripts in rows]
    covered = [s.name for s in SCRIPTS if all(within(fonts.coverage, ord(c)) for c in s.sample)]
    missing = [s.name for s in SCRIPTS if s.name not in covered]
    lines.append("")
    lines.append("with fallback, any family draws: " + (", ".join(covered) or "-"))
    if missing:
        lines.append("no font covers: " + ", ".join(missing) + " (text in them is refused)")
    return "\n".join(lines) + "\n"


# ---- finding and reading the fonts -------------------------------------------------------------


def installed(fonts_dir: Path | None = None) -> FontSet:
    """The fonts in every search folder (and `fonts_dir`, FONTS_DIR), read once per process:
    `installed()`, `installed(None)` and a `fonts_dir` that adds no folder are the same read."""
    return font_set(search_dirs(fonts_dir))


@functools.cache
def font_set(dirs: tuple[Path, ...]) -> FontSet:
    """The fonts in exactly these folders (read once per process for each set of folders)."""
    families: dict[str, list[tuple[int, int]]] = {}
    for face in read_faces(dirs):
        families.setdefault(face.family, []).extend(face.ranges)
    return FontSet(dirs, {name: merge(ranges) for name, ranges in sorted(families.items())})


def search_dirs(fonts_dir: Path | None = None) -> tuple[Path, ...]:
    """The folders that exist among: ours, the pip font packages', the system's, FONTS_DIR."""
    found = [BUNDLED_DIR, *pip_font_dirs(), *SYSTEM_DIRS]
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    found.append(Path(data_home) / "fonts")
    if fonts_dir is not None:
        found.append(fonts_dir)
    unique: dict[Path, None] = {}
    for folder in found:
        if folder.is_dir():
            unique.setdefault(folder.resolve(), None)
    return tuple(unique)


def pip_font_dirs() -> list[Path]:
    """The folders of the installed pip font packages: ours, then every `fontpkg` family."""
    modules = list(PIP_FONT_MODULES)
    modules += [ep.value.split(":")[0] for ep in importlib.metadata.entry_points(
        group=FONTPKG_GROUP)]  # fmt: skip
    folders: list[Path] = []
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations:
            folders.extend(Path(p) for p in spec.submodule_search_locations)
    return folders


def read_faces(dirs: Iterable[Path]) -> Iterator[Face]:
    """Every outline face in the folders (recursively); a file that cannot be read is logged
    and skipped (fontconfig would skip it too)."""
    seen: set[Path] = set()
    for folder in dirs:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() not in FONT_SUFFIXES or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                yield from _faces(path)
            except Exception as exc:  # a damaged font is the operator's to fix, not fatal
                log.warning("font_unreadable", path=str(path), error=str(exc)[:200])


def _faces(path: Path) -> Iterator[Face]:
    from fontTools.ttLib import TTCollection, TTFont  # imported where fonts are read

    if path.suffix.lower() in (".ttc", ".otc"):
        fonts = list(TTCollection(str(path), lazy=True).fonts)
    else:
        fonts = [TTFont(str(path), lazy=True)]
    for font in fonts:
        if not any(tag in font for tag in ("glyf", "CFF ", "CFF2")):
            continue  # bitmap only (colour emoji): libass cannot draw it
        family = font["name"].getBestFamilyName()
        if family and not _UNNAMEABLE.search(str(family)):
            yield Face(path, str(family), cmap_ranges(font.reader["cmap"]))


# ---- the cmap, as ranges -------------------------------------------------------------------------

_UNNAMEABLE = re.compile(r"[,\x00-\x1f\x7f]")  # a family an ASS style line cannot name

_UNICODE_TABLES = {(0, 3), (0, 4), (0, 6), (3, 1), (3, 10), (0, 0), (0, 1), (0, 2)}


def cmap_ranges(data: bytes) -> Ranges:
    """The code points a raw `cmap` table maps to a real glyph (Unicode subtables of format 4
    and 12; format 13, "last resort" many-to-one, on purpose not)."""
    _, count = struct.unpack_from(">HH", data, 0)
    found: list[tuple[int, int]] = []
    for n in range(count):
        platform, encoding, offset = struct.unpack_from(">HHI", data, 4 + 8 * n)
        if (platform, encoding) not in _UNICODE_TABLES:
            continue
        kind = struct.unpack_from(">H", data, offset)[0]
        if kind == 4:
            found += _format4(data, offset)
        elif kind == 12:
            found += _format12(data, offset)
    return merge(found)


def _format12(data: bytes, offset: int) -> list[tuple[int, int]]:
    (groups,) = struct.unpack_from(">I", data, offset + 12)
    found = []
    table = data[offset + 16 : offset + 16 + 12 * groups]
    for first, last, glyph in struct.iter_unpack(">III", table):
        if glyph == 0:
            first += 1  # its first code point maps to the missing glyph
        if first <= last:
            found.append((first, min(last, 0x10FFFF)))
    return found


def _format4(data: bytes, offset: int) -> list[tuple[int, int]]:
    segments = struct.unpack_from(">H", data, offset + 6)[0] // 2
    at = offset + 14
    ends = struct.unpack_from(f">{segments}H", data, at)
    starts = struct.unpack_from(f">{segments}H", data, at + 2 * segments + 2)
    deltas = struct.unpack_from(f">{segments}h", data, at + 4 * segments + 2)
    range_at = at + 6 * segments + 2
    offsets = struct.unpack_from(f">{segments}H", data, range_at)
    found: list[tuple[int, int]] = []
    for n, (first, last) in enumerate(zip(starts, ends, strict=True)):
        last = min(last, 0xFFFE)  # the final 0xFFFF segment maps nothing
        if first > last:
            continue
        if offsets[n] == 0:
            found += _without(first, last, (-deltas[n]) & 0xFFFF)
        else:
            base = range_at + 2 * n + offsets[n]
            glyphs = struct.unpack_from(f">{last - first + 1}H", data, base)
            found += [(first + k, first + k) for k, glyph in enumerate(glyphs) if glyph]
    return found


def _without(first: int, last: int, hole: int) -> list[tuple[int, int]]:
    """first..last less the one code point whose glyph id wraps to 0."""
    if not first <= hole <= last:
        return [(first, last)]
    return [r for r in ((first, hole - 1), (hole + 1, last)) if r[0] <= r[1]]


# ---- fonts.conf ----------------------------------------------------------------------------------


def config_xml(dirs: Iterable[Path], fallback: list[str], cache: Path) -> str:
    """A fontconfig configuration: our folders only, outline fonts only, `fallback` first."""
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">',
        "<fontconfig>",
        *(f"  <dir>{escape(str(d))}</dir>" for d in dirs),
        f"  <cachedir>{escape(str(cache))}</cachedir>",
        "  <selectfont><rejectfont><pattern>",
        '    <patelt name="outline"><bool>false</bool></patelt>',
        "  </pattern></rejectfont></selectfont>",
        '  <alias binding="strong"><family>sans-serif</family><prefer>',
        *(f"    <family>{escape(f)}</family>" for f in fallback),
        "  </prefer></alias>",
        "</fontconfig>",
    ]
    return "\n".join(lines) + "\n"


def ffmpeg_env(config: Path) -> dict[str, str]:
    """FFmpeg's environment with its fontconfig reading `config` and nothing else."""
    return {**os.environ, "FONTCONFIG_FILE": str(config.resolve())}
