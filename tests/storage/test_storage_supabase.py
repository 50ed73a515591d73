"""The supabase backend against a small Supabase Storage API server on 127.0.0.1
(fake_supabase.py), asserting on what reached the wire."""

from __future__ import annotations

import asyncio

import pytest
from fake_supabase import KEY, backend
from storage_helpers import make_file, wait_for

from worker.errors import StorageError
from worker.settings import Settings
from worker.storage import InvalidKeyError, ObjectNotFound, StorageConfigError, make_storage


async def test_upload_sends_video_mp4_with_auth_and_the_exact_bytes(supabase, tmp_path):
    source = make_file(tmp_path / "out.mp4", 3 * 1024 * 1024 + 17)
    stored = await backend(supabase).upload(source, "user-1/job.mp4")
    (sent,) = supabase.uploads
    assert sent["path"] == "videos/user-1/job.mp4"
    assert sent["part_type"] == "video/mp4"
    assert sent["body"] == source.read_bytes()
    assert sent["headers"]["Authorization"] == f"Bearer {KEY}"
    assert sent["headers"]["apiKey"] == KEY
    assert sent["headers"]["x-upsert"] == "true"
    assert stored.url == f"{supabase.base}/storage/v1/object/public/videos/user-1/job.mp4"
    assert stored.bytes == source.stat().st_size


async def test_private_bucket_gets_a_signed_url_for_seven_days(supabase, tmp_path):
    supabase.public["private"] = False
    stored = await backend(supabase, "private").upload(make_file(tmp_path / "a", 10), "u/a.mp4")
    assert stored.url == (
        f"{supabase.base}/storage/v1/object/sign/private/u/a.mp4?token=tok-604800"
    )


async def test_missing_bucket_is_a_configuration_error(supabase, tmp_path):
    with pytest.raises(StorageConfigError, match=r"'nope' does not exist.*STORAGE_BUCKET"):
        await backend(supabase, "nope").upload(make_file(tmp_path / "a", 10), "u/a.mp4")


async def test_a_file_over_the_size_limit_fails_for_good_saying_which_setting(supabase, tmp_path):
    supabase.fail_with = (413, "The object exceeded the maximum allowed size")
    with pytest.raises(StorageConfigError, match=r"file size limit.*Storage settings"):
        await backend(supabase).upload(make_file(tmp_path / "a", 10), "u/a.mp4")


async def test_errors_never_show_the_service_key(supabase, tmp_path):
    supabase.fail_with = (500, f"database exploded near token {KEY}")
    with pytest.raises(StorageError) as caught:
        await backend(supabase).upload(make_file(tmp_path / "a", 10), "u/a.mp4")
    assert KEY not in str(caught.value)
    assert "[redacted]" in str(caught.value)


async def test_unreachable_supabase_is_retryable(tmp_path):
    settings = Settings(
        storage_backend="supabase", supabase_url="http://127.0.0.1:9", supabase_service_key=KEY
    )
    with pytest.raises(StorageError, match="cannot reach Supabase Storage") as caught:
        await make_storage(settings).upload(make_file(tmp_path / "a", 10), "u/a.mp4")
    assert KEY not in str(caught.value) and "127.0.0.1" not in str(caught.value)


async def test_storage_input_download_and_delete(supabase, tmp_path):
    supabase.objects["uploads/user-1/intro.mp4"] = b"intro-bytes"
    storage = backend(supabase)
    dest = await storage.download("uploads", "user-1/intro.mp4", tmp_path / "in", 100)
    assert dest.read_bytes() == b"intro-bytes"
    with pytest.raises(ObjectNotFound):
        await storage.download("uploads", "user-1/none.mp4", tmp_path / "x", 100)
    supabase.objects["videos/u/a.mp4"] = b"v"
    await storage.delete("u/a.mp4")
    assert "videos/u/a.mp4" not in supabase.objects
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


async def test_cancel_mid_upload_stores_nothing(supabase, tmp_path):
    supabase.gate.clear()
    source = make_file(tmp_path / "big.mp4", 24 * 1024 * 1024)
    task = asyncio.create_task(backend(supabase).upload(source, "u/big.mp4"))
    await wait_for(lambda: supabase.reading)
    task.cancel()
    supabase.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: supabase.aborted == 1)
    assert supabase.objects == {} and supabase.uploads == []


@pytest.mark.parametrize("key", ["u/a%2Fb.mp4", "u/%2E%2E/v/a.mp4", "u%2Fa.mp4"])
async def test_percent_in_a_key_is_refused_before_any_request(supabase, tmp_path, key):
    """supabase-py percent-decodes keys it uploads but sends remove() keys as written: the
    same key would name two objects. Supabase Storage allows no '%' in keys anyway."""
    storage = backend(supabase)
    for call in (
        storage.upload(make_file(tmp_path / "a", 10), key),
        storage.download(None, key, tmp_path / "in", 100),
        storage.exists(key),
        storage.delete(key),
    ):
        with pytest.raises(InvalidKeyError, match="may not contain '%'"):
            await call
    assert supabase.uploads == [] and supabase.deleted == []
