"""Helpers for the fetch tests: a real HTTP server on 127.0.0.1 with one route per behaviour."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from worker.fetch import FetchPolicy

BODY = bytes(range(256)) * 1200  # 300 KiB, recognisable
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ClipServer:
    """The running server: its base URL and what it saw."""

    base: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    in_flight: int = 0
    max_in_flight: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `predicate()` holds, failing the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


def fast_policy(**overrides: float) -> FetchPolicy:
    """Retry and timeout thresholds small enough for tests to run in seconds."""
    values: dict = dict(
        connect_timeout=2,
        read_timeout=2,
        min_speed=1,
        speed_window=10,
        attempts=3,
        backoff_base=0.01,
        backoff_cap=0.05,
        max_retry_after=2,
        max_redirects=5,
        chunk_size=16 * 1024,
    )
    values.update(overrides)
    return FetchPolicy(**values)


async def _ok(request: web.Request) -> web.StreamResponse:
    return web.Response(body=BODY, content_type="video/mp4")


async def _missing(request: web.Request) -> web.StreamResponse:
    return web.Response(status=404, text="no such clip")


async def _broken(request: web.Request) -> web.StreamResponse:
    return web.Response(status=500)


async def _trickle(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
    await response.prepare(request)
    for _ in range(len(BODY) // 100):
        await response.write(b"x" * 100)
        await asyncio.sleep(0.05)
    return response


async def _stall(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
    await response.prepare(request)
    await response.write(BODY[:1000])
    await asyncio.Event().wait()  # never sends the rest; ends when the client leaves
    return response


async def _big_honest(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"\0" * 2_000_000)


async def _big_chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(40):
        await response.write(b"\0" * 50_000)
    return response


async def _big_gzip(request: web.Request) -> web.StreamResponse:
    """Content-Length says ~2 KB; the body inflates to 2 MB (a decompression bomb)."""
    packed = gzip.compress(b"\0" * 2_000_000)
    return web.Response(body=packed, headers={"Content-Encoding": "gzip"})


async def _chain(request: web.Request) -> web.StreamResponse:
    left = int(request.match_info["n"])
    raise web.HTTPFound("/ok" if left == 0 else f"/chain/{left - 1}")


async def _loop(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/loop")


async def _redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(request.query["to"])


async def _raw_redirect(request: web.Request) -> web.StreamResponse:
    """Location exactly as given: HTTPFound would normalise its host through yarl."""
    return web.Response(status=302, headers={"Location": request.query["to"]})


def _routes(server: ClipServer) -> dict[str, Handler]:
    """The route table; the handlers that read the server's counters or gate are closures."""

    async def flaky(request: web.Request) -> web.StreamResponse:
        if server.hits["/flaky"] <= 2:
            return web.Response(status=503)
        return web.Response(body=BODY)

    async def limited(request: web.Request) -> web.StreamResponse:
        if server.hits["/limited"] == 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.Response(body=BODY)

    async def hold(request: web.Request) -> web.StreamResponse:
        """Sends a first chunk, then waits for the test to open the gate."""
        response = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
        await response.prepare(request)
        await response.write(BODY[:50_000])
        await server.gate.wait()
        await response.write(BODY[50_000:])
        return response

    return {
        "/ok": _ok,
        "/missing": _missing,
        "/flaky": flaky,
        "/broken": _broken,
        "/limited": limited,
        "/trickle": _trickle,
        "/stall": _stall,
        "/hold": hold,
        "/big-honest": _big_honest,
        "/big-chunked": _big_chunked,
        "/big-gzip": _big_gzip,
        "/chain/{n}": _chain,
        "/loop": _loop,
        "/redirect": _redirect,
        "/raw-redirect": _raw_redirect,
    }


def _counting(server: ClipServer, handler: Handler) -> Handler:
    async def counted(request: web.Request) -> web.StreamResponse:
        server.hits[request.path] += 1
        server.times[request.path].append(time.monotonic())
        server.in_flight += 1
        server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            return await handler(request)
        finally:
            server.in_flight -= 1

    return counted


async def start_clip_server() -> tuple[ClipServer, web.AppRunner]:
    """Start the server on a free port of 127.0.0.1."""
    server = ClipServer()
    app = web.Application()
    for path, handler in _routes(server).items():
        app.router.add_get(path, _counting(server, handler))
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return server, runner
