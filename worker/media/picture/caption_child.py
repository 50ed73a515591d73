"""The caption child: a job's caption sources in, its subtitle files out, confined.

    worker: caption_render.py         child: python -m worker.media.picture.caption_child
    request ── JSON line ──▶ read the caption file (UTF-8, its byte cap, its cues bounded)
                                    place each clip's transcript, keep each cue as authored,
                                    one block on screen at a time, rows broken to fit
                                    write captions.ass (≤ MAX_DOCUMENT_BYTES) and captions.vtt
      ◀── JSON line: {"made": {lines, events, most_at_once, bytes, …}} | {"limit": "memory"}
                     | {"refused": "…", "input": "captions.srt_url" or "field": "payload.captions"}

Everything whose cost grows with what an end user wrote happens here, not in the worker: the
file's bytes are parsed only in this process, and the subtitle document (whose size grows with
words times line length in `highlight`) is written here, counted as it is written and refused
past MAX_DOCUMENT_BYTES. The child confines itself as every confined child does (confine.py:
address space, CPU time, dies with the worker) and may write files no larger than that limit;
the worker kills it on timeout or cancellation and receives only a few numbers back.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from worker.errors import InputError, PayloadError
from worker.media.confine import MIB, answered, child_only, confine, send
from worker.media.picture.captions import (
    MAX_CAPTION_WORDS,
    CaptionStyle,
    Cue,
    Line,
    Word,
    ass_lines,
    cue_lines,
    cues_from_srt,
    cues_from_vtt,
    group_lines,
    lay_out,
    one_at_a_time,
    place,
    vtt_document,
    words_from_cues,
)
from worker.media.picture.scripts import first_uncovered, missing_pattern, uncovered_problem

MAX_CAPTION_FILE_BYTES = 2 * MIB  # a caption file's byte cap (the download enforces it too)
MAX_DOCUMENT_BYTES = 16 * MIB  # the ASS document libass reads while the picture is encoded
ASS_NAME = "captions.ass"
VTT_NAME = "captions.vtt"


def make(request: dict[str, Any]) -> dict[str, Any]:
    """Write the request's subtitle files into its folder; the numbers the worker checks."""
    folder = Path(request["folder"])
    style = CaptionStyle(**request["style"])
    width, height = int(request["width"]), int(request["height"])
    lines = lay_out(_blocks(request, style), style, width, height)
    made: dict[str, Any] = {"lines": len(lines), "ass": None, "vtt": None, "bytes": 0}
    made |= {"events": 0, "most_at_once": 0}
    if lines:
        events = _write_ass(folder / ASS_NAME, lines, style, request)
        made |= {"ass": ASS_NAME, "bytes": (folder / ASS_NAME).stat().st_size, **events}
    if request.get("vtt"):
        (folder / VTT_NAME).write_text(vtt_document(lines), "utf-8")
        made["vtt"] = VTT_NAME
    return made


def _blocks(request: dict[str, Any], style: CaptionStyle) -> list[Line]:
    """Every caption block on the output timeline, one at a time, cut at the output's end:
    lines of at most `max_words` from word timings, and a caption file's cues as authored."""
    end = float(request["end"])
    words = [Word(*w) for w in request["words"]]
    for clip in request["placed"]:
        source = [Word(*w) for w in clip["words"]]
        words += place(source, source_start=clip["source_start"],
                       source_end=clip["source_end"], offset=clip["offset"])  # fmt: skip
    words = [Word(w.text, w.start, min(w.end, end)) for w in words if w.start < end]
    blocks = group_lines(words, style.max_words)
    file = request.get("file")
    if file is not None:
        cues = read_caption_file(file, int(request["payload_words"]), request["max_seconds"],
                                 request.get("coverage"))  # fmt: skip
        blocks += cue_lines([_cut(cue, end) for cue in cues if cue.start < end])
    return one_at_a_time(blocks)


def _cut(cue: Cue, end: float) -> Cue:
    return Cue(cue.text, cue.start, min(cue.end, end), cue.line)


@child_only
def read_caption_file(
    file: dict[str, str], payload_words: int, max_seconds: float,
    coverage: Sequence[Sequence[int]] | None = None,
) -> list[Cue]:  # fmt: skip
    """The cues of the SRT or WebVTT file, checked: UTF-8 text within its byte cap, cues
    bounded (captions.py), with the payload's own words no more than MAX_CAPTION_WORDS, and
    every character drawable by the worker's fonts (`coverage`: the code point ranges they
    cover, fonts.py), so a script no font has fails here instead of rendering boxes."""
    source, path = file["source"], Path(file["path"])
    text = _text(source, path)
    read = cues_from_srt if file["kind"] == "srt" else cues_from_vtt
    cues = read(text, source, max_seconds=max_seconds)
    words = words_from_cues(cues, source)
    if not words:
        raise InputError(source, "has no caption text; check that the file has cues")
    total = len(words) + payload_words
    if total > MAX_CAPTION_WORDS:
        raise InputError(
            source,
            f"has {len(words)} words, which brings the job's caption words to {total}; at most "
            f"{MAX_CAPTION_WORDS} are allowed in one job (the caption file and all transcripts "
            "together)",
        )
    if coverage is not None:
        check_drawable(words, source, [(int(a), int(b)) for a, b in coverage])
    return cues


def check_drawable(words: Sequence[Word], source: str, coverage: list[tuple[int, int]]) -> None:
    """InputError naming the first character no font covers and its script."""
    missing = missing_pattern(tuple(coverage))
    for word in words:
        found = first_uncovered(word.text, missing)
        if found is not None:
            raise InputError(source, uncovered_problem(*found))


def _text(source: str, path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_CAPTION_FILE_BYTES:
        raise InputError(
            source,
            f"is {size} bytes; a caption file may have at most {MAX_CAPTION_FILE_BYTES} bytes",
        )
    data = path.read_bytes()
    if b"\x00" in data:
        raise InputError(source, "is not a text file; a caption file must be UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            source,
            f"is not UTF-8 text (byte {exc.start} cannot be read); save the captions as UTF-8",
        ) from None


def _write_ass(
    path: Path, lines: Sequence[Line], style: CaptionStyle, request: dict[str, Any]
) -> dict[str, int]:
    """Write the ASS document, refusing it the moment it would pass MAX_DOCUMENT_BYTES; how
    many events it has and the most on screen at once."""
    written, events = 0, []
    with path.open("w", encoding="utf-8") as out:
        for text in ass_lines(lines, style, int(request["width"]), int(request["height"])):
            written += len(text.encode("utf-8")) + 1
            if written > MAX_DOCUMENT_BYTES:
                raise PayloadError("payload.captions", _too_big(len(lines), style))
            if text.startswith("Dialogue:"):
                events.append(event_span(text))
            out.write(text + "\n")
    return {"events": len(events), "most_at_once": most_at_once(events)}


def _too_big(lines: int, style: CaptionStyle) -> str:
    mb = MAX_DOCUMENT_BYTES // MIB
    return (
        f"make a subtitle document over {mb} MB ({lines} lines in style {style.style}); use "
        "fewer or shorter words, or fewer words per line (max_words)"
    )


def event_span(dialogue: str) -> tuple[str, str]:
    """A Dialogue line's start and end, as ASS writes them (H:MM:SS.CC sorts as time)."""
    fields = dialogue.split(",", 3)
    return _sortable(fields[1]), _sortable(fields[2])


def _sortable(ass_time: str) -> str:
    hours, rest = ass_time.split(":", 1)
    return f"{int(hours):06d}:{rest}"


def most_at_once(spans: Iterable[tuple[str, str]]) -> int:
    """The most events on screen at the same moment (an end at t frees its place for a start
    at t, as libass shows them)."""
    changes = sorted(
        [(start, 1) for start, end in spans if end > start]
        + [(end, -1) for start, end in spans if end > start]
    )
    most = now = 0
    for _, step in changes:
        now += step
        most = max(most, now)
    return most


def main(argv: Sequence[str]) -> int:
    confine(json.loads(argv[0]))
    request = json.loads(sys.stdin.readline())
    send(answered(lambda: _refusal_or(request)))
    return 0


def _refusal_or(request: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"made": make(request)}
    except InputError as exc:
        return {"refused": exc.problem, "input": exc.source}
    except PayloadError as exc:
        return {"refused": exc.problem, "field": exc.field}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
