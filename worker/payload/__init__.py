"""A job's `payload` (version 1 and its composition additions), checked into frozen models.

The payload is written by a web app and read by nobody else until a job fails, so every
message names the exact field (`payload.clips[2].url: …`) and says what is allowed: the
`error` column is what a web developer sees, and it should be enough to fix the request.

The models (models.py) are pydantic models whose fields carry our own checks (fields.py);
`parse_payload` turns the first error pydantic collects into one `PayloadError`. The same models
give the payload's JSON Schema (schema.py, `video-worker schema`, docs/payload.schema.json).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from worker.errors import PayloadError
from worker.media.cost import MAX_VIDEO_OVERLAYS
from worker.media.picture.captions import MAX_CAPTION_WORDS
from worker.media.picture.fonts import installed
from worker.payload.models import (
    FITS,
    MAX_AUDIO_LAYERS,
    MAX_OVERLAYS,
    MAX_TEXT_CHARS,
    PAYLOAD_VERSION,
    Audio,
    AudioLayer,
    Captions,
    Clip,
    Fit,
    ImageOverlay,
    Output,
    Payload,
    TextOverlay,
    Transition,
    VideoOverlay,
)
from worker.settings import Settings

__all__ = [
    "FITS",
    "MAX_AUDIO_LAYERS",
    "MAX_CAPTION_WORDS",
    "MAX_OVERLAYS",
    "MAX_TEXT_CHARS",
    "MAX_VIDEO_OVERLAYS",
    "PAYLOAD_VERSION",
    "Audio",
    "AudioLayer",
    "Captions",
    "Clip",
    "Fit",
    "ImageOverlay",
    "Output",
    "Payload",
    "TextOverlay",
    "Transition",
    "VideoOverlay",
    "default_output_key",
    "output_key",
    "parse_payload",
]


def parse_payload(raw: object, settings: Settings) -> Payload:
    """Check `raw` (the row's JSON value) and return it typed; raise PayloadError otherwise."""
    context: dict[str, Any] = {
        "max_clips": settings.max_clips,
        "max_seconds": settings.max_output_seconds,  # every time in the payload (fields.py)
        "caption_words_left": MAX_CAPTION_WORDS,  # spent by each transcript in turn
        "fonts": installed(settings.fonts_dir),  # `font` names one; every text is drawable
    }
    try:
        return Payload.model_validate(raw, context=context)
    except ValidationError as exc:
        raise payload_error(exc) from None


def payload_error(exc: ValidationError) -> PayloadError:
    """The first error pydantic collected (the first in document order), as the contract words
    it: its location as a path (`payload.clips[2].url`) and our sentence."""
    first = exc.errors(include_url=False, include_input=False)[0]
    ctx = first.get("ctx") or {}
    path = "payload" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    if first["type"] == "payload":
        return PayloadError(path + ctx.get("at", ""), ctx["problem"])
    # A pydantic check without a sentence of ours: a bug here, but still a clear permanent error.
    return PayloadError(path, f"must be valid ({first['msg']})")


def default_output_key(job_id: uuid.UUID | str, user_id: uuid.UUID | str | None) -> str:
    """The contract's default storage key: `{user_id or 'anonymous'}/{job_id}.mp4`."""
    return f"{user_id or 'anonymous'}/{job_id}.mp4"


def output_key(payload: Payload, job_id: uuid.UUID | str, user_id: uuid.UUID | str | None) -> str:
    """The key the video is stored under: `output.path` when given, else the default."""
    return payload.output.path or default_output_key(job_id, user_id)
