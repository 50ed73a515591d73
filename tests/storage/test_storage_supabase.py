"""The supabase backend against a small Supabase Storage API server on 127.0.0.1.

The fake speaks the endpoints supabase-py calls and records what it received, so the tests
assert on the wire: content type, auth headers, upsert and the exact body bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from storage_helpers import make_file, wait_for

from worker.errors import StorageError
from worker.settings import Settings
from worker.storage import ObjectNotFound, StorageConfigError, make_storage
from worker.storage.supabase import SupabaseStorage

KEY = "service-role-key-SECRET-0123456789"


@dataclass
class FakeSupabase:
    base: str = ""
    public: dict[str, bool] = field(default_factory=lambda: {"videos": True, "private": False})
    objects: dict[str, bytes] = field(default_factory=dict)
    uploads: list[dict] = field(default_factory=list)
    aborted: int = 0
    reading: bool = False
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    fail_with: tuple[int, str] | None = None

    def __post_init__(self) -> None:
        self.gate.set()


def _error(status: int, error: str, message: str) -> web.Response:
    return web.json_response(
        {"statusCode": str(status), "error": error, "message": message}, status=status
    )


def _authorised(request: web.Request) -> bool:
    return (
        request.headers.get("Authorization") == f"Bearer {KEY}"
        and request.headers.get("apiKey") == KEY
    )


def _routes(fake: FakeSupabase) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/storage/v1/bucket/{bucket}")
    async def bucket(request: web.Request) -> web.Response:
        name = request.match_info["bucket"]
        if name not in fake.public:
            return _error(404, "Bucket not found", "Bucket not found")
        return web.json_response(
            {
                "id": name,
                "name": name,
                "owner": "",
                "public": fake.public[name],
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
                "file_size_limit": None,
                "allowed_mime_types": None,
            }
        )

    @routes.post("/storage/v1/object/sign/{bucket}/{path:.+}")
    async def sign(request: web.Request) -> web.Response:
        path = f"{request.match_info['bucket']}/{request.match_info['path']}"
        expires = (await request.json())["expiresIn"]
        return web.json_response({"signedURL": f"/object/sign/{path}?token=tok-{expires}"})

    @routes.post("/storage/v1/object/{bucket}/{path:.+}")
    async def upload(request: web.Request) -> web.Response:
        if fake.fail_with:
            status, message = fake.fail_with
            return _error(status, "internal", message)
        if request.match_info["bucket"] not in fake.public:
            return _error(404, "Bucket not found", "Bucket not found")
        return await _receive(fake, request)

    @routes.get("/storage/v1/object/{bucket}/{path:.+}")
    async def download(request: web.Request) -> web.Response:
        if not _authorised(request):
            return _error(403, "Unauthorized", "invalid signature")
        path = f"{request.match_info['bucket']}/{request.match_info['path']}"
        if path not in fake.objects:
            return _error(404, "not_found", "Object not found")
        return web.Response(body=fake.objects[path], content_type="video/mp4")

    @routes.delete("/storage/v1/object/{bucket}")
    async def delete(request: web.Request) -> web.Response:
        prefixes = (await request.json())["prefixes"]
        for prefix in prefixes:
            fake.objects.pop(f"{request.match_info['bucket']}/{prefix}", None)
        return web.json_response([{"name": p} for p in prefixes])

    return routes


async def _receive(fake: FakeSupabase, request: web.Request) -> web.Response:
    """Read the multipart body; store the object only if the whole body arrived."""
    path = f"{request.match_info['bucket']}/{request.match_info['path']}"
    record = {"headers": dict(request.headers), "path": path}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.name == "file":
                record["part_type"] = part.headers.get("Content-Type")
                record["body"] = await _read_file_part(fake, part)
            else:
                record[part.name] = await part.text()
    except BaseException:  # the client went away mid-body: Supabase stores nothing
        fake.aborted += 1
        raise
    fake.uploads.append(record)
    fake.objects[path] = record["body"]
    return web.json_response({"Key": path, "Id": "1"})


async def _read_file_part(fake: FakeSupabase, part) -> bytes:
    chunks = []
    while chunk := await part.read_chunk(256 * 1024):
        chunks.append(chunk)
        fake.reading = True
        await fake.gate.wait()
    return b"".join(chunks)


@pytest.fixture
async def supabase() -> AsyncIterator[FakeSupabase]:
    fake = FakeSupabase()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes(_routes(fake))
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield fake
    fake.gate.set()
    await runner.cleanup()


def backend(fake: FakeSupabase, bucket: str = "videos") -> SupabaseStorage:
    settings = Settings(
        storage_backend="supabase",
        supabase_url=fake.base,
        supabase_service_key=KEY,
        storage_bucket=bucket,
    )
    storage = make_storage(settings)
    assert isinstance(storage, SupabaseStorage)
    return storage


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
    assert KEY not in str(caught.value)


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
