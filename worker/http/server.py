"""The worker's HTTP side, on the worker's own event loop: /health, /stats, /metrics and /.

`create_app(runner)` builds the aiohttp application; `serve(app, port)` starts it. /health is
what the platform's health check calls: it answers fast and checks what matters (the claim
loop is alive, the database answers). /stats may be protected by STATS_TOKEN.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from worker.queue.runner import Runner

HEALTH_DB_TIMEOUT = 3.0
DASHBOARD = Path(__file__).with_name("dashboard.html")
RUNNER_KEY: web.AppKey[Runner] = web.AppKey("runner", Runner)


def create_app(runner: Runner) -> web.Application:
    app = web.Application()
    app[RUNNER_KEY] = runner
    app.router.add_get("/health", health)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", dashboard)
    return app


async def serve(app: web.Application, port: int, host: str = "0.0.0.0") -> web.AppRunner:  # noqa: S104
    site_runner = web.AppRunner(app, access_log=None)
    await site_runner.setup()
    await web.TCPSite(site_runner, host, port).start()
    return site_runner


def bound_port(site_runner: web.AppRunner) -> int:
    return int(site_runner.addresses[0][1])


async def health(request: web.Request) -> web.Response:
    runner = request.app[RUNNER_KEY]
    problems: list[str] = []
    if not runner.loop_alive():
        problems.append("the claim loop has stalled")
    try:
        async with asyncio.timeout(HEALTH_DB_TIMEOUT):
            await runner.store.ping()
    except Exception as exc:
        problems.append(f"database unreachable: {type(exc).__name__}")
    body: dict[str, Any] = {
        "status": "unhealthy" if problems else "healthy",
        "worker_id": runner.worker_id,
        "uptime": round(time.time() - runner.started_at, 1),
        "draining": runner.draining,
        "listener": runner.listener_state,
        "in_flight": len(runner.in_flight),
    }
    if problems:
        body["reason"] = "; ".join(problems)
    return web.json_response(body, status=503 if problems else 200)


def _authorized(request: web.Request, token: str | None) -> bool:
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


async def stats(request: web.Request) -> web.Response:
    runner = request.app[RUNNER_KEY]
    if not _authorized(request, runner.settings.stats_token):
        return web.json_response({"error": "unauthorized"}, status=401)
    return web.json_response(await collect_stats(runner))


async def collect_stats(runner: Runner) -> dict[str, Any]:
    counters = runner.counters
    body: dict[str, Any] = {
        "worker_id": runner.worker_id,
        "processed": counters.processed,
        "failed": counters.failed,
        "cancelled": counters.cancelled,
        "retried": counters.retried,
        "lastJobAt": _iso(counters.last_job_at),
        "lastSuccessAt": _iso(counters.last_success_at),
        "uptime": round(time.time() - runner.started_at, 1),
        "concurrency": runner.settings.concurrency,
        "draining": runner.draining,
        "listener": runner.listener_state,
        "database": "up" if runner.db_ok else "down",
        "in_flight": runner.in_flight_view(),
        "queue": None,
        "queue_estimated": [],  # statuses counted from planner statistics (large tables)
        "recent_failures": [],
    }
    try:
        async with asyncio.timeout(HEALTH_DB_TIMEOUT):
            queue = await runner.store.queue_counts()
            body["queue"] = queue.counts
            body["queue_estimated"] = sorted(queue.estimated)
            body["recent_failures"] = [
                {
                    "id": str(r["id"]),
                    "error": r["error"],
                    "attempts": r["attempts"],
                    "completed_at": r["completed_at"].isoformat() if r["completed_at"] else None,
                }
                for r in await runner.store.recent_failures(10)
            ]
    except Exception as exc:
        body["queue_error"] = f"database unreachable: {type(exc).__name__}"
    return body


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


async def metrics(request: web.Request) -> web.Response:
    runner = request.app[RUNNER_KEY]
    m = runner.metrics
    m.in_flight.set(len(runner.in_flight))
    m.up.set(1 if runner.db_ok else 0)
    m.listening.set(1 if runner.listener_state == "listening" else 0)
    if runner.counters.last_success_at:
        m.last_success.set(runner.counters.last_success_at)
    try:
        async with asyncio.timeout(HEALTH_DB_TIMEOUT):
            queue = await runner.store.queue_counts()
            for status, n in queue.counts.items():
                m.queue.labels(status).set(n)
                m.queue_estimated.labels(status).set(1 if status in queue.estimated else 0)
            m.oldest_ready.set(await runner.store.oldest_pending_seconds())
    except Exception:
        m.up.set(0)
    return web.Response(
        body=m.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


async def dashboard(_request: web.Request) -> web.Response:
    return web.Response(text=DASHBOARD.read_text(), content_type="text/html")
