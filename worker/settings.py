"""Every setting the worker reads from the environment, read in one place and passed down.

The names are part of the public contract (docs/contract.md) and never change.

Over 300 lines on purpose: every variable with its default and its message, the database URL's
parsing and masking, and the storage backend's choice, in one place, so that nothing else reads
the environment.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from psycopg import Error as PsycopgError
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from worker.errors import ConfigError

GIB = 1024**3
# MAX_OUTPUT_SECONDS' default: also every seconds field's `maximum` in the payload's JSON Schema
# (worker/payload/fields.py), which cannot know an operator's own value.
DEFAULT_MAX_OUTPUT_SECONDS = 1800


MAX_OUTPUT_SECONDS_CEILING = 86_400  # a day of video: a payload's times stay far from overflow
MAX_RETENTION_DAYS = 36_500  # a century: past it, now() minus the age leaves Postgres' range


class SettingsError(ConfigError, ValueError):
    """A setting has a value the worker cannot use; the message names the variable.

    A configuration error, outside the job sides: settings are read once, when the worker
    starts, so it stops the start (the CLI prints it and exits 2) and never reaches a row.
    Still a ValueError for callers that treat bad values alike.
    """


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except (ValueError, OverflowError):  # "abc"; "1e400" is an infinite float
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")
    return value


PG_INT_MAX = 2**31 - 1  # a Postgres int: the per-user caps are stored in video_jobs_settings


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
    migrate_database_url: str | None = None  # `migrate` only: the schema owner's connection
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
    max_output_seconds: int = DEFAULT_MAX_OUTPUT_SECONDS
    max_input_pixels: int = 4096 * 4096 * 2  # every 4K size and 8K UHD; the 16000² bomb is 256 Mpx
    probe_timeout: float = 20.0
    probe_memory_mb: int = 1024
    max_payload_bytes: int = 1024**2
    max_running_per_user: int = 2  # over all replicas; rows without user_id are not capped
    max_pending_per_user: int = 100  # inserts past it fail, in the database
    abort_wait: float = 10.0
    webhook_secret: str | None = field(default=None, repr=False)
    log_format: str = "auto"
    stats_token: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    retention_days: int = 7
    auto_cleanup: bool = False
    retry_base_seconds: float = 10.0
    event_loop: str = "auto"
    allow_embedded_database: bool = False
    fonts_dir: Path | None = None  # more fonts, besides the package's and the system's

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
        found.extend([self.stats_token, self.metrics_token])
        found.extend(_url_passwords(self.database_url))
        found.extend(_url_passwords(self.migrate_database_url))
        return [s for s in found if s and len(s) >= MIN_SECRET_LENGTH]

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
            database_url=_database_url(env),
            migrate_database_url=_database_url(env, "MIGRATE_DATABASE_URL"),
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
            port=_int(env, "PORT", 3001, minimum=0, maximum=65535),
            allow_private_urls=_bool(env, "ALLOW_PRIVATE_URLS"),
            lease_seconds=_int(env, "LEASE_SECONDS", 60, minimum=2),
            job_timeout=_int(env, "JOB_TIMEOUT", 1800, minimum=1),
            shutdown_grace=_int(env, "SHUTDOWN_GRACE", 25, minimum=0),
            max_clips=_int(env, "MAX_CLIPS", 100, minimum=1),
            max_input_bytes=_int(env, "MAX_INPUT_BYTES", 2 * GIB, minimum=1),
            max_output_seconds=_int(
                env,
                "MAX_OUTPUT_SECONDS",
                DEFAULT_MAX_OUTPUT_SECONDS,
                minimum=1,
                maximum=MAX_OUTPUT_SECONDS_CEILING,
            ),
            max_input_pixels=_max_pixels(env),
            probe_timeout=_int(env, "PROBE_TIMEOUT", 20, minimum=1),
            probe_memory_mb=_int(env, "PROBE_MEMORY_MB", 1024, minimum=256),
            max_payload_bytes=_int(env, "MAX_PAYLOAD_BYTES", 1024**2, minimum=2),
            max_running_per_user=_int(env, "MAX_RUNNING_PER_USER", 2, 1, PG_INT_MAX),
            max_pending_per_user=_int(env, "MAX_PENDING_PER_USER", 100, 1, PG_INT_MAX),
            abort_wait=_int(env, "ABORT_WAIT", 10, minimum=1),
            webhook_secret=_first(env, "WEBHOOK_SECRET"),
            log_format=log_format,
            stats_token=_token(env, "STATS_TOKEN"),
            metrics_token=_token(env, "METRICS_TOKEN"),
            retention_days=_int(env, "RETENTION_DAYS", 7, minimum=1, maximum=MAX_RETENTION_DAYS),
            auto_cleanup=_bool(env, "AUTO_CLEANUP"),
            retry_base_seconds=_int(env, "RETRY_BASE_MS", 10_000, minimum=0) / 1000,
            event_loop=event_loop,
            fonts_dir=_fonts_dir(_first(env, "FONTS_DIR")),
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
                "metrics_token",
            }:
                value = "set" if value else None
            elif f.name == "database_url":
                value = redact_url(value) if value else "embedded"
            elif f.name == "migrate_database_url":
                value = redact_url(value) if value else None
            shown[f.name] = str(value) if isinstance(value, Path) else value
        return shown


PIXEL_CEILING = 8192 * 8192  # FFmpeg's -max_pixels on every input (worker/media/confine.py)


def _max_pixels(env: Mapping[str, str]) -> int:
    value = _int(env, "MAX_INPUT_PIXELS", 4096 * 4096 * 2, minimum=64 * 64)
    if value > PIXEL_CEILING:
        raise SettingsError(f"MAX_INPUT_PIXELS must be at most {PIXEL_CEILING} (8192x8192)")
    return value


DATABASE_URL_SHAPE = "postgresql://USER:PASSWORD@HOST:5432/DATABASE"


def _database_url(env: Mapping[str, str], name: str = "DATABASE_URL") -> str | None:
    """DATABASE_URL (or MIGRATE_DATABASE_URL), refused at start-up if libpq cannot parse it:
    later, libpq's error (and a traceback) would quote the string, password and all."""
    url = _first(env, name)
    if url:
        try:
            conninfo_to_dict(url)
        except PsycopgError as exc:
            problem = mask_database_url(str(exc).strip(), url)
            raise SettingsError(
                f"{name} is not a Postgres connection string (it cannot be parsed: "
                f"{problem}); it should look like {DATABASE_URL_SHAPE}"
            ) from None
    return url


def _token(env: Mapping[str, str], name: str) -> str | None:
    """A bearer token: printable ASCII without spaces, as an Authorization header can carry it."""
    token = _first(env, name)
    if token and not (token.isascii() and token.isprintable() and " " not in token):
        raise SettingsError(f"{name} must be printable ASCII without spaces")
    return token


def default_home() -> Path:
    """One state folder per user (e.g. ~/.local/share/video-worker on Linux), wherever the
    command runs: a folder relative to the working directory gave every directory its own,
    empty embedded database."""
    import platformdirs

    return Path(platformdirs.user_data_dir("video-worker", appauthor=False))


def _fonts_dir(given: str | None) -> Path | None:
    if not given:
        return None
    folder = Path(given).expanduser().resolve()
    if not folder.is_dir():
        raise SettingsError(f"FONTS_DIR must be a folder of font files; {given} is not a folder")
    return folder


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


# libpq's connection parameters that hold a secret.
SECRET_PARAMS = ("password", "sslpassword")
MASK = "***"
# Shorter values are not masked in free text: they would garble every line they occur in.
MIN_SECRET_LENGTH = 4
UNPARSEABLE = "<a connection string libpq cannot parse>"

# How a password may be written in a DATABASE_URL, parseable or not: the URI's userinfo
# (`://user:PASSWORD@`, up to the first or the last `@`), a query parameter (`?password=`),
# or a keyword (`password = 'x y'`, `password=x`). For a string libpq cannot parse, everything
# from `password=` to the next `key=` too: libpq's own error may echo any piece of it.
_WRITTEN_IN_URI = (
    re.compile(r"://[^:/@\s]*:([^@\s]*)@"),
    re.compile(r"://[^:/@\s]*:(\S*)@"),
    re.compile(r"[?&](?:ssl)?password=([^&#\s]*)", re.IGNORECASE),
)
_WRITTEN_AS_KEYWORD = (
    re.compile(r"\b(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'?|\S+)", re.IGNORECASE),
)
_RUN_AFTER = re.compile(
    r"\b(?:ssl)?password\s*=\s*(.*?)(?=\s+\w+\s*=|$)", re.IGNORECASE | re.DOTALL
)


def parse_conninfo(url: str) -> dict[str, str] | None:
    """libpq's reading of a connection string (URI or keyword/value), or None if it has none."""
    try:
        return {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    except PsycopgError:
        return None


def _url_passwords(url: str | None) -> list[str]:
    """Every spelling of DATABASE_URL's passwords that a log line or an error could carry: as
    libpq reads them, as written (quoted, percent-encoded) and decoded."""
    if not url:
        return []
    params = parse_conninfo(url)
    found = {(params or {}).get(key, "") for key in SECRET_PARAMS}
    for pattern in _WRITTEN_IN_URI if "://" in url else _WRITTEN_AS_KEYWORD:
        for written in pattern.findall(url):
            found.update(_spellings(written))
    if params is None:  # malformed: libpq's error may quote any word of the password's run
        for run in _RUN_AFTER.findall(url):
            found.update(_spellings(run))
            found.update(run.split())
    return sorted(s for s in found if s)


def _spellings(written: str) -> set[str]:
    """A password as written, unquoted, unescaped and percent-decoded."""
    found = {written, unquote(written)}
    if written.startswith("'"):
        inner = written[1:-1] if written.endswith("'") and len(written) > 1 else written[1:]
        found.update({inner, re.sub(r"\\(.)", r"\1", inner)})
    return found


def redact_url(url: str) -> str:
    """A connection string (URI or keyword/value) with every password replaced by a mark, fit
    for a log line; a string libpq cannot parse is not shown at all."""
    params = parse_conninfo(url)
    if params is None:
        return UNPARSEABLE
    if "://" not in url:
        shown = {k: (MASK if k in SECRET_PARAMS else v) for k, v in params.items()}
        return make_conninfo("", **shown)
    try:
        parts = urlsplit(url)
    except ValueError:
        return UNPARSEABLE
    user, at, host = parts.netloc.rpartition("@")
    if at:
        name, colon, _password = user.partition(":")
        host = f"{name}{colon and ':' + MASK}@{host}"
    query = urlencode(
        [
            (k, MASK if k.lower() in SECRET_PARAMS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*/",
    )
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def mask_database_url(text: str, url: str | None) -> str:
    """`text` with every spelling of `url`'s passwords replaced by the mark."""
    for secret in sorted(_url_passwords(url), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    return text
