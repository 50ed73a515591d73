"""Every setting the worker reads from the environment, read in one place and passed down.

The names are part of the public contract (shared/spec/video-jobs.md) and never change.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

GIB = 1024**3


class SettingsError(ValueError):
    """A setting has a value the worker cannot use; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of bucket names; blanks between commas are ignored."""
    found = tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())
    for part in found:
        if "/" in part or part in (".", ".."):
            raise SettingsError(f"{name} must list bucket names separated by commas, got {part!r}")
    return found


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    home: Path = field(default_factory=lambda: default_home())
    storage_backend: str = "local"
    supabase_url: str | None = None
    supabase_service_key: str | None = field(default=None, repr=False)
    storage_bucket: str = "generated-videos"
    storage_read_buckets: tuple[str, ...] = ()
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_public_base_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_region: str | None = None
    poll_interval_ms: int = 5000
    concurrency: int = 1
    worker_id: str = ""
    port: int = 3001
    allow_private_urls: bool = False
    lease_seconds: int = 60
    job_timeout: int = 1800
    shutdown_grace: int = 25
    max_clips: int = 100
    max_input_bytes: int = 2 * GIB
    max_output_seconds: int = 1800
    webhook_secret: str | None = field(default=None, repr=False)
    log_format: str = "auto"
    stats_token: str | None = field(default=None, repr=False)
    retention_days: int = 7
    retry_base_seconds: float = 10.0
    event_loop: str = "auto"
    allow_embedded_database: bool = False

    @property
    def heartbeat_interval(self) -> float:
        """Beat six times per lease, so two missed beats still leave most of the lease."""
        return max(self.lease_seconds / 6, 0.5)

    @property
    def poll_interval(self) -> float:
        return self.poll_interval_ms / 1000

    def secrets(self) -> list[str]:
        """Values that must never appear in a log line, an error or /stats."""
        found = [self.supabase_service_key, self.aws_secret_access_key, self.webhook_secret]
        found.append(self.stats_token)
        found.extend(_url_passwords(self.database_url))
        return [s for s in found if s and len(s) >= 4]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        supabase_url = _first(env, "SUPABASE_URL", "NEXT_PUBLIC_SUPABASE_URL")
        supabase_key = _first(env, "SUPABASE_SERVICE_KEY", "SUPABASE_SERVICE_ROLE_KEY")
        s3_bucket = _first(env, "S3_BUCKET")
        log_format = (_first(env, "LOG_FORMAT") or "auto").lower()
        if log_format not in {"auto", "json", "console"}:
            raise SettingsError(f"LOG_FORMAT must be json or console, got {log_format!r}")
        event_loop = (_first(env, "EVENT_LOOP") or "auto").lower()
        if event_loop not in {"auto", "uvloop", "asyncio"}:
            raise SettingsError(f"EVENT_LOOP must be auto, uvloop or asyncio, got {event_loop!r}")
        return cls(
            database_url=_first(env, "DATABASE_URL"),
            home=_home(_first(env, "VIDEO_WORKER_HOME")),
            allow_embedded_database=_bool(env, "ALLOW_EMBEDDED_DATABASE"),
            storage_backend=_storage_backend(env, supabase_url, supabase_key, s3_bucket),
            supabase_url=supabase_url,
            supabase_service_key=supabase_key,
            storage_bucket=_first(env, "STORAGE_BUCKET") or "generated-videos",
            storage_read_buckets=_names(env, "STORAGE_READ_BUCKETS"),
            s3_bucket=s3_bucket,
            s3_endpoint_url=_first(env, "S3_ENDPOINT_URL"),
            s3_public_base_url=_first(env, "S3_PUBLIC_BASE_URL"),
            aws_access_key_id=_first(env, "AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=_first(env, "AWS_SECRET_ACCESS_KEY"),
            aws_region=_first(env, "AWS_REGION", "AWS_DEFAULT_REGION"),
            poll_interval_ms=_int(env, "POLL_INTERVAL", 5000, minimum=10),
            concurrency=_int(env, "WORKER_CONCURRENCY", 1, minimum=1),
            worker_id=_first(env, "WORKER_ID") or f"{socket.gethostname()}-{os.getpid()}",
            port=_int(env, "PORT", 3001, minimum=0),
            allow_private_urls=_bool(env, "ALLOW_PRIVATE_URLS"),
            lease_seconds=_int(env, "LEASE_SECONDS", 60, minimum=2),
            job_timeout=_int(env, "JOB_TIMEOUT", 1800, minimum=1),
            shutdown_grace=_int(env, "SHUTDOWN_GRACE", 25, minimum=0),
            max_clips=_int(env, "MAX_CLIPS", 100, minimum=1),
            max_input_bytes=_int(env, "MAX_INPUT_BYTES", 2 * GIB, minimum=1),
            max_output_seconds=_int(env, "MAX_OUTPUT_SECONDS", 1800, minimum=1),
            webhook_secret=_first(env, "WEBHOOK_SECRET"),
            log_format=log_format,
            stats_token=_first(env, "STATS_TOKEN"),
            retention_days=_int(env, "RETENTION_DAYS", 7, minimum=1),
            retry_base_seconds=_int(env, "RETRY_BASE_MS", 10_000, minimum=0) / 1000,
            event_loop=event_loop,
        )

    def describe(self) -> dict[str, object]:
        """The settings as an operator may see them: secrets replaced by a mark."""
        shown: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in {
                "supabase_service_key",
                "aws_secret_access_key",
                "webhook_secret",
                "stats_token",
            }:
                value = "set" if value else None
            elif f.name == "database_url":
                value = redact_url(value) if value else "embedded"
            shown[f.name] = str(value) if isinstance(value, Path) else value
        return shown


def default_home() -> Path:
    """One state folder per user (e.g. ~/.local/share/video-worker on Linux), wherever the
    command runs: a folder relative to the working directory gave every directory its own,
    empty embedded database."""
    import platformdirs

    return Path(platformdirs.user_data_dir("video-worker", appauthor=False))


def _home(given: str | None) -> Path:
    return Path(given).expanduser().resolve() if given else default_home()


def _storage_backend(
    env: Mapping[str, str],
    supabase_url: str | None,
    supabase_key: str | None,
    s3_bucket: str | None,
) -> str:
    chosen = (_first(env, "STORAGE_BACKEND") or "").lower()
    if chosen:
        if chosen not in {"supabase", "s3", "local"}:
            raise SettingsError(f"STORAGE_BACKEND must be supabase, s3 or local, got {chosen!r}")
        return chosen
    if s3_bucket:
        return "s3"
    if supabase_url and supabase_key:
        return "supabase"
    return "local"


def _url_passwords(url: str | None) -> list[str]:
    from urllib.parse import urlsplit

    if not url:
        return []
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password] if password else []


def redact_url(url: str) -> str:
    """A connection string or URL with its password and query removed, fit for a log line."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    if parts.username:
        secret = ":***" if parts.password else ""
        netloc = f"{parts.username}{secret}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
