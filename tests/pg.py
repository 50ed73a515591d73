"""Where the tests get a real Postgres, and a fresh database per test.

Order: TEST_DATABASE_URL when set; else a testcontainers Postgres when a Docker engine answers;
else the embedded server (pgserver) in a temporary folder. A template database is migrated
once per session; each test gets `CREATE DATABASE … TEMPLATE` of it (tens of milliseconds).
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def with_dbname(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


def url_for_uri(url: str, dbname: str) -> str:
    """A postgresql:// URI pointing at another database (subprocesses take a URI)."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    host = params.pop("host", "")
    user = params.pop("user", "postgres")
    password = params.pop("password", "")
    port = params.pop("port", "")
    db = params.pop("dbname")
    query = "&".join(f"{k}={v}" for k, v in params.items())
    auth = f"{user}:{password}@" if password else f"{user}@"
    if host.startswith("/"):
        query = f"host={host}" + (f"&{query}" if query else "")
        host = ""
    netloc = f"{auth}{host}{':' + str(port) if port and host else ''}"
    uri = f"postgresql://{netloc}/{db}"
    if port and not host:
        query = f"port={port}" + (f"&{query}" if query else "")
    return uri + (f"?{query}" if query else "")


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def postgres_server() -> Iterator[tuple[str, str]]:
    """Yields (admin URL, how it was found)."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url, "TEST_DATABASE_URL"
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url(), "testcontainers"
        return
    with embedded_server() as url:
        yield url, "embedded (pgserver)"


@contextlib.contextmanager
def embedded_server(path: Path | None = None) -> Iterator[str]:
    import pgserver

    with tempfile.TemporaryDirectory(prefix="vw-pg-") as tmp:
        server = pgserver.get_server(path or Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


class Databases:
    """Creates the migrated template once and a fresh copy of it per test.

    A copy costs the server a tenth of a second or more (it writes the whole database to its
    WAL), and a drop forces a checkpoint. So one thread does both while tests run: it keeps
    `SPARES` copies made ahead and drops what tests are done with, one statement at a time
    (side by side, a copy and a drop wait on each other). A test still gets a database nobody
    else has used.
    """

    SPARES = 2

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.template = f"vw_template_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []
        # (a database to drop and the event to set once it is gone) or None to stop; "" copies
        self._orders: queue.SimpleQueue[tuple[str, threading.Event] | None] = queue.SimpleQueue()
        self._spares: queue.SimpleQueue[str | BaseException] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True)

    def build_template(self) -> None:
        import asyncio

        from worker.db.connection import connect
        from worker.db.migrate import migrate

        with self._admin() as conn:
            conn.execute(f'create database "{self.template}"')

        async def apply() -> None:
            c = await connect(with_dbname(self.admin_url, self.template))
            try:
                await migrate(c)
            finally:
                await c.close()

        asyncio.run(apply())

    def create(self) -> str:
        if self._worker is None:  # the first call: order the spares too
            for _ in range(self.SPARES):
                self._order("")
        self._order("")  # a copy to replace the spare taken here
        made = self._spares.get(timeout=120)
        if isinstance(made, BaseException):
            raise made
        return url_for_uri(self.admin_url, made)

    def drop(self, url: str, wait: bool = True) -> None:
        """Drop a database made here; `wait=False` when nothing depends on it being gone."""
        name = conninfo_to_dict(url)["dbname"]
        done = self._order(name)
        if wait and not done.wait(timeout=120):
            raise TimeoutError(f"database {name} was not dropped within 120 s")

    def _order(self, drop: str) -> threading.Event:
        if self._worker is None:
            self._worker = threading.Thread(target=self._carry_out_orders, daemon=True)
            self._worker.start()
        done = threading.Event()
        self._orders.put((drop, done))
        return done

    def _carry_out_orders(self) -> None:
        conn = self._admin()
        while (order := self._orders.get()) is not None:
            drop, done = order
            if conn.closed:  # a test ended its session (pg_terminate_backend)
                conn = self._admin()
            if drop:
                self._drop(conn, drop)
            else:
                self._copy(conn)
            done.set()
        conn.close()

    def _copy(self, conn: psycopg.Connection) -> None:
        name = f"vw_test_{uuid.uuid4().hex[:12]}"
        try:
            conn.execute(f'create database "{name}" template "{self.template}"')
        except Exception as exc:
            self._spares.put(exc)
            return
        self.created.append(name)
        self._spares.put(name)

    def _drop(self, conn: psycopg.Connection, name: str) -> None:
        with contextlib.suppress(psycopg.Error):  # drop_all tries again at the session's end
            conn.execute(f'drop database if exists "{name}" with (force)')

    def drop_all(self) -> None:
        if self._worker is not None:
            self._orders.put(None)
            self._worker.join()
        with self._admin() as conn:
            for name in [*self.created, self.template]:
                conn.execute(f'drop database if exists "{name}" with (force)')
