"""A job's caption file (`captions.srt_url` / `vtt_url`), read into words on the output timeline.

The file is the user's text: it must be UTF-8 and within its byte cap (checked on the wire by
the download, and again here), a cue that does not parse fails naming its line
(`captions.srt_url: line 7 …`, by worker.media.captions), and its words count toward the
job's caption words with every transcript in the payload.
"""

from __future__ import annotations

from pathlib import Path

from worker.errors import InputError
from worker.media.captions import Word, words_from_srt, words_from_vtt
from worker.payload import MAX_CAPTION_WORDS, Payload
from worker.pipeline.inputs import MAX_CAPTION_FILE_BYTES, SRT, InputId


def read_caption_file(source: InputId, path: Path, payload: Payload) -> tuple[Word, ...]:
    """The words of the SRT or WebVTT file at `path`, checked against the job's word limit."""
    text = _text(source, path)
    read = words_from_srt if source == SRT else words_from_vtt
    words = read(text, source.name)
    if not words:
        raise InputError(source.name, "has no caption text; check that the file has cues")
    total = len(words) + transcript_words(payload)
    if total > MAX_CAPTION_WORDS:
        raise InputError(
            source.name,
            f"has {len(words)} words, which brings the job's caption words to {total}; at most "
            f"{MAX_CAPTION_WORDS} are allowed in one job (the caption file and all transcripts "
            "together)",
        )
    return tuple(words)


def transcript_words(payload: Payload) -> int:
    """The caption words the payload itself holds (its transcripts and captions.words)."""
    count = sum(len(c.transcript or ()) + len(c.voice_transcript or ()) for c in payload.clips)
    if payload.captions is not None and payload.captions.words is not None:
        count += len(payload.captions.words)
    return count


def _text(source: InputId, path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_CAPTION_FILE_BYTES:
        raise InputError(
            source.name,
            f"is {size} bytes; a caption file may have at most {MAX_CAPTION_FILE_BYTES} bytes",
        )
    data = path.read_bytes()
    if b"\x00" in data:
        raise InputError(source.name, "is not a text file; a caption file must be UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            source.name,
            f"is not UTF-8 text (byte {exc.start} cannot be read); save the captions as UTF-8",
        ) from None
