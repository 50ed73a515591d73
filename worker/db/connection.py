"""Connections to Postgres, set up so they also work behind Supabase's transaction pooler.

Only this package and worker/queue/jobs.py import psycopg. Every connection runs with
`prepare_threshold=None` (the pooler hands each transaction to another backend, so prepared
statements break) and issues no session `SET`s.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

CONNECT_KWARGS: dict[str, Any] = {
    "autocommit": True,
    "prepare_threshold": None,
    "row_factory": dict_row,
}
# libpq options: fail fast when the server is unreachable, notice dead peers within a minute.
CONNINFO_OPTIONS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "application_name": "video-worker",
}


def conninfo(url: str) -> str:
    """The URL with our libpq options added, the user's own options taking precedence."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    given = conninfo_to_dict(url)
    extra = {k: v for k, v in CONNINFO_OPTIONS.items() if k not in given}
    return make_conninfo(url, **extra)


async def connect(url: str, **overrides: Any) -> psycopg.AsyncConnection[Any]:
    """One autocommit connection (the listener's, the CLI's)."""
    kwargs = {**CONNECT_KWARGS, **overrides}
    return await psycopg.AsyncConnection.connect(conninfo(url), **kwargs)


def make_pool(url: str, *, max_size: int, name: str = "video-worker") -> AsyncConnectionPool:
    """A pool that checks connections before handing them out, so a restarted server's dead
    connections are replaced instead of failing a claim."""
    return AsyncConnectionPool(
        conninfo(url),
        min_size=1,
        max_size=max_size,
        kwargs=dict(CONNECT_KWARGS),
        open=False,
        name=name,
        timeout=15,
        reconnect_timeout=0,  # never give up: the worker waits out an outage
        check=AsyncConnectionPool.check_connection,
    )
