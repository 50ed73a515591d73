"""The s3 backend against a real S3-compatible HTTP server (moto) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from storage_helpers import StallingProxy, make_file, s3_settings, wait_for

from worker.errors import StorageError
from worker.storage import (
    ObjectNotFound,
    ObjectTooLarge,
    StorageConfigError,
    make_storage,
)
from worker.storage.s3 import S3Storage

MIB = 1024 * 1024
SMALL_PARTS = TransferConfig(
    multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=2
)


def s3_storage(endpoint: str, bucket: str, **overrides: Any) -> S3Storage:
    return S3Storage.from_settings(s3_settings(endpoint, bucket, **overrides), transfer=SMALL_PARTS)


def assert_absent(admin: Any, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as caught:
        admin.head_object(Bucket=bucket, Key=key)
    assert caught.value.response["Error"]["Code"] == "404"


async def test_factory_builds_s3_from_settings(moto_endpoint, bucket):
    storage = make_storage(s3_settings(moto_endpoint, bucket))
    assert isinstance(storage, S3Storage) and storage.bucket == bucket


async def test_multipart_upload_with_content_type(moto_endpoint, bucket, s3_admin, tmp_path):
    source = make_file(tmp_path / "out.mp4", 12 * MIB)
    progress: list[tuple[int, int]] = []
    storage = s3_storage(moto_endpoint, bucket)
    stored = await storage.upload(
        source, "user-1/job.mp4", on_bytes=lambda n, t: progress.append((n, t))
    )
    head = s3_admin.head_object(Bucket=bucket, Key="user-1/job.mp4")
    assert head["ContentType"] == "video/mp4"
    assert head["ContentLength"] == 12 * MIB
    assert head["ETag"].strip('"').endswith("-3")  # three parts: multipart really ran
    assert (stored.key, stored.bytes, stored.bucket) == ("user-1/job.mp4", 12 * MIB, bucket)
    await wait_for(lambda: bool(progress) and progress[-1] == (12 * MIB, 12 * MIB))


async def test_public_base_url_form(moto_endpoint, bucket, tmp_path):
    storage = s3_storage(
        moto_endpoint, bucket, s3_public_base_url="https://cdn.example.com/videos/"
    )
    stored = await storage.upload(make_file(tmp_path / "a.mp4", 1000), "u/a.mp4")
    assert stored.url == "https://cdn.example.com/videos/u/a.mp4"


async def test_presigned_url_fetches_the_bytes(moto_endpoint, bucket, tmp_path):
    source = make_file(tmp_path / "a.mp4", 300_000)
    stored = await s3_storage(moto_endpoint, bucket).upload(source, "u/a.mp4")
    query = parse_qs(urlsplit(stored.url).query)
    assert query["X-Amz-Expires"] == ["604800"]
    assert urlsplit(stored.url).path == f"/{bucket}/u/a.mp4"  # path-style addressing
    async with aiohttp.ClientSession() as session, session.get(stored.url) as response:
        assert response.status == 200
        assert await response.read() == source.read_bytes()


async def test_cancel_mid_upload_leaves_nothing_behind(moto_endpoint, bucket, s3_admin, tmp_path):
    host, port = urlsplit(moto_endpoint).hostname, urlsplit(moto_endpoint).port
    proxy = StallingProxy(host, port, budget=7 * MIB)
    await proxy.start()
    try:
        storage = s3_storage(f"http://127.0.0.1:{proxy.port}", bucket)
        source = make_file(tmp_path / "big.mp4", 20 * MIB)
        task = asyncio.create_task(storage.upload(source, "u/big.mp4"))
        await wait_for(lambda: proxy.stalled)
        task.cancel()
        proxy.release()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await proxy.close()
    assert_absent(s3_admin, bucket, "u/big.mp4")
    assert s3_admin.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


async def test_missing_bucket_is_a_clear_configuration_error(moto_endpoint, tmp_path):
    storage = s3_storage(moto_endpoint, "no-such-bucket")
    with pytest.raises(StorageConfigError, match=r"'no-such-bucket' does not exist.*S3_BUCKET"):
        await storage.upload(make_file(tmp_path / "a.mp4", 1000), "u/a.mp4")


async def test_unreachable_endpoint_is_retryable(tmp_path):
    storage = s3_storage("http://127.0.0.1:9", "bucket")
    started = time.monotonic()
    with pytest.raises(StorageError, match="cannot reach S3 storage") as caught:
        await storage.upload(make_file(tmp_path / "a.mp4", 1000), "u/a.mp4")
    assert time.monotonic() - started < 30
    # the row's error names neither the endpoint nor the object's URL (botocore's text does)
    assert "127.0.0.1" not in str(caught.value) and "u/a.mp4" not in str(caught.value)


async def test_delete_removes_and_tolerates_missing(moto_endpoint, bucket, s3_admin, tmp_path):
    storage = s3_storage(moto_endpoint, bucket)
    await storage.upload(make_file(tmp_path / "a.mp4", 1000), "u/a.mp4")
    await storage.delete("u/a.mp4")
    assert_absent(s3_admin, bucket, "u/a.mp4")
    await storage.delete("u/a.mp4")


async def test_storage_input_download_is_capped(moto_endpoint, bucket, s3_admin, tmp_path):
    s3_admin.create_bucket(Bucket=f"{bucket}-in")
    s3_admin.put_object(Bucket=f"{bucket}-in", Key="clips/a.mp4", Body=b"x" * 5000)
    storage = s3_storage(moto_endpoint, bucket)
    dest = await storage.download(f"{bucket}-in", "clips/a.mp4", tmp_path / "a", 10_000)
    assert dest.read_bytes() == b"x" * 5000
    with pytest.raises(ObjectTooLarge):
        await storage.download(f"{bucket}-in", "clips/a.mp4", tmp_path / "b", 4999)
    with pytest.raises(ObjectNotFound):
        await storage.download(f"{bucket}-in", "clips/none.mp4", tmp_path / "c", 10_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


async def test_upload_errors_never_show_the_local_file(moto_endpoint, tmp_path):
    """boto3's S3UploadFailedError names the file being uploaded: a server path."""
    storage = s3_storage(moto_endpoint, "no-such-bucket-here")
    with pytest.raises(StorageConfigError, match="does not exist") as caught:
        await storage.upload(make_file(tmp_path / "out.mp4", 10), "u/a.mp4")
    assert str(tmp_path) not in str(caught.value) and "out.mp4" not in str(caught.value)
