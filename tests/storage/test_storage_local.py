"""The local backend end to end: publish, URL, download, delete, key escapes, cancellation."""

from __future__ import annotations

import asyncio
import os
from urllib.request import url2pathname

import pytest
from storage_helpers import make_file, wait_for

from worker.errors import StorageError
from worker.settings import Settings
from worker.storage import InvalidKeyError, ObjectNotFound, ObjectTooLarge, make_storage
from worker.storage.local import LocalStorage


def local(tmp_path) -> LocalStorage:
    storage = make_storage(Settings(home=tmp_path / "home", storage_bucket="videos"))
    assert isinstance(storage, LocalStorage)
    return storage


def files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


async def test_upload_publishes_a_file_url(tmp_path):
    storage = local(tmp_path)
    source = make_file(tmp_path / "out.mp4", 3_000_000)
    stored = await storage.upload(source, "user-1/job.mp4")
    target = tmp_path / "home" / "storage" / "videos" / "user-1" / "job.mp4"
    assert target.read_bytes() == source.read_bytes()
    assert stored.url.startswith("file://")
    assert url2pathname(stored.url.removeprefix("file://")) == str(target.resolve())
    assert await storage.url_for("user-1/job.mp4") == stored.url
    assert files_under(tmp_path / "home") == ["storage/videos/user-1/job.mp4"]


async def test_download_delete_and_caps(tmp_path):
    storage = local(tmp_path)
    await storage.upload(make_file(tmp_path / "a.mp4", 1000), "u/a.mp4")
    dest = await storage.download(None, "u/a.mp4", tmp_path / "copy", 1000)
    assert dest.read_bytes() == (tmp_path / "a.mp4").read_bytes()
    with pytest.raises(ObjectTooLarge):
        await storage.download(None, "u/a.mp4", tmp_path / "copy2", 999)
    with pytest.raises(ObjectNotFound):
        await storage.download("other", "u/a.mp4", tmp_path / "copy3", 1000)
    await storage.delete("u/a.mp4")
    await storage.delete("u/a.mp4")  # twice is fine
    assert files_under(tmp_path / "home") == []


@pytest.mark.parametrize(
    "key",
    [
        "../escape.mp4",
        "/etc/passwd",
        "a/../../b.mp4",
        "a//b.mp4",
        "",
        "a\\..\\b",
        "./a.mp4",
        "a/\x00.mp4",
        "a/" + "x" * 300 + ".mp4",  # over the file system's 255-byte name limit
        "a/" + "é" * 128 + ".mp4",  # 256 bytes in UTF-8, though 132 characters
    ],
)
async def test_keys_that_escape_the_bucket_are_refused(tmp_path, key):
    storage = local(tmp_path)
    with pytest.raises(InvalidKeyError):
        await storage.upload(make_file(tmp_path / "a.mp4", 10), key)
    assert not (tmp_path / "home").exists() or files_under(tmp_path / "home") == []


async def test_symlink_out_of_the_bucket_is_refused(tmp_path):
    storage = local(tmp_path)
    bucket = tmp_path / "home" / "storage" / "videos"
    bucket.mkdir(parents=True)
    (bucket / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidKeyError, match="leaves the bucket"):
        await storage.upload(make_file(tmp_path / "a.mp4", 10), "link/a.mp4")


async def test_cancel_mid_upload_publishes_nothing(tmp_path):
    """The source is a FIFO, so the copy is held mid-file exactly where the test wants it."""
    storage = local(tmp_path)
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    task = asyncio.create_task(storage.upload(fifo, "u/job.mp4"))
    writer = await asyncio.to_thread(open, fifo, "wb")
    try:
        await asyncio.to_thread(writer.write, b"x" * 100_000)
        await asyncio.to_thread(writer.flush)
        folder = tmp_path / "home" / "storage" / "videos" / "u"
        await wait_for(lambda: folder.is_dir() and any(folder.iterdir()))
        task.cancel()
        await asyncio.to_thread(writer.write, b"y" * 100_000)
    finally:
        await asyncio.to_thread(writer.close)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(tmp_path / "home") == []


async def test_a_255_byte_name_is_stored_and_long_names_fail_before_any_io(tmp_path):
    storage = local(tmp_path)
    longest = "u/" + "x" * 251 + ".mp4"
    await storage.upload(make_file(tmp_path / "a.mp4", 10), longest)
    assert files_under(tmp_path / "home") == [f"storage/videos/{longest}"]
    with pytest.raises(InvalidKeyError, match="longer than 255 bytes") as caught:
        await storage.upload(make_file(tmp_path / "b.mp4", 10), "u/" + "y" * 300 + ".mp4")
    assert str(tmp_path) not in str(caught.value)
    assert files_under(tmp_path / "home") == [f"storage/videos/{longest}"]


async def test_write_errors_name_the_key_never_the_server_path(tmp_path):
    storage = local(tmp_path)
    with pytest.raises(StorageError) as caught:  # the worker's own file went missing
        await storage.upload(tmp_path / "gone.mp4", "u/a.mp4")
    assert str(caught.value) == "local storage could not write 'u/a.mp4': no such file or directory"
    assert not isinstance(caught.value, InvalidKeyError)
