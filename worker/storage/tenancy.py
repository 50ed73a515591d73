"""Whose objects a job may touch (the contract's "Whose objects a job may touch").

A row with a `user_id` is an end user's job: on Supabase, RLS makes every row a user writes
carry their `auth.uid()`, and the payload is whatever their browser sent. Such a job reads
`storage://` objects only under `{user_id}/` in the output bucket or a bucket the operator
lists in STORAGE_READ_BUCKETS, and writes only under `{user_id}/` in the output bucket. A row
without `user_id` comes from the app's trusted backend and may touch any key, as before.

This is the same rule as the usual Supabase Storage policy,
`(storage.foldername(name))[1] = auth.uid()::text`: the first folder of the key, compared
exactly. Keys have already passed `check_key` (no empty, `.` or `..` segment, no backslash,
no control character), so the first segment is the folder every backend stores the object
under; comparing whole segments keeps `{user_id}x/` and `{user_id}` itself out, and comparing
exactly (the uuid's lowercase text, as `auth.uid()::text` writes it) keeps other spellings
out. A `%` is refused in a user's keys: supabase-py percent-decodes keys before it sends
them, so `%2F` or `%2E%2E` could mean something else to the server than to this check.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from worker.storage.base import InvalidKeyError


class OutsideTenant(InvalidKeyError):
    """A user's job named a key or bucket outside what it may touch."""


@dataclass(frozen=True)
class Tenancy:
    """The objects one job may read and write; `owner` None means unconfined (trusted)."""

    owner: str | None
    read_buckets: tuple[str, ...]  # the output bucket first

    @classmethod
    def for_job(
        cls, user_id: object, output_bucket: str, read_buckets: Iterable[str] = ()
    ) -> Tenancy:
        """The rule for a row with `user_id` (None: the trusted backend's row)."""
        extra = tuple(b for b in read_buckets if b != output_bucket)
        return cls(_owner_text(user_id), (output_bucket, *extra))

    @property
    def folder(self) -> str:
        return f"{self.owner}/"

    def read_problem(self, bucket: str, key: str) -> str | None:
        """Why this job may not read `storage://bucket/key`, or None if it may."""
        if self.owner is None:
            return None
        names = " or ".join(f'"{b}"' for b in self.read_buckets)
        where = f"the bucket{'s' if len(self.read_buckets) > 1 else ''} {names}"
        rule = f'a user\'s job reads storage:// objects only under "{self.folder}" in {where}'
        if bucket not in self.read_buckets:
            return f'the bucket "{bucket}" is not allowed: {rule}'
        if self._inside(key) and not self._key_problem(key):
            return None
        return f"storage://{bucket}/{_shown(key)} is not allowed: {self._key_problem(key)}{rule}"

    def write_problem(self, key: str) -> str | None:
        """Why this job may not write `key` in the output bucket, or None if it may."""
        if self.owner is None:
            return None
        if self._inside(key) and not self._key_problem(key):
            return None
        return (
            f"{self._key_problem(key)}a user's job stores objects only under "
            f'"{self.folder}", like "{self.folder}video.mp4"'
        )

    def check_write(self, key: str) -> None:
        """Raise OutsideTenant unless this job may write `key`."""
        problem = self.write_problem(key)
        if problem:
            raise OutsideTenant(f"storage key {_shown(key)!r} is not allowed: {problem}")

    def _inside(self, key: str) -> bool:
        first, slash, rest = key.partition("/")
        return first == self.owner and bool(slash) and bool(rest)

    def _key_problem(self, key: str) -> str:
        """A reason beyond the folder rule, as the start of a sentence, or ''."""
        if "%" in key:
            return "'%' may not appear in a user's keys (nothing is percent-decoded); "
        return ""


def _owner_text(user_id: object) -> str | None:
    """The uuid as `auth.uid()::text` spells it (lowercase, hyphenated)."""
    if user_id is None:
        return None
    try:
        return str(user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id)))
    except ValueError:
        return str(user_id)


def _shown(key: str) -> str:
    return key if len(key) <= 120 else key[:120] + "…"
