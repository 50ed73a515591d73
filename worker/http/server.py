"""The worker's HTTP side, on the worker's own event loop: /health, /stats, /metrics and /.

`create_app(status)` builds the aiohttp application on a worker's read-only status view
(worker.queue.status.StatusView, which the runner gives as `runner.status`: the HTTP side never
sees the runner itself); `serve(app, port)` starts it. /health is what the platform's health
check calls: it answers fast and checks what matters (the claim loop is alive, the database
answers), and stays open.

On a platform the service is public. With STATS_TOKEN set, /stats asks for
`Authorization: Bearer <token>`, and so does /metrics (with METRICS_TOKEN when that is set,
else the same STATS_TOKEN: one setting protects everything but /health). The page at / holds
no data: it asks for the token and keeps it in the tab's sessionStorage.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from worker.log import SecretMasker, get_logger
from worker.queue.status import StatusView
from worker.row_error import scrub_paths
from worker.settings import Settings, SettingsError

HEALTH_DB_TIMEOUT = 3.0
DASHBOARD = Path(__file__).with_name("dashboard.html")
STATUS_KEY: web.AppKey[StatusView] = web.AppKey("status")
log = get_logger("video-worker")

# Every response: no sniffing, no framing, no caching, no referrer; JSON and text may load
# nothing at all. The page sets its own policy (see `Page`).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
# In dashboard.html; replaced when the page must ask for the token before it fetches /stats.
PAGE_OPEN = '<meta name="stats-auth" content="open">'
PAGE_ASKS = '<meta name="stats-auth" content="token">'


@dataclass(frozen=True)
class Page:
    """The dashboard as served, and a Content-Security-Policy that lets only its own inline
    script and style run (by hash), fetch only this origin, and submit no form anywhere."""

    html: str
    csp: str

    @classmethod
    def load(cls, *, ask_token: bool) -> Page:
        html = DASHBOARD.read_text()
        if ask_token:
            html = html.replace(PAGE_OPEN, PAGE_ASKS)
        csp = (
            "default-src 'none'; "
            f"script-src {_hashes(html, 'script')}; style-src {_hashes(html, 'style')}; "
            "connect-src 'self'; img-src data:; form-action 'none'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        return cls(html, csp)


PAGE_KEY: web.AppKey[Page] = web.AppKey("page", Page)


def _hashes(html: str, tag: str) -> str:
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.DOTALL)
    digests = [base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in found]
    return " ".join(f"'sha256-{d}'" for d in digests) or "'none'"


def create_app(status: StatusView) -> web.Application:
    app = web.Application()
    app[STATUS_KEY] = status
    app[PAGE_KEY] = Page.load(ask_token=bool(status.settings.stats_token))
    app.on_response_prepare.append(_security_headers)
    _log_bad_requests_in_one_line()
    app.router.add_get("/health", health)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", dashboard)
    return app


async def serve(app: web.Application, port: int, host: str = "0.0.0.0") -> web.AppRunner:  # noqa: S104
    """Listen on `port`; a port another program holds is a SettingsError that says so."""
    site_runner = web.AppRunner(app, access_log=None)
    await site_runner.setup()
    try:
        await web.TCPSite(site_runner, host, port).start()
    except OSError as exc:
        await site_runner.cleanup()
        raise SettingsError(port_taken(port, exc)) from None
    return site_runner


def check_port(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104
    """Fail at once, before the database is touched, when `port` is taken (a second local
    worker on the default 3001): binding late left a half-started worker behind."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SettingsError(port_taken(port, exc)) from None


def port_taken(port: int, exc: OSError) -> str:
    return (
        f"PORT {port} cannot be used ({exc.strerror or exc}): another worker or program "
        "listens there; set PORT to a free port (0 picks one)"
    )


def bound_port(site_runner: web.AppRunner) -> int:
    return int(site_runner.addresses[0][1])


async def health(request: web.Request) -> web.Response:
    status = request.app[STATUS_KEY]
    now = status.snapshot()
    problems: list[str] = []
    if not now.loop_alive:
        problems.append("the claim loop has stalled")
    if now.stuck:  # the replica is draining to exit: a fresh one must replace it
        problems.append(now.stuck)
    try:
        async with asyncio.timeout(HEALTH_DB_TIMEOUT):
            await status.reads.ping()
    except Exception as exc:
        problems.append(f"database unreachable: {type(exc).__name__}")
    body: dict[str, Any] = {
        "status": "unhealthy" if problems else "healthy",
        "worker_id": now.worker_id,
        "uptime": now.uptime,
        "draining": now.draining,
        "listener": now.listener,
        "in_flight": len(now.in_flight),
    }
    if problems:
        body["reason"] = "; ".join(problems)
    return web.json_response(body, status=503 if problems else 200)


def metrics_token(settings: Settings) -> str | None:
    """METRICS_TOKEN, else STATS_TOKEN: setting STATS_TOKEN alone closes /metrics too."""
    return settings.metrics_token or settings.stats_token


def _refusal(request: web.Request, token: str | None) -> web.Response | None:
    """None when the request may pass; else 401 (no token, another scheme, a wrong token) or
    400 (a header that is not printable ASCII, which no token of ours can be)."""
    if not token:
        return None
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return _answer(401, "unauthorized", "send Authorization: Bearer <token>")
    if not (header.isascii() and header.isprintable()):
        return _answer(400, "invalid_request", "the Authorization header must be printable ASCII")
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return _answer(401, "unauthorized", "send Authorization: Bearer <token>")
    if not hmac.compare_digest(given.strip().encode("ascii"), token.encode()):
        return _answer(401, "invalid_token", "the token was refused")
    return None


def _answer(status: int, error: str, detail: str) -> web.Response:
    challenge = 'Bearer realm="video-worker"'
    if error != "unauthorized":
        challenge += f', error="{error}"'
    return web.json_response(
        {"error": error, "detail": detail},
        status=status,
        headers={hdrs.WWW_AUTHENTICATE: challenge},
    )


async def stats(request: web.Request) -> web.Response:
    status = request.app[STATUS_KEY]
    refused = _refusal(request, status.settings.stats_token)
    if refused is not None:
        return refused
    body = await collect_stats(status)
    return web.json_response(_shown(body, status.masker, status.settings))


def _shown(body: dict[str, Any], masker: SecretMasker, settings: Settings) -> dict[str, Any]:
    """/stats as served: errors (some written by older versions) masked and path-free."""
    for failure in body["recent_failures"]:
        if failure.get("error"):
            failure["error"] = scrub_paths(masker.mask(failure["error"]), settings.home)
    if body.get("queue_error"):
        body["queue_error"] = masker.mask(body["queue_error"])
    return body


async def collect_stats(status: StatusView) -> dict[str, Any]:
    now = status.snapshot()
    counters = now.counters
    body: dict[str, Any] = {
        "worker_id": now.worker_id,
        "processed": counters.processed,
        "failed": counters.failed,
        "cancelled": counters.cancelled,
        "retried": counters.retried,
        "lastJobAt": _iso(counters.last_job_at),
        "lastSuccessAt": _iso(counters.last_success_at),
        "uptime": now.uptime,
        "concurrency": status.settings.concurrency,
        "draining": now.draining,
        "listener": now.listener,
        "database": "up" if now.database_up else "down",
        "in_flight": now.in_flight,
        "event_loop_lag": now.loop_lag.as_json(),  # seconds: last tick, worst in window, ever
        "queue": None,
        "queue_estimated": [],  # statuses counted from planner statistics (large tables)
        "recent_failures": [],
    }
    try:
        async with asyncio.timeout(HEALTH_DB_TIMEOUT):
            queue = await status.reads.queue_counts()
            body["queue"] = queue.counts
            body["queue_estimated"] = sorted(queue.estimated)
            body["recent_failures"] = [
                {
                    "id": str(r["id"]),
                    "error": r["error"],
                    "attempts": r["attempts"],
                    "completed_at": r["completed_at"].isoformat() if r["completed_at"] else None,
                }
                for r in await status.reads.recent_failures(10)
            ]
    except Exception as exc:
        body["queue_error"] = f"database unreachable: {type(exc).__name__}"
    return body


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


async def metrics(request: web.Request) -> web.Response:
    status = request.app[STATUS_KEY]
    refused = _refusal(request, metrics_token(status.settings))
    if refused is not None:
        return refused
    now, m = status.snapshot(), status.metrics
    m.in_flight.set(len(now.in_flight))
    m.up.set(1 if now.database_up else 0)
    m.listening.set(1 if now.listener == "listening" else 0)
    m.loop_lag.set(now.loop_lag.recent)
    m.loop_lag_max.set(now.loop_lag.max)
    if now.counters.last_success_at:
        m.last_success.set(now.counters.last_success_at)
    try:
        async with asyncio.timeout(HEALTH_DB_TIMEOUT):
            queue = await status.reads.queue_counts()
            for name, n in queue.counts.items():
                m.queue.labels(name).set(n)
                m.queue_estimated.labels(name).set(1 if name in queue.estimated else 0)
            m.oldest_ready.set(await status.reads.oldest_pending_seconds())
    except Exception:
        m.up.set(0)
    return web.Response(
        body=m.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


async def dashboard(request: web.Request) -> web.Response:
    page = request.app[PAGE_KEY]
    return web.Response(
        text=page.html, content_type="text/html", headers={"Content-Security-Policy": page.csp}
    )


async def _security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


class _BadRequestLine(logging.Filter):
    """aiohttp logs a request it cannot parse (a header too long, a control character) with a
    traceback at ERROR; on a public port that is a scanner's noise, not our error. One line
    instead, naming the problem without quoting the request's bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            reason = str(exc.message).split(":", 1)[0].strip()[:120]
            log.info("http_bad_request", status=exc.code, reason=reason)
            return False
        return True


def _log_bad_requests_in_one_line() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _BadRequestLine) for f in server_log.filters):
        server_log.addFilter(_BadRequestLine())
