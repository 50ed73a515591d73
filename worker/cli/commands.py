"""What each `video-worker` subcommand does (the parser lives in parser.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.app import apply_migrations, load_handler, run_worker, user_limits
from worker.cli.enqueue_args import payload_from_args
from worker.cli.follow import follow
from worker.cli.terminal import JobFollower
from worker.db import preflight
from worker.db.connection import make_pool
from worker.db.preflight import Database
from worker.errors import PayloadError
from worker.log import get_logger
from worker.queue.postgres import PostgresJobStore
from worker.settings import Settings

log = get_logger("video-worker")


def say(text: str) -> None:
    """A line for the operator, on stderr: stdout stays parseable (`status --json | jq`)."""
    print(f"video-worker: {text}", file=sys.stderr, flush=True)


async def checked_database(settings: Settings, *, need_schema: bool = True) -> Database:
    """The database a short command uses, named on stderr and checked within seconds."""
    db = preflight.database(settings)
    say(f"database: {db.label}")
    await preflight.check(db, need_schema=need_schema)
    return db


@asynccontextmanager
async def open_checked_store(
    settings: Settings, *, migrate: bool = False
) -> AsyncIterator[PostgresJobStore]:
    """A small pool on the checked database; `migrate` applies pending migrations first
    (`enqueue` works on a fresh database), else the schema must be there already."""
    db = await checked_database(settings, need_schema=not migrate)
    if migrate:
        await apply_migrations(db.url)
    pool = make_pool(db.url, max_size=2)
    await pool.open(wait=True, timeout=2 * preflight.CONNECT_SECONDS)
    try:
        yield PostgresJobStore(pool)
    finally:
        await pool.close()


async def run(args: argparse.Namespace, settings: Settings) -> int:
    # before anything starts: the embedded server is not even started where it is refused
    if not settings.database_url:
        preflight.refuse_embedded_when_deployed(settings, allowed=args.embedded_ok)
    db = preflight.database(settings)
    if db.embedded:
        log.warning("embedded_database", database=db.label, home=str(settings.home))
    else:
        log.info("database", database=db.label)
    await preflight.check(db, need_schema=args.no_migrate)
    if args.handler:
        handler = load_handler(args.handler)
    else:
        from worker.pipeline import build_pipeline

        handler = build_pipeline(settings)  # the storage client now: bad settings fail at start
    await run_worker(settings, handler, run_migrations=not args.no_migrate, started=_stop_on_hangup)
    return 0


def _stop_on_hangup(runner: Any, _port: int) -> None:
    """SIGHUP (a closed terminal) stops the daemon as gracefully as SIGTERM does."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, runner.request_stop)


async def migrate(_args: argparse.Namespace, settings: Settings) -> int:
    """Apply pending migrations as MIGRATE_DATABASE_URL's role when it is set (the schema's
    owner, while the daemon runs as a least-privilege role), else DATABASE_URL's."""
    if settings.migrate_database_url:
        settings = replace(settings, database_url=settings.migrate_database_url)
    db = await checked_database(settings, need_schema=False)
    applied = await apply_migrations(db.url, user_limits(settings))
    print("applied: " + ", ".join(applied) if applied else "up to date")
    return 0


async def demo(args: argparse.Namespace, settings: Settings) -> int:
    from worker.cli.demo import run_demo

    return await run_demo(settings, keep=args.keep)


async def enqueue(args: argparse.Namespace, settings: Settings) -> int:
    payload = checked_payload(args, settings)
    async with open_checked_store(settings, migrate=True) as store:
        job_id, created = await store.enqueue(
            payload,
            user_id=args.user_id,
            priority=args.priority,
            max_attempts=args.max_attempts,
            idempotency_key=args.idempotency_key,
            webhook_url=args.webhook_url,
        )
        print(f"{'enqueued' if created else 'already enqueued'} {job_id}", flush=True)
        if args.wait:
            return await follow(store, job_id)
    return 0


async def status(args: argparse.Namespace, settings: Settings) -> int:
    async with open_checked_store(settings) as store:
        if args.job_id is None:
            counts = await store.counts()
            if args.json:
                print(json.dumps(counts))
            else:
                print("  ".join(f"{name} {n}" for name, n in counts.items()))
            return 0
        if args.wait:
            return await follow(store, args.job_id)
        row = await store.get(args.job_id)
        if row is None:
            print(f"no job {args.job_id}", file=sys.stderr)
            return 1
        print(
            json.dumps(public_row(row), indent=2, default=str)
            if args.json
            else JobFollower(sys.stdout).summary(row)
        )
        return 0


async def cancel(args: argparse.Namespace, settings: Settings) -> int:
    async with open_checked_store(settings) as store:
        if await store.request_cancel(args.job_id):
            print(f"cancellation requested for {args.job_id}")
            return 0
        row = await store.get(args.job_id)
    if row is None:
        print(f"no job {args.job_id}: nothing to cancel (check the id)", file=sys.stderr)
    else:
        ended = row["status"]
        print(f"job {args.job_id} already ended {ended}; nothing to cancel", file=sys.stderr)
    return 1


async def cleanup(args: argparse.Namespace, settings: Settings) -> int:
    from worker.cleanup import delete_finished

    days = args.days if args.days is not None else settings.retention_days
    async with open_checked_store(settings) as store:
        if not args.delete_files:
            removed = await store.cleanup(days)
            print(f"removed {removed} finished job(s) older than {days} day(s)")
            return 0
        freed = await delete_finished(store, settings, days)
    print(freed.summary(days))
    return 1 if freed.failed else 0


def public_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row for `status --json`: no lease token, every timestamp in one format (UTC, ISO
    8601 with milliseconds and Z), including those inside `errors`."""
    shown = {k: _timestamp(v) for k, v in row.items() if k != "lease_token"}
    if isinstance(shown.get("errors"), list):
        shown["errors"] = [_error_entry(e) for e in shown["errors"]]
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in shown.items()}


def _timestamp(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def _error_entry(entry: Any) -> Any:
    if isinstance(entry, dict) and isinstance(entry.get("at"), str):
        try:
            return {**entry, "at": _timestamp(datetime.fromisoformat(entry["at"]))}
        except ValueError:
            return entry
    return entry


def checked_payload(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The payload `enqueue` inserts, refused with the worker's own message when it cannot
    work."""
    from worker.payload import parse_payload
    from worker.payload.warnings import ignored_keys

    payload = payload_from_args(args)
    if args.no_check:
        return payload
    try:
        parsed = parse_payload(payload, settings)
    except PayloadError as exc:
        raise ValueError(f"{exc}{_local_file_hint(payload)}") from None
    for warning in ignored_keys(payload, parsed):  # as the job's result.warnings will say
        print(f"video-worker: warning: {warning}", file=sys.stderr)
    return payload


def _local_file_hint(payload: dict[str, Any]) -> str:
    """A clip given as a path on this machine: say how to make it reachable."""
    clips = payload.get("clips") if isinstance(payload, dict) else None
    for clip in clips if isinstance(clips, list) else []:
        url = clip.get("url") if isinstance(clip, dict) else None
        if isinstance(url, str) and "://" not in url and Path(url).exists():
            return (
                f" ({url} is a file on this machine: the worker fetches clips by URL, so serve "
                "it over http(s) or upload it and use storage://BUCKET/PATH)"
            )
    return ""
