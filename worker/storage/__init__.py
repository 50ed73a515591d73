"""Where finished videos are published and storage:// inputs are read from.

`make_storage(settings)` picks the backend: `local` (files under VIDEO_WORKER_HOME),
`s3` (any S3-compatible store, boto3) or `supabase` (supabase-py Storage). All of them
implement the `Storage` protocol in `base.py`.
"""

from worker.storage.base import (
    SIGNED_URL_SECONDS,
    VIDEO_MP4,
    InvalidKeyError,
    ObjectNotFound,
    ObjectTooLarge,
    Storage,
    StorageConfigError,
    StoredObject,
    check_key,
    parse_storage_url,
)
from worker.storage.factory import make_storage

__all__ = [
    "SIGNED_URL_SECONDS",
    "VIDEO_MP4",
    "InvalidKeyError",
    "ObjectNotFound",
    "ObjectTooLarge",
    "Storage",
    "StorageConfigError",
    "StoredObject",
    "check_key",
    "make_storage",
    "parse_storage_url",
]
