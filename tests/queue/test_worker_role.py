"""The least-privilege worker role of docs/production.md, taken from the doc itself.

The SQL blocks are read out of the markdown file and run as written (with the role's name and
password made unique, since roles are shared by every database on the server), so the doc and
this test cannot drift apart. Then: every statement of the queue's and the webhook outbox's
queries.sql runs as the role except the insert it is not meant to have, the real worker runs as
it with --no-migrate, and it cannot change the schema.
"""

from __future__ import annotations

import asyncio
import re
import textwrap
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from tests.pg import Databases, url_for_uri
from tests.queue.helpers import status_is, wait_for
from tests.queue.procs import ROOT, Replica
from worker.db.connection import connect, make_pool
from worker.queue.models import JobOutcome
from worker.queue.postgres import PostgresJobStore
from worker.queue.queries import QUERIES
from worker.webhooks.store import QUERIES as OUTBOX_QUERIES

ROLE_DOC = ROOT / "docs" / "production.md"
DOC_ROLE = "video_worker"
DOC_PASSWORD = "'change-me'"


def doc_sql(marker: str) -> str:
    """The fenced ```sql block that follows the `<!-- marker` comment in the role doc."""
    text = ROLE_DOC.read_text()
    start = text.index(f"<!-- {marker}")
    block = re.search(r"^[ \t]*```sql\n(.*?)^[ \t]*```", text[start:], re.DOTALL | re.MULTILINE)
    assert block is not None, f"no sql block after {marker} in {ROLE_DOC}"
    return textwrap.dedent(block.group(1))


def for_role(sql: str, role: str, password: str) -> str:
    assert DOC_PASSWORD in sql or "create role" not in sql
    return re.sub(rf"\b{DOC_ROLE}\b", role, sql).replace(DOC_PASSWORD, f"'{password}'")


@dataclass
class RoleDb:
    admin_url: str  # the owner (superuser here): migrations ran as it, the app enqueues as it
    url: str  # the worker role
    role: str
    password: str

    def apply(self, marker: str) -> None:
        sql = for_role(doc_sql(marker), self.role, self.password)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.encode())


def _drop_role(admin_url: str, role: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("drop role if exists {}").format(psycopg.sql.Identifier(role)))


def new_role_db(admin_url: str) -> RoleDb:
    """The role for the database at `admin_url`, under a name of its own (not created yet)."""
    role = f"{DOC_ROLE}_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    as_role = make_conninfo(admin_url, user=role, password=password)
    url = url_for_uri(as_role, conninfo_to_dict(admin_url)["dbname"])
    return RoleDb(admin_url, url, role, password)


@pytest.fixture
def role_db(databases: Databases) -> Any:
    """A fresh migrated database with the doc's role applied; dropped with the role after."""
    db = new_role_db(databases.create())
    try:
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            # As on Supabase and hardened servers: no function is everyone's to call. A function
            # the worker calls that the doc does not list then fails the tests below.
            conn.execute("revoke execute on all functions in schema public from public")
        db.apply("worker-role.sql")
        yield db
    finally:
        databases.drop(db.admin_url)  # first: the role's grants live in it
        _drop_role(databases.admin_url, db.role)


@pytest.fixture
async def owner(role_db: RoleDb) -> AsyncIterator[PostgresJobStore]:
    pool = make_pool(role_db.admin_url, max_size=4)
    await pool.open(wait=True)
    try:
        yield PostgresJobStore(pool)
    finally:
        await pool.close()


# --- every statement --------------------------------------------------------------------------

# A harmless value for each parameter the queue's statements take. A new parameter fails the
# test below until it gets one here, so a new statement is never left unchecked.
DUMMIES: dict[str, Any] = {
    "limit": 1,
    "worker_id": "role-check",
    "ids": [],
    "tokens": [],
    "id": uuid.UUID(int=0),
    "token": uuid.UUID(int=0),
    "progress": 1,
    "stage": None,
    "message": None,
    "video_url": None,
    "thumbnail_url": None,
    "result": Jsonb({}),
    "retry": True,
    "backoff": 1.0,
    "error": "role check",
    "lease_seconds": 60,
    "days": 7,
    "payload": Jsonb({"clips": []}),
    "user_id": None,
    "priority": 0,
    "run_at": None,
    "max_attempts": 3,
    "idempotency_key": None,
    "webhook_url": None,
    "lease": 1.0,
    "max_rounds": 10,
    "delay": 1.0,
    "final": False,
    "exact_below": 10_000,
    "max_payload_bytes": 1_000_000,  # the claim of sql/004 (queue branch)
    "max_running": 2,  # write_limits (sql/007_fair_share.sql)
    "max_pending": 100,
    "seconds": 60,  # worker_seen: is any replica alive (enqueue --wait)
    "keys": [],  # cleanup_keys_in_use
    "now": None,  # the queue's clock: the database's own
    "lock": 1,  # maintain, analyze_lock: an advisory lock id
}
# The statements the role is deliberately not allowed to run (docs/production.md, "Not granted").
NOT_GRANTED = {"enqueue"}


def _params(name: str, query: str) -> dict[str, Any]:
    wanted = set(re.findall(r"%\((\w+)\)s", query))
    missing = wanted - set(DUMMIES)
    assert not missing, f"{name}: add a dummy value for {sorted(missing)} to DUMMIES"
    return {k: DUMMIES[k] for k in wanted}


async def test_the_role_may_run_every_worker_statement_and_no_insert(role_db):
    conn = await connect(role_db.url, autocommit=False)
    refused = set()
    try:
        cur = await conn.execute("select current_user as who")
        assert (await cur.fetchone())["who"] == role_db.role
        for name, query in {**QUERIES, **OUTBOX_QUERIES}.items():
            try:
                async with conn.transaction(force_rollback=True):
                    await conn.execute(query, _params(name, query))
                    if name == "stats_stale":  # the statement right after it in analyze_if_stale
                        await conn.execute("select pg_try_advisory_xact_lock(1)")
            except errors.InsufficientPrivilege as exc:
                refused.add(name)
                assert "permission denied" in str(exc)
    finally:
        await conn.close()
    assert refused == NOT_GRANTED


@pytest.mark.parametrize(
    "statement",
    [
        "create table public.mine (id int)",
        "create table mine (id int)",
        "drop table public.video_jobs",
        "alter table public.video_jobs add column mine int",
        "alter table public.video_jobs disable trigger video_jobs_notify",
        "create index mine on public.video_jobs (payload)",
        "truncate public.video_jobs",
        "create function public.mine() returns int language sql as 'select 1'",
        "update public.video_jobs set payload = '{}'",
        "update public.video_jobs set user_id = null",
        "update public.video_jobs set webhook_url = null",
    ],
)
async def test_the_role_cannot_change_the_schema_or_the_apps_columns(role_db, statement):
    conn = await connect(role_db.url)
    try:
        with pytest.raises(errors.InsufficientPrivilege) as refused:
            await conn.execute(statement)
    finally:
        await conn.close()
    message = str(refused.value)
    assert "permission denied" in message or "must be owner" in message, message


# --- the real worker ----------------------------------------------------------------------


async def _health(port: int) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{port}/health", timeout=aiohttp.ClientTimeout(5)) as resp,
    ):
        return {"code": resp.status, **(await resp.json())}


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/hook")), got
    finally:
        await server.close()


async def _expired_lease(owner: PostgresJobStore) -> uuid.UUID:
    """A job whose replica died an hour ago, as the rescue finds it."""
    job_id, _ = await owner.enqueue({"script": [{"sleep": 0.05}]})
    async with owner.pool.connection() as conn:
        await conn.execute(
            "update public.video_jobs set status = 'processing', attempts = 1, "
            "worker_id = 'ghost', lease_token = gen_random_uuid(), "
            "heartbeat_at = now() - interval '1 hour' where id = %s",
            (job_id,),
        )
    return job_id


async def _last_analyze(owner: PostgresJobStore) -> Any:
    async with owner.pool.connection() as conn:
        cur = await conn.execute(
            "select last_analyze from pg_stat_user_tables"
            " where relid = 'public.video_jobs'::regclass"
        )
        row = await cur.fetchone()
    return row["last_analyze"] if row else None


async def test_the_worker_runs_as_the_role_without_migrating(
    role_db, owner, tmp_path: Path, webhook_receiver
):
    hook_url, hooks = webhook_receiver
    # Before the worker starts: a job due at once, one to cancel before it starts, one whose
    # lease expired. Rows in a never-analyzed table make the statistics check want an ANALYZE.
    done, _ = await owner.enqueue({"script": [{"sleep": 0.05}]}, webhook_url=hook_url)
    never, _ = await owner.enqueue({"script": []})
    async with owner.pool.connection() as conn:
        await conn.execute(
            "update public.video_jobs set cancel_requested_at = now() where id = %s", (never,)
        )
    rescued = await _expired_lease(owner)

    worker = Replica(
        role_db.url,
        "least-privilege",
        tmp_path,
        args=["--no-migrate"],
        ALLOW_PRIVATE_URLS="true",
        LEASE_SECONDS=4,
    )
    try:
        port = worker.port()
        await status_is(owner, done, "completed", timeout=30)
        r = await status_is(owner, rescued, "completed", timeout=30)
        assert r["attempts"] == 2 and "stopped responding" in r["errors"][0]["error"]
        r = await status_is(owner, never, "cancelled", timeout=30)
        assert r["message"] == "Cancelled before it started" and r["attempts"] == 0

        retried, _ = await owner.enqueue({"script": [{"fail_until_attempt": 2}]})
        r = await status_is(owner, retried, "completed", timeout=30)
        # the row keeps each attempt's error; an unexpected one is the generic sentence
        assert r["attempts"] == 2 and "(RuntimeError)" in r["errors"][0]["error"]

        running, _ = await owner.enqueue({"script": [{"sleep": 60}]})
        worker.wait_event("job_started", job_id=str(running))
        assert await owner.request_cancel(running)
        await status_is(owner, running, "cancelled", timeout=30)

        await wait_for(lambda: _delivered(owner, done), timeout=30)
        assert [h["data"]["id"] for h in hooks] == [str(done)]

        # This role may not ANALYZE on PostgreSQL 16 and older (MAINTAIN is granted on 17+):
        # there the worker does not try (test_only_a_role_that_may_analyze_tries_to), and it
        # stays healthy and keeps working.
        if await _server_version(owner) < 170000:
            assert "analyzed_video_jobs" not in worker.log_path.read_text()
            assert await _last_analyze(owner) is None
        else:
            worker.wait_event("analyzed_video_jobs", timeout=30)
            assert await wait_for(lambda: _last_analyze(owner), timeout=10)
        health = await _health(port)
        assert health["code"] == 200, health
        after, _ = await owner.enqueue({"script": []})
        await status_is(owner, after, "completed", timeout=30)
    finally:
        worker.stop()
    assert worker.proc.returncode == 0
    events = [e["event"] for e in worker.events()]
    assert "migrations_applied" not in events
    assert "database_unreachable" not in events, worker.log_path.read_text()[-3000:]
    assert "permission denied" not in worker.log_path.read_text()


async def _delivered(store: PostgresJobStore, job_id: uuid.UUID) -> bool:
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "select webhook_delivered_at from public.video_jobs where id = %s", (job_id,)
        )
        row = await cur.fetchone()
    return bool(row and row["webhook_delivered_at"])


async def _server_version(store: PostgresJobStore) -> int:
    async with store.pool.connection() as conn:
        cur = await conn.execute("select current_setting('server_version_num')::int as v")
        row = await cur.fetchone()
    return int(row["v"]) if row else 0


def test_run_without_no_migrate_starts_when_nothing_is_pending(role_db, tmp_path: Path):
    """Migrating looks first, reading only: on an up-to-date schema the role's plain `run`
    starts (it once died creating the ledger table it may not create)."""
    worker = Replica(role_db.url, "migrating", tmp_path)
    try:
        assert worker.port() > 0
    finally:
        worker.stop()
    assert "permission denied" not in worker.log_path.read_text()


def test_run_with_a_migration_pending_says_who_must_apply_it(role_db, tmp_path: Path):
    """With a migration pending, the role's `run` ends in one line naming it and what to do,
    instead of running on a half-applied schema or printing a traceback."""
    with psycopg.connect(role_db.admin_url, autocommit=True) as conn:
        conn.execute("delete from video_worker_migrations where name = '007_fair_share.sql'")
    worker = Replica(role_db.url, "migrating", tmp_path)
    try:
        code = worker.wait(60)
    finally:
        worker.stop()
    log = worker.log_path.read_text()
    assert code == 2, log
    assert f"the database role {role_db.role} may not change the schema" in log
    assert "(007_fair_share.sql): run `video-worker migrate` once as the schema's owner" in log
    assert "Traceback" not in log


def test_migrate_applies_as_the_owner_named_by_migrate_database_url(role_db):
    """The deploy files' migration step: DATABASE_URL is the least-privilege role (the
    daemon's), MIGRATE_DATABASE_URL the owner's, which `migrate` alone uses."""
    from tests.test_cli_mistakes import cli

    with psycopg.connect(role_db.admin_url, autocommit=True) as conn:
        conn.execute("delete from video_worker_migrations where name = '007_fair_share.sql'")
    refused = cli(role_db.url, "migrate")
    assert refused.returncode == 2 and "may not change the schema" in refused.stderr
    admin = url_for_uri(role_db.admin_url, conninfo_to_dict(role_db.admin_url)["dbname"])
    proc = cli(role_db.url, "migrate", MIGRATE_DATABASE_URL=admin)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "applied: 007_fair_share.sql"


# --- Supabase -------------------------------------------------------------------------------


async def test_on_supabase_the_role_needs_the_policy_to_see_jobs(databases):
    from tests.test_supabase import FAKE_PG_CRON, SUPABASE_BOOTSTRAP, create_roles, enqueue_as
    from tests.test_supabase import Supabase as SupabaseDb
    from worker.db.migrate import migrate

    db = new_role_db(databases.create())
    conn = await connect(db.admin_url)
    pool = make_pool(db.url, max_size=2)
    try:
        await create_roles(conn)
        await conn.execute(SUPABASE_BOOTSTRAP.encode())
        await conn.execute(FAKE_PG_CRON.encode())
        await migrate(conn)  # the Supabase file too: RLS is on
        db.apply("worker-role.sql")
        supa = SupabaseDb(db.admin_url, conn)
        job_id = await enqueue_as(supa, uuid.uuid4())

        await pool.open(wait=True)
        store = PostgresJobStore(pool)
        assert await store.claim("role", 1) == []  # RLS: no policy, no rows, no error
        assert (await store.counts())["pending"] == 0

        db.apply("worker-role-supabase.sql")
        [job] = await store.claim("role", 1)
        assert job.id == job_id
        done, nxt = await store.complete_and_claim(job, JobOutcome(video_url="u"), "role")
        assert done is not None and done.id == job_id and nxt is None
        [row] = await supa.rows("select status from public.video_jobs where id = %s", job_id)
        assert row["status"] == "completed"
        async with pool.connection() as c:  # the policy gives rows, not privileges
            with pytest.raises(errors.InsufficientPrivilege):
                await c.execute("insert into public.video_jobs (payload) values ('{}')")
    finally:
        await pool.close()
        await conn.close()
        databases.drop(db.admin_url)
        await asyncio.to_thread(_drop_role, databases.admin_url, db.role)


async def test_only_a_role_that_may_analyze_tries_to(role_db, owner):
    """ANALYZE by a role that does not own the table only warns and skips it: the worker saw
    no error and said `analyzed_video_jobs` every second while the statistics stayed stale.
    Now the check asks whether this role may analyze at all, and leaves it to autovacuum."""
    async with owner.pool.connection() as conn:
        await conn.execute(
            "insert into video_jobs (payload, status, completed_at) "
            "select '{}', 'completed', now() from generate_series(1, 2000)"
        )
    pool = make_pool(role_db.url, max_size=2)
    await pool.open(wait=True)
    try:
        as_role = PostgresJobStore(pool)
        async with pool.connection() as conn:
            cur = await conn.execute(
                "select server_version_num::int >= 170000 as maintain "
                "from (select current_setting('server_version_num') "
                "as server_version_num) v"
            )
            may_maintain = (await cur.fetchone())["maintain"]
        assert await as_role.analyze_if_stale() is may_maintain  # MAINTAIN is granted on 17+
    finally:
        await pool.close()
    assert await owner.analyze_if_stale() is True  # the owner does it, once
    assert await owner.analyze_if_stale() is False
