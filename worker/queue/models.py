"""Typed values at the queue's boundary: the status enum, a claimed job, a handler's result."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
    payload: Any
    attempts: int
    max_attempts: int
    lease_token: uuid.UUID
    user_id: uuid.UUID | None = None
    priority: int = 0
    webhook_url: str | None = None
    created_at: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return cls(
            id=row["id"],
            payload=row["payload"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            lease_token=row["lease_token"],
            user_id=row.get("user_id"),
            priority=row.get("priority", 0),
            webhook_url=row.get("webhook_url"),
            created_at=row.get("created_at"),
        )

    @property
    def last_attempt(self) -> bool:
        return self.attempts >= self.max_attempts


@dataclass(frozen=True)
class JobOutcome:
    """What a handler returns on success; written to the row when the job completes."""

    video_url: str | None = None
    thumbnail_url: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
