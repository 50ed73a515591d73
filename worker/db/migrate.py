"""Apply the numbered SQL files of sql/ once each, in order, recorded in
`video_worker_migrations`.

sql/ is the one copy in the repository, where people read the files and paste them into an SQL
editor. A wheel carries it as worker/migrations/ (pyproject.toml copies it there at build time);
a checkout or an editable install reads sql/ itself. sql/schema.sql, the current schema in one
file for reading, is never applied: only numbered files (`001_video_jobs.sql`) are migrations.

Safe to run from several replicas at once: one transaction holds an advisory transaction lock
(safe behind poolers), so the second replica waits and then finds everything applied. The files
themselves are idempotent too, because people also paste them into the Supabase SQL editor.
Files under supabase/ are applied only where the `auth` schema exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from worker.db.preflight import PreflightError

PACKAGED_SQL = Path(__file__).resolve().parents[1] / "migrations"  # in a wheel
CHECKOUT_SQL = Path(__file__).resolve().parents[2] / "sql"  # in a checkout or editable install
SQL_DIR = PACKAGED_SQL if PACKAGED_SQL.is_dir() else CHECKOUT_SQL
NUMBERED = re.compile(r"\d+_\w+\.sql")  # 001_video_jobs.sql; not schema.sql
MIGRATION_LOCK = 7238561029384755

_CREATE_TABLE = """
create table if not exists public.video_worker_migrations (
    name text primary key,
    applied_at timestamptz not null default now()
)
"""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str
    supabase_only: bool = False


class MigrationsMissing(PreflightError):
    """The SQL files are not where this installation keeps them."""


class MigrationRefused(PreflightError):
    """The database role may not change the schema and migrations are pending."""


def migrations(sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Every migration in apply order: the core files, then the Supabase ones."""
    found = [Migration(p.name, p.read_text()) for p in _numbered(sql_dir)]
    if not found:
        raise MigrationsMissing(_missing(sql_dir))
    supabase = _numbered(sql_dir / "supabase")
    found += [Migration(f"supabase/{p.name}", p.read_text(), True) for p in supabase]
    return found


def _numbered(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.sql") if NUMBERED.fullmatch(p.name))


def _missing(sql_dir: Path) -> str:
    if sql_dir != SQL_DIR:
        return f"no numbered SQL migrations (001_….sql) in {sql_dir}"
    return (
        f"the SQL migrations are missing: neither {PACKAGED_SQL} (an installed wheel) nor "
        f"{CHECKOUT_SQL} (a checkout) holds them; reinstall video-worker, or run it from a "
        "checkout that has sql/"
    )


async def migrate(conn: psycopg.AsyncConnection[Any], sql_dir: Path = SQL_DIR) -> list[str]:
    """Apply what is missing; return the names applied by this call.

    It looks first, reading only: with nothing pending it writes nothing, so a role that may
    not change the schema (docs/production.md) passes. With migrations pending and no right
    to apply them, MigrationRefused says which and what to do, instead of a traceback."""
    try:
        todo = await pending(conn, sql_dir)
    except psycopg.errors.InsufficientPrivilege:
        raise MigrationRefused(
            "this database role may not read the migrations' ledger (video_worker_migrations): "
            "grant it select (docs/production.md), or start with `video-worker run --no-migrate`"
        ) from None
    if not todo:
        return []
    try:
        return await _apply(conn, sql_dir)
    except psycopg.errors.InsufficientPrivilege:
        cur = await conn.execute("select current_user")
        row = await cur.fetchone()
        raise MigrationRefused(_refusal(str(_first(row)) if row else "?", todo)) from None


async def pending(conn: psycopg.AsyncConnection[Any], sql_dir: Path = SQL_DIR) -> list[str]:
    """The migrations this database has not had yet, found by reading only."""
    cur = await conn.execute(
        "select to_regclass('public.video_worker_migrations') is not null as found"
    )
    row = await cur.fetchone()
    done: set[str] = set()
    if row is not None and _first(row):
        cur = await conn.execute("select name from public.video_worker_migrations")
        done = {_first(r) for r in await cur.fetchall()}
    has_auth = await _has_auth_schema(conn)
    return [m.name for m in migrations(sql_dir)
            if m.name not in done and (has_auth or not m.supabase_only)]  # fmt: skip


def _refusal(role: str, todo: list[str]) -> str:
    shown = ", ".join(todo[:3]) + (f" and {len(todo) - 3} more" if len(todo) > 3 else "")
    return (
        f"the database role {role} may not change the schema, and {len(todo)} migration(s) "
        f"are pending ({shown}): run `video-worker migrate` once as the schema's owner "
        "(MIGRATE_DATABASE_URL), then "
        "start this role with `video-worker run --no-migrate` (docs/production.md)"
    )


async def _apply(conn: psycopg.AsyncConnection[Any], sql_dir: Path) -> list[str]:
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute(_CREATE_TABLE)
        cur = await conn.execute("select name from public.video_worker_migrations")
        done = {_first(row) for row in await cur.fetchall()}
        has_auth = await _has_auth_schema(conn)
        for migration in migrations(sql_dir):
            if migration.name in done or (migration.supabase_only and not has_auth):
                continue
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "insert into public.video_worker_migrations (name) values (%s)", (migration.name,)
            )
            applied.append(migration.name)
    return applied


async def _has_auth_schema(conn: psycopg.AsyncConnection[Any]) -> bool:
    cur = await conn.execute("select to_regnamespace('auth') is not null as found")
    row = await cur.fetchone()
    return bool(row and _first(row))


def _first(row: Any) -> Any:
    """The first column, whatever row factory the connection uses."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
