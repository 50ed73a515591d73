"""Where the tests get a real Postgres, and a fresh database per test.

Order: TEST_DATABASE_URL when set; else a testcontainers Postgres when a Docker engine answers;
else the embedded server (pgserver) in a temporary folder. A template database is migrated
once per session; each test gets `CREATE DATABASE … TEMPLATE` of it (tens of milliseconds).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
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
    """Creates the migrated template once and a fresh copy of it per test."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.template = f"vw_template_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []

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
        name = f"vw_test_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'create database "{name}" template "{self.template}"')
        self.created.append(name)
        return url_for_uri(self.admin_url, name)

    def drop(self, url: str) -> None:
        name = conninfo_to_dict(url)["dbname"]
        with self._admin() as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in [*self.created, self.template]:
                conn.execute(f'drop database if exists "{name}" with (force)')
