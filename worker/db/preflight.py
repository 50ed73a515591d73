"""Checks every command makes before it touches the queue, each failing in one line.

A wrong DATABASE_URL used to surface as the pool's 30 s PoolTimeout traceback, an unparseable
one as psycopg's ProgrammingError, a database that was never migrated as `relation
"public.video_jobs" does not exist`. Here one connection with a short timeout tells them
apart and says what to change: which part of the URL (its password masked), or which
command to run. `run` and the short commands call the same checks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from worker.db.embedded import embedded_url
from worker.errors import ConfigError
from worker.settings import DATABASE_URL_SHAPE, Settings

# A function of the newest migration the worker's statements call (sql/007_fair_share.sql): a
# database without it was migrated by an older version, and every claim would fail.
NEWEST_FUNCTION = "public.video_jobs_complete_and_claim_v2"
CONNECT_SECONDS = 5  # how long the first connection may take before we give up and say so
URL_SHAPE = DATABASE_URL_SHAPE

# Environment variables that container platforms set in every instance they run: a worker
# that sees one of them is deployed, and an embedded database there is a private, throwaway
# queue that the app never writes to.
PLATFORM_MARKERS = {
    "RENDER": "Render",
    "KUBERNETES_SERVICE_HOST": "Kubernetes",
    "FLY_APP_NAME": "Fly.io",
    "DYNO": "Heroku",
    "RAILWAY_ENVIRONMENT": "Railway",
    "K_SERVICE": "Cloud Run",
    "ECS_CONTAINER_METADATA_URI_V4": "Amazon ECS",
}


class PreflightError(ConfigError):
    """A problem an operator must fix before the command can work; the message says how.

    A configuration error, outside the job sides: the check runs before a command (and the
    worker) starts, and the CLI prints it and exits 2; no job is running to be failed.
    """


@dataclass(frozen=True)
class Database:
    """The database a command will use, and how to name it to the operator."""

    url: str
    label: str  # password masked: fit for a terminal or a log line
    embedded: bool


def database(settings: Settings) -> Database:
    """The configured database, checked for shape; the embedded one is started if needed."""
    if not settings.database_url:
        pgdata = (settings.home / "pgdata").resolve()
        label = f"embedded Postgres in {pgdata} (DATABASE_URL is not set)"
        return Database(embedded_url(settings.home), label, embedded=True)
    return Database(settings.database_url, describe(settings.database_url), embedded=False)


def describe(url: str) -> str:
    """The connection target in words (`app@db.example.com:5432/app`), never the password;
    raises PreflightError when the URL cannot be parsed at all."""
    params = parse(url)
    user = params.get("user") or os.environ.get("PGUSER") or "(your user name)"
    return f"{user}@{where(params)}/{params.get('dbname') or user}"


def where(params: Mapping[str, Any]) -> str:
    """`host:port`, or the socket folder for a local server."""
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"{host}:{port}" if not host.startswith("/") else f"[socket in {host}]"


def parse(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        # psycopg's message echoes the text, which may hold a password: say what is expected
        raise PreflightError(
            f"DATABASE_URL is not a Postgres connection string; it should look like {URL_SHAPE}"
        ) from None


async def connect_checked(db: Database) -> psycopg.AsyncConnection[Any]:
    """One connection within CONNECT_SECONDS, or a PreflightError naming what is wrong."""
    from worker.db.connection import connect

    try:
        return await connect(db.url, connect_timeout=CONNECT_SECONDS)
    except psycopg.OperationalError as exc:
        raise PreflightError(explain(exc, db)) from None


async def check(db: Database, *, need_schema: bool) -> None:
    """Connect once; with `need_schema`, also require the migrated `video_jobs` table."""
    conn = await connect_checked(db)
    try:
        if need_schema and not await has_schema(conn):
            raise PreflightError(
                f"the database {db.label} has no video_jobs table yet: "
                "run `video-worker migrate` (with the same DATABASE_URL) first"
            )
        if need_schema and not await has_function(conn, NEWEST_FUNCTION):
            raise PreflightError(
                f"the database {db.label} lacks {NEWEST_FUNCTION}, which this version's "
                "statements call: run `video-worker migrate` (with the same DATABASE_URL) first"
            )
    finally:
        await conn.close()


async def has_schema(conn: psycopg.AsyncConnection[Any]) -> bool:
    cur = await conn.execute("select to_regclass('public.video_jobs') is not null as found")
    row = await cur.fetchone()
    return bool(row and (row["found"] if isinstance(row, Mapping) else row[0]))


async def has_function(conn: psycopg.AsyncConnection[Any], name: str) -> bool:
    cur = await conn.execute("select to_regproc(%s) is not null as found", (name,))
    row = await cur.fetchone()
    return bool(row and (row["found"] if isinstance(row, Mapping) else row[0]))


def explain(exc: psycopg.OperationalError, db: Database) -> str:
    """psycopg's connection failure as one line that names the part of the URL to fix."""
    text = str(exc)
    params = parse(db.url) if not db.embedded else {}
    fix = _fix_for(text, params)
    first = _first_line(text)
    source = "the embedded database" if db.embedded else f"DATABASE_URL ({db.label})"
    return f"cannot connect to {source}: {fix or first}"


def _fix_for(text: str, params: Mapping[str, Any]) -> str | None:
    host = params.get("host") or "localhost"
    at = where(params)
    if "does not exist" in text and "database" in text:
        return (
            f"the database {params.get('dbname')!r} does not exist on {at}; "
            "create it, or fix the name after the last / in DATABASE_URL"
        )
    if "role" in text and "does not exist" in text:
        return f"the user {params.get('user')!r} does not exist on {at}; fix the user name"
    if "password authentication failed" in text or "no password supplied" in text:
        return f"the server refused the password for user {params.get('user')!r}; fix the password"
    if "Connection refused" in text:
        return f"nothing is listening on {at}; check the host and port"
    if "resolve host" in text or "translate host name" in text:
        return f"the host name {host!r} does not resolve; check the host"
    if "timeout expired" in text or "timed out" in text:
        return (
            f"no answer from {at} within {CONNECT_SECONDS} s; "
            "check the host, the port and any firewall between"
        )
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def deployment(env: Mapping[str, str] | None = None) -> str | None:
    """Why this process looks deployed (a platform's variable, or no terminal), else None."""
    env = os.environ if env is None else env
    for name, platform in PLATFORM_MARKERS.items():
        if env.get(name):
            return f"{platform} ({name} is set)"
    if not sys.stdin.isatty():
        return "no terminal (stdin is not a TTY)"
    return None


def refuse_embedded_when_deployed(settings: Settings, *, allowed: bool = False) -> None:
    """`run` on the embedded database serves a queue nobody writes to: refuse it where the
    worker looks deployed, unless the operator said it is intended. Called before the
    embedded server is started, so a refused worker leaves nothing running."""
    if settings.database_url or allowed or settings.allow_embedded_database:
        return
    why = deployment()
    if why:
        raise PreflightError(
            "DATABASE_URL is not set, so `run` would use a private embedded database "
            f"that your app never writes to, and this looks like a deployment: {why}. "
            "Set DATABASE_URL to your Postgres, or pass --embedded-ok "
            "(ALLOW_EMBEDDED_DATABASE=true) if a local queue is what you want."
        )
