"""Shared fixtures: a real Postgres and a fresh database per test (see tests/pg.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.pg import Databases, postgres_server
from worker.db.connection import make_pool
from worker.queue.jobs import JobStore

_OWN_BASETEMP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """A temp folder of this session's own. Sessions running at once (two checkouts on one
    machine) otherwise share /tmp/pytest-of-USER, and each one's pruning of old numbered
    folders deletes folders the others are still using (seen as an embedded Postgres whose
    data folder vanished mid-test)."""
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="pytest-video-worker-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove that folder after a green run; keep it for reading after a red one."""
    own = session.config.stash.get(_OWN_BASETEMP, None)
    if own and exitstatus == 0:
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    with postgres_server() as (admin_url, source):
        print(f"\n[tests] Postgres from {source}")
        dbs = Databases(admin_url)
        dbs.build_template()
        try:
            yield dbs
        finally:
            dbs.drop_all()


@pytest.fixture
def db_url(databases: Databases) -> Iterator[str]:
    url = databases.create()
    yield url
    databases.drop(url)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[JobStore]:
    pool = make_pool(db_url, max_size=8)
    await pool.open(wait=True)
    try:
        yield JobStore(pool)
    finally:
        await pool.close()
