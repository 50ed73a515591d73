"""What each `video-worker` subcommand does (the parser lives in cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from typing import Any

from worker.app import apply_migrations, load_handler, open_store, run_worker
from worker.db.embedded import resolve_database_url
from worker.queue.jobs import JobStore
from worker.queue.models import Status
from worker.settings import Settings
from worker.terminal import JobFollower

FOLLOW_EVERY = 0.5


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.handler:
        handler = load_handler(args.handler)
    else:
        from worker.pipeline import Pipeline

        handler = Pipeline(settings)  # builds the storage client now: bad settings fail at start
    await run_worker(settings, handler, run_migrations=not args.no_migrate)
    return 0


async def migrate(_args: argparse.Namespace, settings: Settings) -> int:
    applied = await apply_migrations(resolve_database_url(settings.database_url, settings.home))
    print("applied: " + ", ".join(applied) if applied else "up to date")
    return 0


async def demo(args: argparse.Namespace, settings: Settings) -> int:
    from worker.demo import run_demo

    return await run_demo(settings, keep=args.keep)


async def enqueue(args: argparse.Namespace, settings: Settings) -> int:
    from worker.cli import payload_from_args

    payload = payload_from_args(args)
    await apply_migrations(resolve_database_url(settings.database_url, settings.home))
    async with open_store(settings) as store:
        job_id, created = await store.enqueue(
            payload,
            user_id=args.user_id,
            priority=args.priority,
            max_attempts=args.max_attempts,
            idempotency_key=args.idempotency_key,
            webhook_url=args.webhook_url,
        )
        print(f"{'enqueued' if created else 'already enqueued'} {job_id}")
        if args.wait:
            return await follow(store, job_id)
    return 0


async def status(args: argparse.Namespace, settings: Settings) -> int:
    async with open_store(settings) as store:
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
            json.dumps(_public(row), indent=2, default=str)
            if args.json
            else JobFollower(sys.stdout).summary(row)
        )
        return 0


async def cancel(args: argparse.Namespace, settings: Settings) -> int:
    async with open_store(settings) as store:
        if await store.request_cancel(args.job_id):
            print(f"cancellation requested for {args.job_id}")
            return 0
        print(f"job {args.job_id} is not pending or processing", file=sys.stderr)
        return 1


async def cleanup(args: argparse.Namespace, settings: Settings) -> int:
    async with open_store(settings) as store:
        removed = await store.cleanup(args.days or settings.retention_days)
    print(f"removed {removed} finished job(s)")
    return 0


async def watch(
    store: JobStore, job_id: uuid.UUID, follower: JobFollower, every: float = FOLLOW_EVERY
) -> dict[str, Any] | None:
    """Show a job's progress until it ends; its final row, or None if there is no such job."""
    while True:
        row = await store.get(job_id)
        if row is None:
            return None
        follower.update(row)
        if Status(row["status"]).terminal:
            return row
        await asyncio.sleep(every)


async def follow(store: JobStore, job_id: uuid.UUID) -> int:
    """`--wait`: follow the job, then its summary; exit 0 only when it completed."""
    follower = JobFollower(sys.stdout)
    row = await watch(store, job_id, follower)
    if row is None:
        print(f"no job {job_id}", file=sys.stderr)
        return 1
    follower.done(row)
    return 0 if row["status"] == Status.COMPLETED else 1


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "lease_token"}
