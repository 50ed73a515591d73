"""Typed values at the queue's boundary: the status enum, a claimed job, a handler's result.

A claimed job carries its payload as the text the database sent, and parses it on first use,
inside the job: a payload that no JSON parser should accept (3000 levels deep, a 5000-digit
number, both of which Postgres stores happily) then fails its own job with a PayloadError,
instead of failing the decoding of the whole claim and stranding every job claimed with it.
"""

from __future__ import annotations

import enum
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from worker.errors import PayloadError

DEFAULT_MAX_PAYLOAD_BYTES = 1024**2  # MAX_PAYLOAD_BYTES: a long word-timed transcript fits
MAX_DEPTH = 64  # the contract's payload nests 8 levels at most (clips, transcript segments)
# Every finite double written out without an exponent (as Postgres writes jsonb numbers) fits
# in 400 characters; longer numbers are refused before Python converts them (int() of a long
# digit string takes time that grows with the square of its length).
MAX_NUMBER_CHARS = 400


class Status(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in {Status.COMPLETED, Status.FAILED, Status.CANCELLED}


@dataclass(frozen=True)
class Job:
    """A row this replica has claimed; `lease_token` fences every write it makes."""

    id: uuid.UUID
    payload_text: str | None  # None: the claim withheld it, being over the size limit
    attempts: int
    max_attempts: int
    lease_token: uuid.UUID
    user_id: uuid.UUID | None = None
    priority: int = 0
    webhook_url: str | None = None
    created_at: datetime | None = None
    payload_bytes: int = 0  # octet_length(payload::text), measured by the database
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES

    @classmethod
    def from_row(cls, row: dict[str, Any], max_payload_bytes: int) -> Job:
        """A row of the `claim` statement (or the hot path's function): `payload` is text,
        null when its `payload_bytes` are over `max_payload_bytes`."""
        return cls(
            id=row["id"],
            payload_text=row["payload"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            lease_token=row["lease_token"],
            user_id=row.get("user_id"),
            priority=row.get("priority", 0),
            webhook_url=row.get("webhook_url"),
            created_at=row.get("created_at"),
            payload_bytes=row["payload_bytes"],
            max_payload_bytes=max_payload_bytes,
        )

    def check_payload_size(self) -> None:
        """Raise PayloadError when the claim withheld the payload for its size."""
        if self.payload_text is None:
            raise PayloadError(
                "payload",
                f"is {self.payload_bytes} bytes; at most {self.max_payload_bytes} are allowed",
            )

    @cached_property
    def payload(self) -> Any:
        """The payload's JSON value, parsed on first use; PayloadError if it is over the size,
        depth or number limits."""
        self.check_payload_size()
        assert self.payload_text is not None
        return parse_json(self.payload_text)

    @property
    def last_attempt(self) -> bool:
        return self.attempts >= self.max_attempts


@dataclass(frozen=True)
class JobOutcome:
    """What a handler returns on success; written to the row when the job completes."""

    video_url: str | None = None
    thumbnail_url: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


def parse_json(text: str) -> Any:
    """Parse a payload's JSON text within MAX_DEPTH and MAX_NUMBER_CHARS."""
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:  # far deeper than MAX_DEPTH: the parser's own stack ran out
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise PayloadError("payload", f"is not valid JSON ({exc.msg})") from None
    # a value cannot nest deeper than it has brackets: most payloads need no walk at all
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth_exceeds(value, MAX_DEPTH):
        raise _too_deep()
    return value


def _int(literal: str) -> int:
    _check_length(literal)
    return int(literal)


def _float(literal: str) -> float:
    _check_length(literal)
    value = float(literal)
    if not math.isfinite(value):
        raise PayloadError("payload", "has a number too large to use")
    return value


def _constant(literal: str) -> Any:
    raise PayloadError("payload", f"has {literal}, which is not a JSON number")


def _check_length(literal: str) -> None:
    if len(literal) > MAX_NUMBER_CHARS:
        raise PayloadError(
            "payload",
            f"has a number {len(literal)} characters long; at most {MAX_NUMBER_CHARS} are allowed",
        )


def _too_deep() -> PayloadError:
    return PayloadError("payload", f"is nested more than {MAX_DEPTH} levels deep")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` (the top level is 1); iterative, so
    it cannot run out of stack itself."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False
