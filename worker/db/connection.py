"""Connections to Postgres, set up so they also work behind Supabase's transaction pooler.

Only this package and worker/queue/postgres.py import psycopg. Every connection runs with
`prepare_threshold=None` (the pooler hands each transaction to another backend, so prepared
statements break) and issues no session `SET`s.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import psycopg
from psycopg import pq
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


CHECK_AFTER_IDLE = 2.0  # seconds a pooled connection may rest before it is pinged again


class IdleCheck:
    """Ping a pooled connection before use only if it has not been used for a while.

    A restarted server or a proxy's idle timeout kills connections that sat in the pool;
    pinging every connection on every checkout costs a round trip per statement (about a fifth
    of a no-op job). So a connection checked out a moment ago only gets a local, non-blocking
    read of whatever the server sent meanwhile: a server that shut down has sent a FATAL
    message and closed the socket, which that read notices without a round trip.

    The clock runs from the last checkout, not the last return: the time since a return is
    never longer, so no ping that is due is skipped, and the pool needs no `reset` hook (with
    one, psycopg_pool hands every returned connection to a background task, which cost about
    0.25 ms per statement in bench/bench_queue.py's no-op loop).
    """

    def __init__(self, after: float = CHECK_AFTER_IDLE) -> None:
        self.after = after
        self.used: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    async def check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        now = time.monotonic()
        last, self.used[conn] = self.used.get(conn, float("-inf")), now
        if now - last >= self.after:
            await AsyncConnectionPool.check_connection(conn)
            return
        pgconn = conn.pgconn
        # The first read takes what the server sent (its FATAL goodbye), the second sees the
        # closed socket and raises; on a live connection both return at once.
        pgconn.consume_input()
        pgconn.consume_input()
        if pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError("the server closed the connection")


def make_pool(url: str, *, max_size: int, name: str = "video-worker") -> AsyncConnectionPool:
    """A pool that replaces a restarted server's dead connections instead of failing a claim."""
    idle = IdleCheck()
    return AsyncConnectionPool(
        conninfo(url),
        min_size=1,
        max_size=max_size,
        kwargs=dict(CONNECT_KWARGS),
        open=False,
        name=name,
        timeout=15,
        reconnect_timeout=7 * 24 * 3600,  # keep trying (with backoff) through any outage
        check=idle.check,
    )
