"""Apply the SQL files in worker/migrations/ once each, in order, recorded in
`video_worker_migrations`.

The files live inside the package, so a checkout and an installed wheel apply the same ones
from the same place. The top-level sql/ folder holds the same files for people to read and
paste into an SQL editor; tests/queue/test_store.py keeps the two identical.

Safe to run from several replicas at once: one transaction holds an advisory transaction lock
(safe behind poolers), so the second replica waits and then finds everything applied. The files
themselves are idempotent too, because people also paste them into the Supabase SQL editor.
Files under migrations/supabase/ are applied only where the `auth` schema exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from worker.db.preflight import PreflightError

SQL_DIR = Path(__file__).resolve().parent.parent / "migrations"
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


def migrations(sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Every migration in apply order: the core files, then the Supabase ones."""
    found = [Migration(p.name, p.read_text()) for p in sorted(sql_dir.glob("*.sql"))]
    supabase = sorted((sql_dir / "supabase").glob("*.sql"))
    found += [Migration(f"supabase/{p.name}", p.read_text(), True) for p in supabase]
    return found


class MigrationRefused(PreflightError):
    """The database role may not change the schema and migrations are pending."""


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
