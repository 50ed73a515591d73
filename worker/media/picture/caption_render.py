"""The worker's side of the caption child: ask it for a job's subtitle files, get numbers back.

The worker never parses a caption file nor builds a subtitle document itself (both grow with
what an end user wrote; see caption_child.py): it sends the child the words it already holds
(the payload's, bounded by MAX_PAYLOAD_BYTES and MAX_CAPTION_WORDS), where each clip's
transcript lands on the output timeline (from the plan), the look and the frame size, and gets
back the files' names and a few counts, which the cost check (cost.py) reads before encoding.
The child is a confined child (child_process.py) under the limits it is given (the probe's time
and memory, from the assembly) and may write files of at most MAX_DOCUMENT_BYTES; cancelling
the job kills it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from worker.errors import InputError, PayloadError
from worker.log import get_logger
from worker.media.child_process import confined_child
from worker.media.confine import MIB, ChildLimits
from worker.media.picture.caption_child import MAX_DOCUMENT_BYTES, VTT_NAME
from worker.media.picture.captions import Word
from worker.media.picture.fonts import FontSet
from worker.media.plan import Plan
from worker.media.specs import CaptionSpec, ClipSpec

CAPTION_CHILD = "worker.media.picture.caption_child"
FILE_SLACK_BYTES = 64 * 1024  # the kernel's limit sits past the child's own count

log = get_logger("video-worker.captions")


@dataclass(frozen=True)
class CaptionFiles:
    """What the child wrote in the folder and what it counted."""

    ass: str | None  # the ASS document's name inside the folder (None: no line to show)
    vtt: Path | None  # the WebVTT sidecar, when asked for
    lines: int
    events: int
    most_at_once: int  # the most caption events on screen at the same moment
    bytes: int  # the ASS document's size


async def render_captions(
    captions: CaptionSpec, clips: Sequence[ClipSpec], plan: Plan, folder: Path,
    limits: ChildLimits, max_seconds: float, fonts: FontSet | None = None,
) -> CaptionFiles:  # fmt: skip
    """Have the caption child write `folder/captions.ass` (and `captions.vtt`); raise the
    child's refusal as InputError (the caption file) or PayloadError (the payload's words).
    With `fonts`, the child refuses a caption file with text none of them covers."""
    source = captions.file.source if captions.file is not None else "captions"
    request = caption_request(captions, clips, plan, folder, max_seconds)
    if fonts is not None:
        request["coverage"] = fonts.coverage
    async with confined_child(
        limits, 1, module=CAPTION_CHILD, file_bytes=MAX_DOCUMENT_BYTES + FILE_SLACK_BYTES
    ) as child:
        line = await child.exchange(request, source)
    return _files(_reply(line, source, limits), folder)


def caption_request(
    captions: CaptionSpec, clips: Sequence[ClipSpec], plan: Plan, folder: Path,
    max_seconds: float,
) -> dict[str, Any]:  # fmt: skip
    """The child's request: the words the payload holds, where each clip's land, and the
    latest time a caption file's cue may name (MAX_OUTPUT_SECONDS)."""
    placed = []
    for clip, window, start in zip(clips, plan.windows, plan.starts, strict=True):
        offset, played = plan.seconds(start), plan.seconds(window.frames)
        if clip.transcript:
            placed.append(_placed(clip.transcript, window.start, window.start + played, offset))
        if clip.voice_transcript:
            placed.append(_placed(clip.voice_transcript, 0.0, played, offset))
    file = captions.file
    return {
        "folder": str(folder),
        "style": asdict(captions.style),
        "words": _rows(captions.words),
        "placed": placed,
        "file": None
        if file is None
        else {"path": str(file.path), "kind": file.kind, "source": file.source},
        "payload_words": len(captions.words) + sum(len(p["words"]) for p in placed),
        "max_seconds": max_seconds,
        "end": plan.seconds(plan.frames),
        "width": plan.geometry.width,
        "height": plan.geometry.height,
        "vtt": captions.vtt,
    }


def _placed(words: Sequence[Word], start: float, end: float, offset: float) -> dict[str, Any]:
    return {"words": _rows(words), "source_start": start, "source_end": end, "offset": offset}


def _rows(words: Sequence[Word]) -> list[tuple[str, float, float]]:
    return [(w.text, w.start, w.end) for w in words]


def _reply(line: bytes, source: str, limits: ChildLimits) -> dict[str, Any]:
    try:
        reply = json.loads(line)
    except ValueError:
        reply = {}
    if isinstance(reply.get("made"), dict):
        return dict(reply["made"])
    problem = reply.get("refused")
    if isinstance(problem, str):
        if isinstance(reply.get("field"), str):
            raise PayloadError(reply["field"], problem[:1000])
        raise InputError(str(reply.get("input", source)), problem[:1000])
    if reply.get("limit") == "memory":
        raise InputError(source, f"could not be read within the memory limit of "
                         f"{limits.memory_bytes // MIB} MB; it is too large")  # fmt: skip
    log.warning("caption_child_failed", source=source, reply=line[:300].decode("utf-8", "replace"))
    raise InputError(
        source, "could not be made into captions: the text is damaged or not supported"
    )


def _files(made: dict[str, Any], folder: Path) -> CaptionFiles:
    return CaptionFiles(
        ass=made["ass"],
        vtt=folder / VTT_NAME if made.get("vtt") else None,
        lines=int(made["lines"]),
        events=int(made["events"]),
        most_at_once=int(made["most_at_once"]),
        bytes=int(made["bytes"]),
    )
