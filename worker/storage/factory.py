"""Choosing the storage backend from settings, in one place."""

from __future__ import annotations

from worker.settings import Settings
from worker.storage.base import Storage, StorageConfigError


def make_storage(settings: Settings) -> Storage:
    """The backend `Settings.storage_backend` names, built from the other settings.

    Imports are local so a worker on `local` storage never imports boto3 or supabase-py,
    which take a noticeable time to load.
    """
    backend = settings.storage_backend
    if backend == "local":
        from worker.storage.local import LocalStorage

        return LocalStorage(settings.home / "storage", settings.storage_bucket)
    if backend == "s3":
        from worker.storage.s3 import S3Storage

        return S3Storage.from_settings(settings)
    if backend == "supabase":
        from worker.storage.supabase import SupabaseStorage

        return SupabaseStorage.from_settings(settings)
    raise StorageConfigError(f"STORAGE_BACKEND must be supabase, s3 or local, got {backend!r}")
