"""What every storage backend offers, and the errors they share.

    StorageError (retryable, worker.errors)   outage, timeout, 5xx: the job is retried
    PermanentError (worker.errors)
    ├── StorageConfigError                    missing bucket, denied access, bad key: an
    │                                         operator must fix the settings; retrying the
    │                                         job cannot, so it fails at once and says why
    ├── InvalidKeyError                       a key that escapes the bucket or is malformed,
    │                                         or that cannot hold an object (a folder is there)
    ├── ObjectNotFound                        a storage:// input that does not exist
    └── ObjectTooLarge                        a storage:// input over the byte cap

The last two are about one input; the fetch layer turns them into `InputError(source, …)`
so the user sees which clip is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from worker.errors import PermanentError

VIDEO_MP4 = "video/mp4"
SIGNED_URL_SECONDS = 7 * 24 * 3600  # the longest a SigV4 presigned URL may live

ByteProgress = Callable[[int, int], None]

_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MAX_KEY_BYTES = 1024  # S3's and Supabase's limit
MAX_SEGMENT_BYTES = 255  # the longest file name ext4, XFS and APFS hold


class StorageConfigError(PermanentError):
    """Storage is set up wrong (bucket missing, access denied): fix the settings."""


class InvalidKeyError(PermanentError):
    """An object key that is empty, absolute or climbs out of the bucket."""


class ObjectNotFound(PermanentError):
    """A storage:// input names an object that does not exist."""

    def __init__(self, bucket: str, key: str) -> None:
        self.bucket = bucket
        self.key = key
        super().__init__(f"storage://{bucket}/{key} does not exist")


class ObjectTooLarge(PermanentError):
    """A storage:// input is larger than the per-input byte cap."""

    def __init__(self, bucket: str, key: str, max_bytes: int) -> None:
        self.bucket = bucket
        self.key = key
        self.max_bytes = max_bytes
        super().__init__(f"storage://{bucket}/{key} is larger than the {max_bytes} byte limit")


@dataclass(frozen=True)
class StoredObject:
    """An object that is published at its final key."""

    bucket: str
    key: str
    url: str  # public, signed (time-limited) or file:// URL: what goes into video_url
    bytes: int
    content_type: str


@runtime_checkable
class Storage(Protocol):
    """A place to publish outputs and read storage:// inputs from.

    Every backend publishes only complete objects: an upload that fails or is cancelled
    leaves nothing at `key`. Blocking SDK calls run in threads, and cancelling the awaiting
    task stops them at the next chunk.
    """

    name: str
    bucket: str

    async def upload(
        self,
        local_path: Path,
        key: str,
        content_type: str = VIDEO_MP4,
        *,
        on_bytes: ByteProgress | None = None,
    ) -> StoredObject:
        """Publish `local_path` at `key`; `on_bytes(sent, total)` runs on the event loop."""
        ...

    async def download(self, bucket: str | None, key: str, dest: Path, max_bytes: int) -> Path:
        """Copy object `key` of `bucket` (None: the output bucket) to `dest`, capped."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key` from the output bucket; a missing object is not an error."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored at `key` in the output bucket (a folder is not one)."""
        ...

    async def url_for(self, key: str) -> str:
        """The URL a browser can fetch `key` from (public, signed or file://)."""
        ...


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative object key, else raise InvalidKeyError.

    Refuses absolute keys, `.` and `..` segments, empty segments and control characters, so
    no backend (least of all `local`, which maps keys onto the file system) can be made to
    write outside its bucket; and segments over 255 bytes, which no file system can hold, so
    such a key is refused before any I/O instead of failing (and being retried) mid-upload.
    """
    problem = _key_problem(key)
    if problem:
        raise InvalidKeyError(f"storage key {key[:200]!r} is not allowed: {problem}")
    return key


def _key_problem(key: str) -> str | None:
    if not key:
        return "it is empty"
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"it is longer than {MAX_KEY_BYTES} bytes"
    if key.startswith("/") or "\\" in key:
        return "it must be a relative path with forward slashes"
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        return "it contains control characters"
    if any(part in ("", ".", "..") for part in key.split("/")):
        return "it contains an empty, '.' or '..' segment"
    if any(len(part.encode()) > MAX_SEGMENT_BYTES for part in key.split("/")):
        return f"a folder or file name in it is longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def check_bucket(bucket: str) -> str:
    """Return `bucket` if it is a plausible bucket name (no slashes, no dots alone)."""
    if not _BUCKET.match(bucket) or bucket in (".", ".."):
        raise InvalidKeyError(f"bucket name {bucket[:100]!r} is not allowed")
    return bucket


def parse_storage_url(url: str) -> tuple[str, str]:
    """Split `storage://BUCKET/PATH` into a checked (bucket, key)."""
    prefix = "storage://"
    if not url.startswith(prefix):
        raise InvalidKeyError("a storage URL must start with storage://")
    bucket, _, key = url[len(prefix) :].partition("/")
    return check_bucket(bucket), check_key(key)
