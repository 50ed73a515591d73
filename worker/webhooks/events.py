"""The event a finished job sends: its type, its JSON body and its `webhook-id`.

Built from the job's row alone, so a retry, a later round or another replica sends the very
same body and id, and a receiver can drop the duplicates.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

EVENT_STATUSES = frozenset({"completed", "failed", "cancelled"})
DATA_KEYS = ("video_url", "thumbnail_url", "result", "error")


def message_id(job_id: uuid.UUID | str, status: str) -> str:
    """A `webhook-id` derived from the event itself, so a resend after a restart keeps it."""
    return f"msg_{uuid.UUID(str(job_id)).hex}_{status}"


def build_event(row: Mapping[str, Any], *, now: datetime | None = None) -> tuple[str, bytes]:
    """The event type and JSON body for a terminal job row.

    `timestamp` is when the job finished (`completed_at`), else `now`, so every retry and
    resend of the event carries the same body. Raises ValueError for a non-terminal status:
    that is a caller's bug, not a delivery failure.
    """
    status = _status_text(row["status"])
    if status not in EVENT_STATUSES:
        raise ValueError(f"no webhook event for status {status!r}")
    event_type = f"video_job.{status}"
    when = row.get("completed_at") or now or datetime.now(UTC)
    data: dict[str, Any] = {"id": str(row["id"]), "status": status}
    data.update({key: row.get(key) for key in DATA_KEYS})
    event = {"type": event_type, "timestamp": _iso_utc(when), "data": data}
    body = json.dumps(event, separators=(",", ":"), default=_json_default)
    return event_type, body.encode("utf-8")


def _status_text(status: object) -> str:
    """A Status enum or its text, as the text (`Status.COMPLETED` → "completed")."""
    if isinstance(status, enum.Enum):
        return str(status.value)
    return str(status)


def _iso_utc(when: datetime) -> str:
    """ISO 8601 in UTC with a `Z`; a naive datetime is taken as UTC (Postgres timestamptz)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_default(value: object) -> object:
    """Values a row's `result` may hold that json cannot write, as JSON-friendly values."""
    if isinstance(value, datetime):
        return _iso_utc(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, enum.Enum):
        return value.value
    # UUID, date, Path…: better sent as a string than lost to a TypeError.
    return str(value)
