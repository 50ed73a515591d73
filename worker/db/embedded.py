"""An embedded Postgres for machines that have none: the pgserver wheel ships the binaries.

Used when DATABASE_URL is unset: a development convenience (`demo`, trying commands out),
which `run` refuses where it looks deployed (worker/db/preflight.py). The data lives under
VIDEO_WORKER_HOME/pgdata; several processes with the same home share one server, which stops
when the last of them exits.

pgserver counts its users in a list of process ids (pgdata/.handle_pids.json) and stops the
server when the last one leaves, at exit. A process killed by a signal never leaves, so its
id stayed in the list and the server ran on forever. Two fixes: the CLI turns SIGTERM and
SIGHUP into an ordinary exit (worker/cli/parser.py), and ids of processes that are gone are pruned
here whenever a process joins or leaves, so the next command to end stops a server that
earlier ones leaked.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from worker.settings import SettingsError

if TYPE_CHECKING:  # imported lazily at run time, under a warnings filter (see embedded_url)
    from pgserver.postgres_server import PostgresServer

_servers: dict[Path, PostgresServer] = {}
HANDLES = ".handle_pids.json"


def embedded_url(home: Path) -> str:
    """Start (or join) the embedded server under `home` and return its connection URL."""
    pgdata = (home / "pgdata").resolve()
    if pgdata not in _servers:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            try:
                from pgserver.postgres_server import get_server
            except ImportError:  # an image installed from requirements.lock: production's only
                raise SettingsError(
                    "DATABASE_URL is not set, and the embedded Postgres for development "
                    "(pgserver) is not installed here: set DATABASE_URL to your database"
                ) from None

            prune_stale_handles(pgdata)
            _servers[pgdata] = get_server(pgdata, cleanup_mode="stop")
    return _servers[pgdata].get_uri()


async def embedded_database_url(home: Path, dbname: str) -> str:
    """A database of its own on the embedded server under `home`, created on first use: the
    demo's, so its job never lands in a local worker's queue, nor its worker takes theirs."""
    url = embedded_url(home)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("select 1 from pg_database where datname = %s", (dbname,))
        if await cur.fetchone() is None:
            await conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    return make_conninfo(url, dbname=dbname)


def resolve_database_url(database_url: str | None, home: Path) -> str:
    return database_url or embedded_url(home)


def stop_all() -> None:
    """Leave every embedded server this process joined; the last process to leave stops it.

    Called when a command ends (normally or by SIGTERM/SIGHUP); pgserver's own atexit hook
    does the same again harmlessly."""
    while _servers:
        pgdata, server = _servers.popitem()
        prune_stale_handles(pgdata)
        server.cleanup()


def prune_stale_handles(pgdata: Path) -> list[int]:
    """Drop the ids of processes that no longer run from pgserver's handle list, under its
    inter-process lock; returns the ids removed."""
    path = pgdata / HANDLES
    if not path.exists():
        return []
    from pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:
        try:
            pids = [int(p) for p in json.loads(path.read_text())]
        except (OSError, ValueError, TypeError):
            pids = []
        alive = [p for p in pids if p == os.getpid() or _running(p)]
        if alive != pids:
            path.write_text(json.dumps(alive))
    return [p for p in pids if p not in alive]


def _running(pid: int) -> bool:
    import psutil

    try:
        # psutil ships no types, so the comparison is Any to mypy; it is a bool.
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # type: ignore[no-any-return]
    except psutil.Error:
        return False
