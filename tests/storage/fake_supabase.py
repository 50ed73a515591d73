"""A small Supabase Storage API server on 127.0.0.1, for the supabase backend's tests.

It speaks the endpoints supabase-py calls and records what it received, so the tests assert
on the wire: content type, auth headers, upsert and the exact body bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from worker.settings import Settings
from worker.storage import make_storage
from worker.storage.supabase import SupabaseStorage

KEY = "service-role-key-SECRET-0123456789"


@dataclass
class FakeSupabase:
    base: str = ""
    public: dict[str, bool] = field(default_factory=lambda: {"videos": True, "private": False})
    objects: dict[str, bytes] = field(default_factory=dict)
    uploads: list[dict] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    aborted: int = 0
    reading: bool = False
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    fail_with: tuple[int, str] | None = None
    fail_suffix: str | None = None  # uploads to paths ending so get a 500

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


# The handlers find the fake through the app, so they can live at module level, one per route.
FAKE = web.AppKey("fake", FakeSupabase)
routes = web.RouteTableDef()


@routes.get("/storage/v1/bucket/{bucket}")
async def bucket(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
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
    fake = request.app[FAKE]
    if fake.fail_with:
        status, message = fake.fail_with
        return _error(status, "internal", message)
    if fake.fail_suffix and request.match_info["path"].endswith(fake.fail_suffix):
        return _error(500, "internal", "the disk is full")
    if request.match_info["bucket"] not in fake.public:
        return _error(404, "Bucket not found", "Bucket not found")
    return await _receive(fake, request)


@routes.get("/storage/v1/object/info/{bucket}/{path:.+}")
async def info(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    if not _authorised(request):
        return _error(403, "Unauthorized", "invalid signature")
    path = f"{request.match_info['bucket']}/{request.match_info['path']}"
    if path not in fake.objects:
        return _error(404, "not_found", "Object not found")
    return web.json_response({"name": request.match_info["path"], "size": len(fake.objects[path])})


@routes.get("/storage/v1/object/{bucket}/{path:.+}")
async def download(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    if not _authorised(request):
        return _error(403, "Unauthorized", "invalid signature")
    path = f"{request.match_info['bucket']}/{request.match_info['path']}"
    if path not in fake.objects:
        return _error(404, "not_found", "Object not found")
    return web.Response(body=fake.objects[path], content_type="video/mp4")


@routes.delete("/storage/v1/object/{bucket}")
async def delete(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    prefixes = (await request.json())["prefixes"]
    for prefix in prefixes:
        fake.deleted.append(f"{request.match_info['bucket']}/{prefix}")
        fake.objects.pop(f"{request.match_info['bucket']}/{prefix}", None)
    return web.json_response([{"name": p} for p in prefixes])


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


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[FakeSupabase]:
    fake = FakeSupabase()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[FAKE] = fake
    app.add_routes(routes)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield fake
    finally:
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
