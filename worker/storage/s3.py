"""S3 and S3-compatible stores (AWS, R2, MinIO, Supabase's S3 endpoint) through boto3.

Uploads go through `upload_file` with a `TransferConfig`: the file is streamed from disk in
parts, and S3 publishes a multipart upload only when CompleteMultipartUpload succeeds, so
the final key never holds a partial video. Cancelling raises from the progress callback;
s3transfer then aborts the multipart upload, so no parts are left billed either.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from worker.errors import StorageError
from worker.settings import Settings
from worker.storage._threads import (
    ThreadedTransfers,
    ThreadProgress,
    check_stop,
    run_stoppable,
)
from worker.storage.base import (
    SIGNED_URL_SECONDS,
    ObjectNotFound,
    ObjectTooLarge,
    StorageConfigError,
    check_bucket,
    check_key,
)

MIB = 1024 * 1024
DEFAULT_TRANSFER = TransferConfig(
    multipart_threshold=16 * MIB, multipart_chunksize=16 * MIB, max_concurrency=4
)
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AllAccessDisabled",
    "InvalidToken",
    "ExpiredToken",
    "403",
    "401",
}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}


class S3Storage(ThreadedTransfers):
    """One bucket of an S3-compatible store."""

    name = "s3"

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        public_base_url: str | None = None,
        transfer: TransferConfig = DEFAULT_TRANSFER,
    ) -> None:
        self._client = client
        self.bucket = check_bucket(bucket)
        self._public_base = public_base_url.rstrip("/") if public_base_url else None
        self._transfer = transfer

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> S3Storage:
        """Build the client from settings; path-style addressing whenever an endpoint is set,
        because MinIO, Supabase and most S3-compatibles do not serve bucket subdomains."""
        if not settings.s3_bucket:
            raise StorageConfigError("STORAGE_BACKEND is s3 but S3_BUCKET is not set")
        client = make_client(settings)
        return cls(
            client,
            settings.s3_bucket,
            public_base_url=settings.s3_public_base_url,
            **kwargs,
        )

    def _upload(
        self,
        path: Path,
        key: str,
        content_type: str,
        stop: threading.Event,
        progress: ThreadProgress,
    ) -> None:
        def on_chunk(n: int) -> None:
            check_stop(stop)  # raising here makes s3transfer abort the multipart upload
            progress.add(n)

        with self._mapped(key):
            self._client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Config=self._transfer,
                Callback=on_chunk,
            )

    def _download(
        self, bucket: str, key: str, part: Path, max_bytes: int, stop: threading.Event
    ) -> None:
        with self._mapped(key, bucket):
            response = self._client.get_object(Bucket=bucket, Key=key)
            body = response["Body"]
            try:
                if response.get("ContentLength", 0) > max_bytes:
                    raise ObjectTooLarge(bucket, key, max_bytes)
                _stream_capped(body, part, bucket, key, max_bytes, stop)
            finally:
                body.close()

    async def delete(self, key: str) -> None:
        """Delete `key`; S3 answers success for a missing key, which suits repeated cleanup."""
        check_key(key)

        def delete(stop: threading.Event) -> None:
            with self._mapped(key):
                self._client.delete_object(Bucket=self.bucket, Key=key)

        await run_stoppable(delete)

    async def exists(self, key: str) -> bool:
        """Whether `key` holds an object: a HEAD request, 404 meaning no."""
        check_key(key)

        def head(stop: threading.Event) -> None:
            with self._mapped(key):
                self._client.head_object(Bucket=self.bucket, Key=key)

        try:
            await run_stoppable(head)
        except ObjectNotFound:
            return False
        return True

    async def url_for(self, key: str) -> str:
        """`S3_PUBLIC_BASE_URL/key` when configured, else a GET URL presigned for 7 days."""
        check_key(key)
        if self._public_base:
            return f"{self._public_base}/{quote(key, safe='/~')}"
        with self._mapped(key):
            return str(
                self._client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket, "Key": key},
                    ExpiresIn=SIGNED_URL_SECONDS,
                )
            )

    def _mapped(self, key: str, bucket: str | None = None) -> _BotoErrors:
        return _BotoErrors(bucket or self.bucket, key)


def make_client(settings: Settings) -> Any:
    """A boto3 S3 client from settings: explicit keys when given, else boto3's own chain."""
    addressing = "path" if settings.s3_endpoint_url else "auto"
    config = Config(
        s3={"addressing_style": addressing},
        signature_version="s3v4",
        connect_timeout=10,
        read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.aws_region or "us-east-1",
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        config=config,
    )


def _stream_capped(
    body: Any, part: Path, bucket: str, key: str, max_bytes: int, stop: threading.Event
) -> None:
    """Copy a streaming body to `part`, counting what arrives rather than trusting headers."""
    received = 0
    with part.open("wb") as out:
        for chunk in body.iter_chunks(MIB):
            check_stop(stop)
            received += len(chunk)
            if received > max_bytes:
                raise ObjectTooLarge(bucket, key, max_bytes)
            out.write(chunk)


class _BotoErrors:
    """Maps botocore and boto3 errors to the worker's tree, at this edge and nowhere else."""

    def __init__(self, bucket: str, key: str) -> None:
        self._bucket, self._key = bucket, key

    def __enter__(self) -> None:
        return None

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if exc is None or not isinstance(exc, Exception):
            return
        client_error = _find_client_error(exc)
        if client_error is not None:
            raise self._from_client_error(client_error) from exc
        if isinstance(exc, NoCredentialsError):
            raise StorageConfigError(
                "S3 credentials are missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from exc
        if isinstance(exc, boto3.exceptions.Boto3Error):  # its text names the local file
            raise StorageError(f"S3 storage failed ({type(exc).__name__})") from exc
        if isinstance(exc, BotoCoreError):
            # botocore's text names the endpoint and the object's URL: internals, kept for the
            # log (the exception is chained), out of the row's error
            raise StorageError(f"cannot reach S3 storage ({type(exc).__name__})") from exc

    def _from_client_error(self, error: ClientError) -> Exception:
        code = str(error.response.get("Error", {}).get("Code", ""))
        bucket = self._bucket
        if code == "NoSuchBucket":
            return StorageConfigError(
                f"the S3 bucket {bucket!r} does not exist: create it or fix S3_BUCKET "
                "(or S3_ENDPOINT_URL)"
            )
        if code in _DENIED:
            return StorageConfigError(
                f"access to the S3 bucket {bucket!r} was denied ({code}): check "
                "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's policy"
            )
        if code in _MISSING_KEY:
            return ObjectNotFound(bucket, self._key)
        return StorageError(f"S3 storage failed ({code or 'unknown error'})")


def _find_client_error(exc: BaseException) -> ClientError | None:
    """The ClientError behind `exc`: boto3 wraps it in S3UploadFailedError without `from`."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, ClientError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
