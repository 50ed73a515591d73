"""Wiring: settings → database → job store → runner + HTTP server, for `video-worker run`."""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from worker.cleanup import AutoCleanup
from worker.db.connection import connect, make_pool
from worker.db.embedded import resolve_database_url
from worker.db.migrate import migrate
from worker.http.server import bound_port, check_port, create_app, serve
from worker.log import SecretMasker, get_logger
from worker.media.picture.fonts import installed
from worker.metrics import WorkerMetrics
from worker.pipeline.scratch import sweep_orphans
from worker.queue.postgres import PostgresJobStore
from worker.queue.queries import QUERIES
from worker.queue.runner import Handler, Runner, listener_on
from worker.queue.store import UserLimits
from worker.settings import Settings
from worker.webhooks.outbox import WebhookOutbox
from worker.webhooks.store import OutboxStore

log = get_logger("video-worker")

# The exit status of a replica whose job handler ignored cancellation (sysexits' EX_SOFTWARE):
# not 0, so that the platform starts a fresh one.
EXIT_STUCK = 70


def load_handler(spec: str) -> Handler:
    """`package.module:function` → the function."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"handler must look like package.module:function, got {spec!r}")
    handler: Handler = getattr(importlib.import_module(module_name), attr)
    return handler


def user_limits(settings: Settings) -> UserLimits:
    """MAX_RUNNING_PER_USER and MAX_PENDING_PER_USER, as the database keeps them."""
    return UserLimits(settings.max_running_per_user, settings.max_pending_per_user)


async def apply_migrations(url: str, limits: UserLimits | None = None) -> list[str]:
    """Apply pending migrations; with `limits`, also write them where the database reads them
    (`video-worker migrate` does; `enqueue`, which migrates a fresh database, does not)."""
    conn = await connect(url)
    try:
        applied = await migrate(conn)
        if limits is not None:
            await conn.execute(
                QUERIES["write_limits"],
                {"max_running": limits.max_running, "max_pending": limits.max_pending},
            )
        return applied
    finally:
        await conn.close()


@asynccontextmanager
async def open_store(settings: Settings, *, max_size: int = 4) -> AsyncIterator[PostgresJobStore]:
    """A job store on a pool, for the CLI's short commands."""
    url = resolve_database_url(settings.database_url, settings.home)
    pool = make_pool(url, max_size=max_size)
    await pool.open(wait=True, timeout=30)
    try:
        yield PostgresJobStore(pool, max_payload_bytes=settings.max_payload_bytes)
    finally:
        await pool.close()


async def run_worker(
    settings: Settings, handler: Handler, *, run_migrations: bool = True, started: Any = None
) -> Runner:
    """Run the daemon until SIGTERM/SIGINT; returns the runner (for its counters)."""
    check_port(settings.port)
    url = resolve_database_url(settings.database_url, settings.home)
    loop = type(asyncio.get_running_loop())
    log.info(  # secrets shown only as "set"
        "settings", **settings.describe(), loop=f"{loop.__module__}.{loop.__qualname__}"
    )
    if run_migrations:
        applied = await apply_migrations(url)
        if applied:
            log.info("migrations_applied", names=applied)
    installed(settings.fonts_dir)  # read once (1-2 s of font files) before any job can wait on it
    pool = make_pool(url, max_size=settings.concurrency + 4)
    await pool.open(wait=False)
    store = PostgresJobStore(pool, max_payload_bytes=settings.max_payload_bytes)
    # before /health first answers: the claim and the pending cap read them from the database
    await store.set_limits(user_limits(settings))
    await _sweep_scratch(settings, store)
    outbox = WebhookOutbox(settings, OutboxStore(pool))
    cleanup = AutoCleanup(settings, store)

    async def periodic() -> None:
        await outbox.sweep()
        await cleanup.maybe_run()

    # built once here, for the whole process: the runner counts into the metrics and masks
    # row errors with the masker; its status view hands both to the HTTP side
    runner = Runner(
        settings,
        store,
        handler,
        on_finished=outbox.on_finished,
        periodic=periodic,
        metrics=WorkerMetrics(),
        masker=SecretMasker(settings.secrets()),
        listener=listener_on(url),
    )
    try:
        site = await serve(create_app(runner.status), settings.port)
    except BaseException:
        await pool.close()
        raise
    remove_signals = runner.install_signal_handlers()
    settle_heap()
    if started is not None:
        started(runner, bound_port(site))
    # logged only once SIGTERM and SIGHUP stop the runner gracefully: whoever waits for this
    # line (a test, a supervisor) may signal at once, and a signal before that would meet the
    # CLI's exit-now handler in the middle of the loop
    log.info("http_listening", port=bound_port(site))
    try:
        await runner.run()
    finally:
        remove_signals()
        await site.cleanup()
        await pool.close()
    if runner.stuck:
        exit_now(EXIT_STUCK, runner.stuck)
    return runner


def settle_heap() -> None:
    """Set the start-up objects (modules, settings, pools: all long-lived) aside from the
    garbage collector, so a full collection while jobs run scans only what jobs made: a pause
    of the event loop that grows with everything ever imported is a pause every job shares."""
    gc.collect()
    gc.freeze()


async def _sweep_scratch(settings: Settings, store: PostgresJobStore) -> None:
    """Remove what a killed worker left in HOME/tmp (see worker/pipeline/scratch.py); a
    database that does not answer yet only postpones it to the next start."""
    try:
        removed = await sweep_orphans(settings.home, store.job_statuses)
    except Exception as exc:
        log.warning("scratch_sweep_skipped", error=f"{type(exc).__name__}")
        return
    if removed:
        log.info("scratch_swept", folders=len(removed))


def exit_now(code: int, reason: str) -> None:
    """End the process at once. A handler that ignored cancellation may still be running (or
    a thread it waits on): a normal exit would wait for it, since asyncio.run cancels and
    awaits every task and joins the default executor's threads."""
    log.error("exiting", code=code, reason=reason)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
