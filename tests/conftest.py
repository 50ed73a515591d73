"""Shared fixtures: a real Postgres and a fresh database per test (see tests/pg.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.pg import Databases, postgres_server
from worker.db.connection import make_pool
from worker.queue.postgres import PostgresJobStore

_OWN_BASETEMP = pytest.StashKey[str]()
TESTS = Path(__file__).resolve().parent

# The fast tier, `pytest -m "not slow"`, runs in about a minute after each change and touches
# every package; these files are left to the full suite (the README's test command, and CI's):
# they start worker processes, run whole jobs through FFmpeg end to end, or time out on purpose.
# A test elsewhere can say `@pytest.mark.slow` itself.
SLOW_FILES = frozenset({
    "hostile/test_addresses.py", "hostile/test_bombs.py", "hostile/test_caption_bounds.py",
    "hostile/test_claim.py", "hostile/test_known.py", "hostile/test_stills.py",
    "hostile/test_surface.py", "hostile/test_tenants.py",
    "queue/test_chaos.py", "queue/test_processes.py", "queue/test_pooler.py",
    "queue/test_worker_role.py",
    "media/test_assemble.py", "media/test_compose.py", "media/test_sound.py",
    "media/test_audio.py", "media/test_probe_limits.py",
    "test_demo.py", "test_embedded_lifetime.py", "test_pipeline.py", "test_cli_mistakes.py",
    "test_dashboard_browser.py", "test_caption_strip.py", "test_cli.py", "test_cleanup_cli.py",
})  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.path).resolve().relative_to(TESTS).as_posix() in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


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
    databases.drop(url, wait=False)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[PostgresJobStore]:
    pool = make_pool(db_url, max_size=8)
    await pool.open(wait=True)
    try:
        yield PostgresJobStore(pool)
    finally:
        await pool.close()
