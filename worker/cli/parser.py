"""The `video-worker` command's arguments, and `main`: parse them, run the command, exit code."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from worker import __version__
from worker.cli.enqueue_args import add_enqueue_arguments
from worker.db.embedded import stop_all
from worker.db.preflight import PreflightError
from worker.errors import PendingLimitError, PermanentError
from worker.log import configure
from worker.settings import MAX_RETENTION_DAYS, Settings, SettingsError

# The variables --help lists; every one is described in docs/configuration.md.
ENVIRONMENT = [
    ("DATABASE_URL", "Postgres connection string; unset: an embedded one (development only)"),
    ("MIGRATE_DATABASE_URL", "`migrate` only: the schema owner's connection (else DATABASE_URL)"),
    ("VIDEO_WORKER_HOME", "local state: embedded database, local storage, temp files"),
    ("ALLOW_EMBEDDED_DATABASE", "true lets `run` use the embedded database where deployed"),
    ("STORAGE_BACKEND", "supabase, s3 or local"),
    ("SUPABASE_URL, SUPABASE_SERVICE_KEY", "Supabase project and service-role key"),
    ("STORAGE_BUCKET", "bucket for outputs (generated-videos)"),
    ("STORAGE_READ_BUCKETS", "more buckets a user's job may read storage:// inputs from"),
    ("S3_BUCKET, S3_ENDPOINT_URL, S3_PUBLIC_BASE_URL", "S3 or an S3-compatible store"),
    ("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION", "S3 credentials"),
    ("POLL_INTERVAL", "ms between polls without a notification (5000)"),
    ("WORKER_CONCURRENCY", "jobs one replica runs at once (1)"),
    ("WORKER_ID", "name of this replica (host-pid)"),
    ("PORT", "HTTP port for /health, /stats, /metrics, / (3001)"),
    ("ALLOW_PRIVATE_URLS", "true lets job URLs reach loopback and private addresses"),
    ("LEASE_SECONDS", "a running job's lease (60)"),
    ("JOB_TIMEOUT", "longest a job may run, seconds (1800)"),
    ("SHUTDOWN_GRACE", "seconds jobs get to finish after SIGTERM (25)"),
    ("MAX_CLIPS, MAX_INPUT_BYTES, MAX_OUTPUT_SECONDS", "limits on one job"),
    ("MAX_INPUT_PIXELS", "largest picture an input may have, in pixels (4096x4096x2)"),
    ("PROBE_TIMEOUT, PROBE_MEMORY_MB", "limits on checking one input (20 s, 1024 MB)"),
    ("MAX_PAYLOAD_BYTES", "largest payload, as JSON text (1048576)"),
    ("MAX_RUNNING_PER_USER", "most jobs of one user_id running at once, all replicas (2)"),
    ("MAX_PENDING_PER_USER", "most jobs of one user_id pending; inserts past it fail (100)"),
    ("ABORT_WAIT", "seconds a stopped job gets to clean up before the worker exits (10)"),
    ("WEBHOOK_SECRET", "key that signs webhook deliveries"),
    ("LOG_FORMAT", "json or console"),
    ("STATS_TOKEN", "bearer token /stats (and /metrics) require when set"),
    ("METRICS_TOKEN", "bearer token /metrics requires instead of STATS_TOKEN"),
    ("RETENTION_DAYS", "cleanup's default age in days (7)"),
    ("AUTO_CLEANUP", "true: the worker deletes old jobs and their files hourly"),
    ("RETRY_BASE_MS", "first retry delay (10000)"),
    ("EVENT_LOOP", "auto, uvloop or asyncio"),
    ("FONTS_DIR", "a folder of more fonts for captions and text (`video-worker fonts` lists all)"),
]


def environment_epilog() -> str:
    width = max(len(name) for name, _ in ENVIRONMENT)
    lines = [f"  {name.ljust(width)}  {meaning}" for name, meaning in ENVIRONMENT]
    return "environment variables (read once at start):\n" + "\n".join(lines)


# What `video-worker COMMAND --help` says first (every command has one; a test holds it).
DESCRIPTIONS = {
    "run": "Run the worker daemon: claim jobs from video_jobs, download, compose with FFmpeg, "
    "upload, and write progress to each row; serve /health, /stats, /metrics and the dashboard "
    "on PORT. The first SIGTERM or Ctrl-C stops claiming and gives running jobs SHUTDOWN_GRACE "
    "seconds; a second hands them back at once.",
    "migrate": "Apply the pending SQL migrations (the files of sql/, packaged in the worker), as "
    "MIGRATE_DATABASE_URL's role when it is set, else DATABASE_URL's. Safe to run from several "
    "places at once; prints what it applied.",
    "demo": "Make sample clips, a still and music, start an embedded Postgres (a database of "
    "its own) and a local file server, and run one composed job end to end with a progress "
    "bar; prints where the video and its poster are.",
    "enqueue": "Insert a job into video_jobs from clip URLs and flags, or a whole payload with "
    "--payload, checked as the worker will check it; keys it would ignore are named as "
    "warnings.",
    "status": "Show one job's state (status, progress, error, result), or with no id the "
    "queue's counts by status.",
    "cancel": "Request a job's cancellation: a pending job never starts; a running one stops "
    "within seconds and leaves no output behind.",
    "cleanup": "Delete finished jobs (completed, failed, cancelled) older than N days; with "
    "--delete-files, their stored videos, posters and captions files too.",
    "schema": "Print the payload's JSON Schema (draft 2020-12), as docs/payload.schema.json "
    "holds it; web apps validate payloads or generate TypeScript types from it.",
    "fonts": "List the font families a payload's `font` may name, the scripts each covers, and "
    "any script no installed font covers.",
}


def _days(text: str) -> int:
    """`cleanup --days`: a whole number of days, at least 1. 0 used to mean 7 and -1 deleted
    jobs that had just finished."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, got {text!r}") from None
    if days < 1:
        raise argparse.ArgumentTypeError(
            f"must be at least 1 (jobs that finished less than a day ago are never removed), "
            f"got {days}"
        )
    if days > MAX_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_RETENTION_DAYS} (a century), got {days}"
        )
    return days


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="video-worker",
        description="Assemble videos from a Postgres job queue.",
        epilog=environment_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"video-worker {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run the worker daemon (claims and runs jobs)",
    )
    run.add_argument(
        "--handler",
        default=None,
        help="job handler as package.module:function (default: the video pipeline)",
    )
    run.add_argument(
        "--no-migrate", action="store_true", help="do not apply pending migrations at start"
    )
    run.add_argument(
        "--embedded-ok",
        action="store_true",
        help="run on the embedded database even where this looks deployed "
        "(same as ALLOW_EMBEDDED_DATABASE=true)",
    )

    sub.add_parser(
        "migrate",
        help="apply the SQL migrations (the numbered files of sql/)",
    )

    demo = sub.add_parser(
        "demo",
        help="run one whole job end to end on embedded defaults",
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep serving the dashboard after the job ends, until Enter or Ctrl-C",
    )

    enq = sub.add_parser(
        "enqueue",
        help="insert a job from clip URLs and flags, or a payload",
    )
    add_enqueue_arguments(enq)
    enq.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    enq.add_argument("--max-attempts", type=int, default=3, help="attempts before it fails (3)")
    enq.add_argument("--idempotency-key", help="a second enqueue with this key adds no job")
    enq.add_argument("--webhook-url", help="receives a signed POST when the job ends")
    enq.add_argument("--user-id", type=uuid.UUID, help="the owner (a UUID), as RLS would set it")
    enq.add_argument("--wait", action="store_true", help="follow the job until it ends")
    enq.add_argument(
        "--no-check",
        action="store_true",
        help="insert the payload unchecked (for workers run with a custom --handler)",
    )

    status = sub.add_parser(
        "status",
        help="one job's state, or the queue's counts",
    )
    status.add_argument("job_id", nargs="?", type=uuid.UUID, help="the job's id (a UUID)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--wait", action="store_true", help="follow the job until it ends")

    cancel = sub.add_parser(
        "cancel",
        help="request cancellation of a job",
    )
    cancel.add_argument("job_id", type=uuid.UUID, help="the job's id (a UUID)")

    cleanup = sub.add_parser(
        "cleanup",
        help="delete finished jobs older than N days",
    )
    cleanup.add_argument(
        "--days", type=_days, default=None, help="age in days, at least 1 (RETENTION_DAYS)"
    )
    cleanup.add_argument(
        "--delete-files",
        action="store_true",
        help="also delete each removed job's stored video, poster and captions file",
    )

    sub.add_parser(
        "schema",
        help="print the payload's JSON Schema (docs/payload.schema.json)",
    )
    sub.add_parser(
        "fonts",
        help="list the font families `font` may name and their scripts",
    )
    for name, command in sub.choices.items():
        command.description = DESCRIPTIONS[name]
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
        return refuse(exc, 2, json_lines=os.environ.get("LOG_FORMAT", "").lower() == "json")
    configure(settings.log_format, settings.secrets())
    if args.command == "fonts":  # needs no database or storage
        from worker.media.picture.fonts import installed, listing

        sys.stdout.write(listing(installed(settings.fonts_dir)))
        return 0
    exit_on_signals()
    try:
        code = run_coroutine(_stopped_by_signals(_dispatch(args, settings)), settings.event_loop)
        sys.stdout.flush()  # a closed pipe shows here, not as a warning at exit
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `status | head -1`: the reader left; say nothing more and keep Python quiet at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except PreflightError as exc:
        return refuse(exc, 2, json_lines=settings.log_format == "json")
    except PendingLimitError as exc:  # the user's queue is full: not the command's mistake
        return refuse(exc, 1, json_lines=settings.log_format == "json")
    except (ValueError, FileNotFoundError, PermanentError) as exc:
        # bad arguments or configuration (e.g. a storage backend without its bucket)
        return refuse(exc, 2, json_lines=settings.log_format == "json")
    finally:
        stop_all()  # leave (and, if last, stop) the embedded database


def refuse(exc: BaseException, code: int, *, json_lines: bool) -> int:
    """Say why the command cannot go on, in one line on stderr: plain for a person, or under
    LOG_FORMAT=json a JSON line like every other line the worker writes (a log pipeline
    reads the reason for a failed start instead of dropping an unparsable line)."""
    if json_lines:
        line = {"event": "command_refused", "level": "error", "error": str(exc), "exit": code,
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")}  # fmt: skip
        print(json.dumps(line, ensure_ascii=False), file=sys.stderr)
    else:
        print(f"video-worker: {exc}", file=sys.stderr)
    return code


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP end a command as an exception does, so `finally` blocks and exit
    hooks run (and the embedded database is stopped); Python's default for both is to die on
    the spot. `run` replaces the SIGTERM handler with its graceful shutdown while it runs."""

    def exit_now(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_now)


async def _stopped_by_signals(command: Coroutine[Any, Any, int]) -> int:
    """Once the loop runs, SIGTERM and SIGHUP cancel the command (its `finally` blocks and
    `async with` exits run) and it exits 128 + the signal; `run` replaces them with its
    graceful shutdown once its runner exists. Raising SystemExit from a plain signal handler
    instead lands in whatever callback the loop is running: in a connection pool's worker it
    left the pool unable to close, and the process hung (seen in CI)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def cancel(sig: int) -> None:
        received.append(sig)
        task.cancel()

    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, cancel, sig)
    try:
        return await command
    except asyncio.CancelledError:
        if received:
            return 128 + received[0]
        raise


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
    from worker.cli import commands

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
