"""The `video-worker` command (also `python -m worker`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from worker import __version__
from worker.errors import PermanentError
from worker.log import configure
from worker.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="video-worker", description="Assemble videos from a Postgres job queue."
    )
    parser.add_argument("--version", action="version", version=f"video-worker {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the worker daemon (claims and runs jobs)")
    run.add_argument(
        "--handler",
        default=None,
        help="job handler as package.module:function (default: the video pipeline)",
    )
    run.add_argument(
        "--no-migrate", action="store_true", help="do not apply pending migrations at start"
    )

    sub.add_parser("migrate", help="apply the SQL migrations in sql/")

    demo = sub.add_parser("demo", help="run one whole job end to end on embedded defaults")
    demo.add_argument("--keep", action="store_true", help="keep the demo's work folder")

    enq = sub.add_parser("enqueue", help="insert a job from clip URLs")
    enq.add_argument("clips", nargs="*", help="clip URLs (http(s):// or storage://bucket/key)")
    enq.add_argument("--payload", help="the whole payload as JSON, or @file.json")
    enq.add_argument("--audio", help="background music URL")
    enq.add_argument("--volume", type=float, help="music volume 0..1")
    enq.add_argument("--duck", action="store_true", help="lower the music under speech")
    enq.add_argument("--width", type=int)
    enq.add_argument("--height", type=int)
    enq.add_argument("--fps", type=float)
    enq.add_argument("--fit", choices=["pad", "crop"])
    enq.add_argument("--path", help="storage key of the output")
    enq.add_argument("--priority", type=int, default=0)
    enq.add_argument("--max-attempts", type=int, default=3)
    enq.add_argument("--idempotency-key")
    enq.add_argument("--webhook-url")
    enq.add_argument("--user-id", type=uuid.UUID)
    enq.add_argument("--wait", action="store_true", help="follow the job until it ends")

    status = sub.add_parser("status", help="one job's state, or the queue's counts")
    status.add_argument("job_id", nargs="?", type=uuid.UUID)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--wait", action="store_true", help="follow the job until it ends")

    cancel = sub.add_parser("cancel", help="request cancellation of a job")
    cancel.add_argument("job_id", type=uuid.UUID)

    cleanup = sub.add_parser("cleanup", help="delete finished jobs older than N days")
    cleanup.add_argument("--days", type=int, default=None)

    sub.add_parser("schema", help="print the payload's JSON Schema (docs/payload.schema.json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "schema":  # needs no settings, database or storage
        from worker.payload.schema import schema_json

        sys.stdout.write(schema_json())
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"video-worker: {exc}", file=sys.stderr)
        return 2
    configure(settings.log_format, settings.secrets())
    try:
        return run_coroutine(_dispatch(args, settings), settings.event_loop)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, PermanentError) as exc:
        # bad arguments or configuration (e.g. a storage backend without its bucket)
        print(f"video-worker: {exc}", file=sys.stderr)
        return 2


def run_coroutine(coro: Coroutine[Any, Any, int], choice: str = "auto") -> int:
    """Run on uvloop where it is installed (a faster event loop: about 0.1 ms less per no-op
    job in bench/bench_queue.py), else on asyncio's own. EVENT_LOOP=asyncio opts out."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                coro.close()
                raise ValueError("EVENT_LOOP=uvloop, but uvloop is not installed") from None
        else:
            return uvloop.run(coro)
    return asyncio.run(coro)


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from worker import commands

    handlers: dict[str, Any] = {
        "run": commands.run,
        "migrate": commands.migrate,
        "demo": commands.demo,
        "enqueue": commands.enqueue,
        "status": commands.status,
        "cancel": commands.cancel,
        "cleanup": commands.cleanup,
    }
    result: int = await handlers[args.command](args, settings)
    return result


def payload_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The payload `enqueue` inserts: --payload as given, else built from the clip URLs."""
    if args.payload:
        text = args.payload
        if text.startswith("@"):
            text = Path(text[1:]).read_text()
        payload: dict[str, Any] = json.loads(text)
        return payload
    if not args.clips:
        raise ValueError("give at least one clip URL, or --payload")
    payload = {"clips": [{"url": url} for url in args.clips]}
    if args.audio:
        audio: dict[str, Any] = {"url": args.audio, "duck": bool(args.duck)}
        if args.volume is not None:
            audio["volume"] = args.volume
        payload["audio"] = audio
    output = {
        k: getattr(args, k)
        for k in ("width", "height", "fps", "fit", "path")
        if getattr(args, k) is not None
    }
    if output:
        payload["output"] = output
    return payload
