"""Publishing an attempt's objects and undoing it, on every backend: local files, a real
S3-compatible server (moto) and the Supabase Storage API fake.

What must hold everywhere: undo deletes only what the attempt created; a user's job writes
nothing outside its folder; the poster-folder trick (job A's path `V/x.jpg/y.mp4`, then job B
at `V/x.mp4`) never costs V its video.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_supabase import backend as supabase_backend
from storage_helpers import make_file, s3_settings

from worker.settings import Settings
from worker.storage import InvalidKeyError, Storage, make_storage
from worker.storage.publication import Publication
from worker.storage.tenancy import OutsideTenant, Tenancy

OWNER = uuid.UUID("6f1c2a9e-3b7d-4c55-9e0a-1d2b3c4d5e6f")
VICTIM = "0b0b0b0b-0000-4000-8000-000000000000"


@dataclass
class Backend:
    """A backend, plus the test's own view behind its back."""

    storage: Storage
    place: Callable[[str, bytes], None]  # store an object as someone else would have
    objects: Callable[[], dict[str, bytes]]  # every object in the output bucket
    server_path: str  # a server path that must never appear in an error


def _local(tmp_path: Path) -> Backend:
    storage = make_storage(Settings(home=tmp_path / "home", storage_bucket="videos"))
    root = tmp_path / "home" / "storage" / "videos"

    def place(key: str, data: bytes) -> None:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)

    def objects() -> dict[str, bytes]:
        found = root.rglob("*") if root.exists() else []
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in found if p.is_file()}

    return Backend(storage, place, objects, str(tmp_path))


def _s3(endpoint: str, bucket: str, admin: Any, tmp_path: Path) -> Backend:
    storage = make_storage(s3_settings(endpoint, bucket))

    def place(key: str, data: bytes) -> None:
        admin.put_object(Bucket=bucket, Key=key, Body=data)

    def objects() -> dict[str, bytes]:
        listed = admin.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {
            o["Key"]: admin.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed
        }

    return Backend(storage, place, objects, str(tmp_path))


def _supabase(fake: Any, tmp_path: Path) -> Backend:
    def place(key: str, data: bytes) -> None:
        fake.objects[f"videos/{key}"] = data

    def objects() -> dict[str, bytes]:
        return {k.removeprefix("videos/"): v for k, v in fake.objects.items()}

    return Backend(supabase_backend(fake), place, objects, str(tmp_path))


@pytest.fixture(params=["local", "s3", "supabase"])
def backend(request, tmp_path) -> Backend:
    if request.param == "local":
        return _local(tmp_path)
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        bucket = request.getfixturevalue("bucket")
        return _s3(endpoint, bucket, request.getfixturevalue("s3_admin"), tmp_path)
    return _supabase(request.getfixturevalue("supabase"), tmp_path)


def trusted(b: Backend) -> Publication:
    return Publication(b.storage, Tenancy.for_job(None, b.storage.bucket))


def owned(b: Backend) -> Publication:
    return Publication(b.storage, Tenancy.for_job(OWNER, b.storage.bucket))


async def test_exists_tells_an_object_from_nothing(backend, tmp_path):
    backend.place("a/b.mp4", b"v")
    assert await backend.storage.exists("a/b.mp4")
    assert not await backend.storage.exists("a/c.mp4")
    assert not await backend.storage.exists("a")  # a folder (or a prefix) is not an object


async def test_undo_deletes_what_the_attempt_created(backend, tmp_path):
    publication = owned(backend)
    await publication.put(make_file(tmp_path / "p.jpg", 10), f"{OWNER}/j.jpg", "image/jpeg")
    await publication.put(make_file(tmp_path / "v.mp4", 100), f"{OWNER}/j.mp4")
    assert set(backend.objects()) == {f"{OWNER}/j.jpg", f"{OWNER}/j.mp4"}
    await publication.undo()
    assert backend.objects() == {}


async def test_undo_keeps_what_the_attempt_replaced(backend, tmp_path):
    """A retried job overwrites its own earlier output, but never deletes it on failure."""
    backend.place(f"{OWNER}/j.mp4", b"earlier attempt")
    publication = owned(backend)
    await publication.put(make_file(tmp_path / "p.jpg", 10), f"{OWNER}/j.jpg", "image/jpeg")
    new = make_file(tmp_path / "v.mp4", 100)
    await publication.put(new, f"{OWNER}/j.mp4")
    assert backend.objects()[f"{OWNER}/j.mp4"] == new.read_bytes()  # upsert: the key is the job's
    await publication.undo()
    assert set(backend.objects()) == {f"{OWNER}/j.mp4"}


@pytest.mark.parametrize(
    "key",
    [
        f"{VICTIM}/x.mp4",
        f"{OWNER}x/x.mp4",
        f"{str(OWNER).upper()}/x.mp4",
        f"{OWNER}/%2E%2E/{VICTIM}/x.mp4",
        f"anonymous/{OWNER}.mp4",
    ],
)
async def test_a_user_job_writes_nothing_outside_its_folder(backend, tmp_path, key):
    backend.place(f"{VICTIM}/x.mp4", b"victim")
    publication = owned(backend)
    with pytest.raises(OutsideTenant, match="is not allowed"):
        await publication.put(make_file(tmp_path / "v.mp4", 100), key)
    await publication.undo()
    assert backend.objects() == {f"{VICTIM}/x.mp4": b"victim"}


async def test_the_poster_folder_trick_never_costs_the_victim_its_video(backend, tmp_path):
    """Job A (same owner, or a trusted row) stored `V/x.jpg/y.mp4`: on local storage that makes
    a folder where V's poster would go. Job B publishes at `V/x.mp4`: the poster first, then
    the video. Whether the poster is refused (local) or stored (S3, Supabase), B's failure
    leaves V's video and A's object as they were."""
    backend.place("V/x.mp4", b"victim video")
    backend.place("V/x.jpg/y.mp4", b"job A")
    publication = trusted(backend)
    try:
        await publication.put(make_file(tmp_path / "p.jpg", 10), "V/x.jpg", "image/jpeg")
        await publication.put(make_file(tmp_path / "v.mp4", 100), "V/x.mp4")
        raise RuntimeError("the encode's last step failed")  # B fails after publishing
    except (InvalidKeyError, RuntimeError) as exc:
        assert backend.server_path not in str(exc)
        await publication.undo()
    objects = backend.objects()
    assert objects["V/x.jpg/y.mp4"] == b"job A"
    assert "V/x.mp4" in objects and "V/x.jpg" not in objects


async def test_local_refuses_a_key_that_is_a_folder_or_under_a_file(tmp_path):
    local = _local(tmp_path)
    local.place("V/x.jpg/y.mp4", b"a")
    local.place("V/x.mp4", b"v")
    source = make_file(tmp_path / "s", 10)
    with pytest.raises(InvalidKeyError, match=r"'V/x\.jpg' cannot be written: a folder") as one:
        await local.storage.upload(source, "V/x.jpg")
    with pytest.raises(InvalidKeyError, match=r"'V/x\.mp4' is an object, not a folder") as two:
        await local.storage.upload(source, "V/x.mp4/z.mp4")
    for caught in (one, two):
        assert str(tmp_path) not in str(caught.value) and "/storage/" not in str(caught.value)
    await local.storage.delete("V/x.jpg")  # deleting a "key" that is a folder removes nothing
    assert local.objects() == {"V/x.jpg/y.mp4": b"a", "V/x.mp4": b"v"}
