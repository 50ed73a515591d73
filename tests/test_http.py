"""/health, /stats, /metrics and / served by a real runner: on a real database where the answer
comes from it, on the in-memory store (tests/queue/conftest.py) where only the HTTP side is
at stake (tokens, headers, the page)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

import aiohttp
import pytest

from tests.handlers import scripted
from tests.queue.helpers import fast_settings, running, status_is, wait_for
from worker.db.connection import make_pool
from worker.http.server import bound_port, create_app, serve
from worker.queue.memory import MemoryJobStore
from worker.queue.postgres import PostgresJobStore
from worker.queue.runner import Runner


@pytest.fixture
def memory_store() -> MemoryJobStore:
    return MemoryJobStore()


@contextlib.asynccontextmanager
async def http(runner: Runner):
    site = await serve(create_app(runner.status), 0, host="127.0.0.1")
    session = aiohttp.ClientSession(base_url=f"http://127.0.0.1:{bound_port(site)}")
    try:
        yield session
    finally:
        await session.close()
        await site.cleanup()


async def get(session, path, **kw):
    async with session.get(path, **kw) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


async def test_health_and_stats_report_the_worker_and_the_queue(store):
    blocker = asyncio.Event()

    async def handler(job, ctx):
        await ctx.report(42, "processing", "encoding")
        await blocker.wait()

    await store.enqueue({"script": []})
    job_id, _ = await store.enqueue({})
    async with running(store, handler, concurrency=1) as runner, http(runner) as session:
        await wait_for(lambda: asyncio.sleep(0, result=runner.in_flight))
        status, body = await get(session, "/health")
        assert status == 200 and body["status"] == "healthy"
        assert body["worker_id"] == "test-worker" and body["uptime"] >= 0
        await wait_for(
            lambda: asyncio.sleep(
                0, result=any(j["progress"] == 42 for j in runner.in_flight_view())
            )
        )
        status, body = await get(session, "/stats")
        assert status == 200
        for key in (
            "worker_id",
            "processed",
            "failed",
            "lastJobAt",
            "uptime",
            "in_flight",
            "queue",
        ):
            assert key in body
        assert body["queue"]["processing"] == 1 and body["queue"]["pending"] == 1
        [flight] = body["in_flight"]
        assert (flight["progress"], flight["stage"]) == (42, "processing")
        blocker.set()
        await status_is(store, job_id, "completed")
        # the row commits a moment before the runner counts it
        await wait_for(lambda: asyncio.sleep(0, result=runner.counters.processed == 2))
        status, body = await get(session, "/stats")
        assert body["processed"] == 2 and body["lastJobAt"] is not None


async def test_metrics_follow_prometheus_conventions(store):
    job_id, _ = await store.enqueue({"script": [{"fail": "bad payload"}]})
    async with running(store, scripted) as runner, http(runner) as session:
        await status_is(store, job_id, "failed")
        await wait_for(lambda: asyncio.sleep(0, result=runner.counters.failed == 1))
        status, text = await get(session, "/metrics")
    assert status == 200
    assert 'video_worker_jobs_total{outcome="failed"} 1.0' in text
    assert 'video_worker_jobs_total{outcome="completed"} 0.0' in text
    assert 'video_worker_queue_jobs{status="failed"} 1.0' in text
    assert "video_worker_job_duration_seconds_bucket" in text
    assert "video_worker_in_flight_jobs 0.0" in text
    assert str(job_id) not in text  # no job ids as labels


async def test_metrics_and_stats_show_how_late_the_event_loop_ran(memory_store):
    import re
    import time

    async with running(memory_store, scripted) as runner, http(runner) as session:
        monitor = runner.loop_lag
        await wait_for(lambda: asyncio.sleep(0, result=monitor.ticks > 0))
        time.sleep(0.3)  # noqa: ASYNC251 (the loop held on purpose: its tick comes >= 0.2 s late)
        floor = 0.3 - monitor.tick
        status, text = await get(session, "/metrics")
        assert status == 200
        gauges = dict(re.findall(r"^(video_worker_event_loop_lag\w*) (\S+)$", text, re.M))
        assert set(gauges) == {
            "video_worker_event_loop_lag_seconds",
            "video_worker_event_loop_lag_max_seconds",
        }
        assert all(float(v) >= floor for v in gauges.values()), gauges
        status, body = await get(session, "/stats")
    assert status == 200
    lag = body["event_loop_lag"]
    assert set(lag) == {"last", "recent", "max", "window"}
    assert lag["recent"] >= floor and lag["max"] >= floor and lag["window"] == 60, lag


async def test_health_is_503_with_a_reason_when_the_database_is_gone(store):
    dead = make_pool("postgresql://postgres@127.0.0.1:1/none", max_size=1)
    runner = Runner(fast_settings(), PostgresJobStore(dead), scripted)
    async with http(runner) as session:
        status, body = await get(session, "/health")
    assert status == 503 and body["status"] == "unhealthy"
    assert "database unreachable" in body["reason"]


async def test_stats_can_require_a_bearer_token(memory_store):
    runner = Runner(replace(fast_settings(), stats_token="s3cret-token"), memory_store, scripted)
    async with http(runner) as session:
        assert (await get(session, "/stats"))[0] == 401
        bad = {"Authorization": "Bearer nope"}
        assert (await get(session, "/stats", headers=bad))[0] == 401
        good = {"Authorization": "Bearer s3cret-token"}
        status, body = await get(session, "/stats", headers=good)
        assert status == 200 and "s3cret-token" not in str(body)
        assert (await get(session, "/health"))[0] == 200  # the platform's check stays open


async def test_dashboard_is_a_self_contained_page(memory_store):
    runner = Runner(fast_settings(), memory_store, scripted)
    async with http(runner) as session:
        status, html = await get(session, "/")
    assert status == 200 and "<title>video-worker</title>" in html
    assert "http://" not in html and "https://" not in html  # no external assets


@pytest.mark.parametrize(
    "secret_env", ["WEBHOOK_SECRET", "AWS_SECRET_ACCESS_KEY", "SUPABASE_SERVICE_KEY"]
)
def test_secrets_never_reach_logs(secret_env, capsys):
    import io
    import json

    from worker import log as worker_log
    from worker.settings import Settings

    secret = "sk_live_abcdefghijklmnop"
    settings = Settings.from_env(
        {secret_env: secret, "DATABASE_URL": f"postgresql://u:{secret}x@db.example.com/app"}
    )
    out = io.StringIO()
    worker_log.configure("json", settings.secrets(), stream=out)
    worker_log.get_logger().error(
        "upload_failed",
        error=f"denied for key {secret}",
        url=f"postgresql://u:{secret}x@db.example.com/app",
    )
    worker_log.configure("console")
    line = json.loads(out.getvalue())
    assert secret not in out.getvalue() and "***" in line["error"]
    assert secret not in json.dumps(settings.describe())


# ---- the public surface: tokens, bad headers, response headers --------------------------

TOKEN = "stats-T0ken-abcdef"
METRICS = "metrics-T0ken-uvwxyz"


async def raw_get(port: int, path: str, *header_lines: bytes) -> tuple[int, bytes]:
    """One GET written as raw bytes (what no client library would send), and the raw answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = [f"GET {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", *header_lines]
    writer.write(b"\r\n".join([*head, b"Connection: close", b"", b""]))
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return int(answer.split(b" ", 2)[1]), answer


@contextlib.asynccontextmanager
async def public_port(runner: Runner):
    site = await serve(create_app(runner.status), 0, host="127.0.0.1")
    try:
        yield bound_port(site)
    finally:
        await site.cleanup()


BAD_AUTHORIZATION = [
    (b"Authorization: Bearer \xc3\xa9t\xc3\xa9", 400),  # UTF-8 bytes
    (b"Authorization: Bearer \xff\xfe" + TOKEN.encode(), 400),  # not even UTF-8
    (b"Authorization: \xe2\x80\x8bBearer " + TOKEN.encode(), 400),  # a zero-width space first
    (b"Authorization: Bearer " + TOKEN.encode() + b"\x7f", 400),  # DEL
    (b"Authorization: Bearer \x01\x02", 400),  # refused by aiohttp's parser
    (b"Authorization: Bearer " + b"a" * 9000, 400),  # past aiohttp's 8190-byte line
    (b"Authorization: Bearer " + b"a" * 8000, 401),  # long, but a header: just wrong
    (b"Authorization: Bearer", 401),
    (b"Authorization: Bearer ", 401),
    (b"Authorization: Basic " + TOKEN.encode(), 401),
    (b"Authorization: " + TOKEN.encode(), 401),
    (b"Authorization: Bearer " + TOKEN.encode()[:-1], 401),
    (b"Authorization: Bearer " + TOKEN.encode() + b"x", 401),
    (b"Authorization: Bearer " + TOKEN.encode() + b" extra", 401),
    (b"Authorization:", 401),
]


@pytest.mark.parametrize(("header", "status"), BAD_AUTHORIZATION)
async def test_a_bad_authorization_header_gets_4xx_never_a_traceback(memory_store, header, status):
    import io
    import json

    from worker import log as worker_log

    out = io.StringIO()
    worker_log.configure("json", stream=out)
    runner = Runner(fast_settings(stats_token=TOKEN), memory_store, scripted)
    try:
        async with public_port(runner) as port:
            for path in ("/stats", "/metrics"):
                got, answer = await raw_get(port, path, header)
                assert got == status, answer[:300]
                assert b"Traceback" not in answer and b"Server got itself in trouble" not in answer
            good = f"Authorization: Bearer {TOKEN}".encode()
            assert (await raw_get(port, "/stats", good))[0] == 200
    finally:
        worker_log.configure("console")
    logged = out.getvalue()
    assert "Traceback" not in logged and TOKEN not in logged
    for line in map(json.loads, logged.splitlines()):  # a refused request: one line at most
        assert line["event"] == "http_bad_request" and "aaaa" not in line["reason"], line


async def test_metrics_take_their_own_token_or_the_stats_token(memory_store):
    async def status(port: int, path: str, token: str | None = None) -> int:
        header = [f"Authorization: Bearer {token}".encode()] if token else []
        return (await raw_get(port, path, *header))[0]

    cases = [
        # (STATS_TOKEN, METRICS_TOKEN) → which tokens open /stats and /metrics
        ((None, None), {"/stats": [None], "/metrics": [None]}),
        ((TOKEN, None), {"/stats": [TOKEN], "/metrics": [TOKEN]}),
        ((TOKEN, METRICS), {"/stats": [TOKEN], "/metrics": [METRICS]}),
        ((None, METRICS), {"/stats": [None], "/metrics": [METRICS]}),
    ]
    for (stats_token, metrics_token), opens in cases:
        settings = fast_settings(stats_token=stats_token, metrics_token=metrics_token)
        runner = Runner(settings, memory_store, scripted)
        async with public_port(runner) as port:
            for path, [key] in opens.items():
                assert await status(port, path, key) == 200, (stats_token, metrics_token, path)
                for other in {None, TOKEN, METRICS} - {key}:
                    if key is not None:  # an open endpoint ignores whatever is sent
                        assert await status(port, path, other) == 401, (path, key, other)
            assert await status(port, "/health") == 200  # the platform's check stays open
            assert await status(port, "/") == 200  # the page holds no data


async def test_every_response_carries_the_security_headers(memory_store):
    runner = Runner(fast_settings(stats_token=TOKEN), memory_store, scripted)
    async with http(runner) as session:
        for path in ("/", "/health", "/stats", "/metrics", "/no-such-page"):
            async with session.get(path) as resp:
                assert resp.headers["X-Content-Type-Options"] == "nosniff", path
                assert resp.headers["Cache-Control"] == "no-store", path
                assert resp.headers["X-Frame-Options"] == "DENY", path
                csp = resp.headers["Content-Security-Policy"]
                assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, path
        async with session.get("/stats") as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")  # no Basic dialog
        async with session.get("/") as resp:
            csp = resp.headers["Content-Security-Policy"]
            html = await resp.text()
    # only the page's own inline script and style run, by hash
    assert csp.count("'sha256-") == 2 and "connect-src 'self'" in csp
    assert '<meta name="stats-auth" content="token">' in html
    assert "test-worker" not in html  # no data in the page itself


async def test_stats_masks_secrets_and_paths_in_stored_errors(store, tmp_path):
    # rows written before errors were scrubbed (or by another program) still show neither
    secret = "sk_live_0123456789abcdef"
    home = tmp_path / "home"
    job_id, _ = await store.enqueue({})
    error = f"OSError: [Errno 36] File name too long: '{home}/storage/x' key {secret}"
    async with store.pool.connection() as conn:
        await conn.execute(
            "update video_jobs set status = 'failed', error = %s, completed_at = now() "
            "where id = %s",
            (error, job_id),
        )
    settings = fast_settings(webhook_secret=secret, home=home)
    async with http(Runner(settings, store, scripted)) as session:
        status, body = await get(session, "/stats")
    [failure] = body["recent_failures"]
    assert status == 200 and failure["id"] == str(job_id)
    assert secret not in failure["error"] and str(home) not in failure["error"]
    assert "File name too long" in failure["error"]


async def test_operators_see_the_largest_backlogs_and_the_users_waiting(store):
    """/stats lists the users with the most jobs pending (ids and counts only), /metrics says
    how many users wait for their turn."""
    import uuid

    blocker = asyncio.Event()

    async def handler(job, ctx):
        await blocker.wait()

    alice, bob = uuid.UUID(int=0xA), uuid.UUID(int=0xB)
    for _ in range(4):
        await store.enqueue({"secret": "not shown"}, user_id=alice)
    await store.enqueue({}, user_id=bob)
    await store.enqueue({})
    async with running(store, handler, concurrency=1) as runner, http(runner) as session:
        await wait_for(lambda: asyncio.sleep(0, result=runner.in_flight))
        status, body = await get(session, "/stats")
        assert status == 200
        assert body["user_backlogs"] == [
            {"user_id": str(alice), "pending": 3, "running": 1},
            {"user_id": str(bob), "pending": 1, "running": 0},
        ]
        assert body["users_waiting"] == 3  # alice, bob and the backend's rows
        assert "not shown" not in str(body)
        status, text = await get(session, "/metrics")
        assert "video_worker_queue_users_waiting 3.0" in text
        blocker.set()
