"""Supabase Storage through supabase-py (`create_client(...).storage.from_(bucket)`).

- Uploads stream the file from disk as a multipart body with `content-type: video/mp4`
  (supabase-py defaults to text/plain, which browsers refuse to play) and `x-upsert: true`,
  so a retried job overwrites its own earlier output. Supabase Storage stores an object
  only once its body is complete, so a cancelled upload (the body aborts mid-stream)
  leaves nothing at the key.
- URLs: a public bucket gives its permanent public URL; a private bucket gives a signed
  URL valid for 7 days. The bucket's `public` flag is read once, on first use, so the
  operator does not have to repeat it in a setting.
- The service key is sent only in headers and is scrubbed from every error message.
- Keys with `%` are refused: supabase-py percent-decodes a key before sending it (so
  `a%2Fb` would land at `a/b`) while `remove` sends it as written, and Supabase Storage
  allows no `%` in a key anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from storage3.exceptions import StorageApiError
from storage3.utils import StorageException
from supabase import ClientOptions, create_client

from worker.errors import StorageError
from worker.settings import Settings
from worker.storage._threads import (
    StoppableFile,
    ThreadedTransfers,
    ThreadProgress,
    check_stop,
    run_stoppable,
)
from worker.storage.base import (
    SIGNED_URL_SECONDS,
    InvalidKeyError,
    ObjectNotFound,
    ObjectTooLarge,
    StorageConfigError,
    check_bucket,
    check_key,
)

CHUNK = 1024 * 1024


class SupabaseStorage(ThreadedTransfers):
    """One bucket of a Supabase project's Storage."""

    name = "supabase"

    def __init__(self, url: str, service_key: str, bucket: str, *, timeout: int = 120) -> None:
        self.bucket = check_bucket(bucket)
        self._url = url.rstrip("/")
        self._secret = service_key
        # Our own httpx client: its timeouts apply per read/write, so a large upload is not
        # cut off, and a dead server is noticed within `timeout` seconds of silence.
        http = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0))
        options = ClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http)
        with self._mapped(""):
            self._storage = create_client(self._url, service_key, options).storage
        self._public: bool | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SupabaseStorage:
        """Build from SUPABASE_URL, SUPABASE_SERVICE_KEY and STORAGE_BUCKET."""
        if not settings.supabase_url or not settings.supabase_service_key:
            raise StorageConfigError(
                "STORAGE_BACKEND is supabase but SUPABASE_URL or SUPABASE_SERVICE_KEY is not set"
            )
        return cls(settings.supabase_url, settings.supabase_service_key, settings.storage_bucket)

    def _check_key(self, key: str) -> str:
        check_key(key)
        if "%" in key:
            raise InvalidKeyError(
                f"storage key {key[:200]!r} is not allowed: Supabase Storage keys may not "
                "contain '%'"
            )
        return key

    def _upload(
        self,
        path: Path,
        key: str,
        content_type: str,
        stop: threading.Event,
        progress: ThreadProgress,
    ) -> None:
        options = {"content-type": content_type, "upsert": "true", "cache-control": "3600"}
        with self._mapped(key), StoppableFile(path, stop, progress) as body:
            self._storage.from_(self.bucket).upload(key, body, options)  # type: ignore[arg-type]

    def _download(
        self, bucket: str, key: str, part: Path, max_bytes: int, stop: threading.Event
    ) -> None:
        """storage3's own `download` returns the whole body in memory; a 2 GiB clip must not,
        so this streams the same authenticated endpoint through the client's own session."""
        url = f"{self._url}/storage/v1/object/{quote(bucket)}/{quote(key, safe='/')}"
        auth = {"apiKey": self._secret, "Authorization": f"Bearer {self._secret}"}
        with (
            self._mapped(key, bucket),
            self._storage.session.stream("GET", url, headers=auth) as response,
        ):
            _raise_for_download(response, bucket, key)
            if int(response.headers.get("content-length") or 0) > max_bytes:
                raise ObjectTooLarge(bucket, key, max_bytes)
            _write_capped(response.iter_bytes(CHUNK), part, bucket, key, max_bytes, stop)

    async def delete(self, key: str) -> None:
        """Remove `key`; Supabase answers 200 for a missing object too."""
        self._check_key(key)

        def remove(stop: threading.Event) -> None:
            with self._mapped(key):
                self._storage.from_(self.bucket).remove([key])

        await run_stoppable(remove)

    async def exists(self, key: str) -> bool:
        """Whether `key` holds an object, from its info (storage3 tells a missing object apart
        from a missing bucket or a bad key there, which a bare HEAD cannot)."""
        self._check_key(key)

        def exists(stop: threading.Event) -> bool:
            with self._mapped(key):
                return bool(self._storage.from_(self.bucket).exists(key))

        return await run_stoppable(exists)

    async def url_for(self, key: str) -> str:
        """The public URL for a public bucket, else a signed URL valid for 7 days."""
        self._check_key(key)
        return await run_stoppable(lambda stop: self._url_for(key))

    def _url_for(self, key: str) -> str:
        with self._mapped(key):
            bucket = self._storage.from_(self.bucket)
            if self._bucket_is_public():
                return str(bucket.get_public_url(key))
            signed = bucket.create_signed_url(key, SIGNED_URL_SECONDS)
            return str(signed["signedURL"])

    def _bucket_is_public(self) -> bool:
        """Read the bucket's `public` flag once; it also proves the bucket exists."""
        with self._lock:
            if self._public is None:
                self._public = bool(self._storage.get_bucket(self.bucket).public)
            return self._public

    @contextmanager
    def _mapped(self, key: str, bucket: str | None = None) -> Iterator[None]:
        """Map storage3/httpx errors to the worker's tree, with the service key scrubbed."""
        try:
            yield
        except StorageApiError as exc:
            raise self._from_api_error(exc, bucket or self.bucket, key) from exc
        except httpx.TransportError as exc:
            raise StorageError(f"cannot reach Supabase Storage ({type(exc).__name__})") from exc
        except (StorageException, httpx.HTTPError) as exc:
            raise StorageError(self._scrub(f"Supabase Storage failed: {exc}")) from exc

    def _from_api_error(self, exc: StorageApiError, bucket: str, key: str) -> Exception:
        status, text = str(exc.status), f"{exc.code} {exc.message}"
        if "bucket not found" in text.lower():
            return StorageConfigError(
                f"the Supabase Storage bucket {bucket!r} does not exist: create it or fix "
                "STORAGE_BUCKET"
            )
        if status == "413" or "exceeded the maximum allowed size" in text.lower():
            # retrying cannot shrink the file: the limit is a setting of the project or bucket
            return StorageConfigError(
                f"the file is larger than Supabase Storage accepts for the bucket {bucket!r}: "
                "raise the project's global file size limit or the bucket's file_size_limit "
                "(Storage settings; 50 MB on the Free plan)"
            )
        if status in ("401", "403") or "jwt" in text.lower():
            return StorageConfigError(
                self._scrub(
                    f"Supabase Storage refused the request ({status} {exc.message}): check "
                    "SUPABASE_SERVICE_KEY and the bucket's policies"
                )
            )
        if status == "404" and key:
            return ObjectNotFound(bucket, key)
        return StorageError(self._scrub(f"Supabase Storage failed ({status} {exc.message})"))

    def _scrub(self, text: str) -> str:
        """The message with the service key removed, wherever a server may have echoed it."""
        return text.replace(self._secret, "[redacted]") if self._secret else text


def _raise_for_download(response: httpx.Response, bucket: str, key: str) -> None:
    """Turn a failed download response into the same errors storage3 raises elsewhere."""
    if response.is_success:
        return
    response.read()
    try:
        body: Any = response.json()
        raise StorageApiError(
            str(body.get("message", "")),
            str(body.get("error", "")),
            body.get("statusCode", response.status_code),
        )
    except (ValueError, AttributeError):
        raise StorageApiError(
            response.reason_phrase, "InternalError", response.status_code
        ) from None


def _write_capped(
    chunks: Iterator[bytes],
    part: Path,
    bucket: str,
    key: str,
    max_bytes: int,
    stop: threading.Event,
) -> None:
    """Write chunks to `part`, counting what arrives rather than trusting Content-Length."""
    received = 0
    with part.open("wb") as out:
        for chunk in chunks:
            check_stop(stop)
            received += len(chunk)
            if received > max_bytes:
                raise ObjectTooLarge(bucket, key, max_bytes)
            out.write(chunk)
