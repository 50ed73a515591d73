"""/health, /stats, /metrics and / served by a real runner on a real database."""

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
from worker.queue.jobs import JobStore
from worker.queue.runner import Runner


@contextlib.asynccontextmanager
async def http(runner: Runner):
    site = await serve(create_app(runner), 0, host="127.0.0.1")
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


async def test_health_is_503_with_a_reason_when_the_database_is_gone(store):
    dead = make_pool("postgresql://postgres@127.0.0.1:1/none", max_size=1)
    runner = Runner(fast_settings(), JobStore(dead), scripted)
    async with http(runner) as session:
        status, body = await get(session, "/health")
    assert status == 503 and body["status"] == "unhealthy"
    assert "database unreachable" in body["reason"]


async def test_stats_can_require_a_bearer_token(store):
    runner = Runner(replace(fast_settings(), stats_token="s3cret-token"), store, scripted)
    async with http(runner) as session:
        assert (await get(session, "/stats"))[0] == 401
        bad = {"Authorization": "Bearer nope"}
        assert (await get(session, "/stats", headers=bad))[0] == 401
        good = {"Authorization": "Bearer s3cret-token"}
        status, body = await get(session, "/stats", headers=good)
        assert status == 200 and "s3cret-token" not in str(body)
        assert (await get(session, "/health"))[0] == 200  # the platform's check stays open


async def test_dashboard_is_a_self_contained_page(store):
    runner = Runner(fast_settings(), store, scripted)
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
