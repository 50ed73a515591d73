"""sql/supabase/ on a real Postgres dressed up as Supabase: real roles, real RLS, real grants.

There is no Supabase here, so each test database first gets what a Supabase project has before
our SQL runs: the roles `anon`, `authenticated` and `service_role` (BYPASSRLS), Supabase's
default privileges (ALL on everything in `public` for those roles), the `auth` schema with
`auth.uid()` read from the request's JWT claims the way PostgREST passes them, the
`supabase_realtime` publication, and a stand-in for pg_cron's `cron` schema. Requests are
played the way PostgREST plays them: one transaction, `set local role`, the claims in
`request.jwt.claims`.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from worker.db.connection import connect, make_pool
from worker.db.migrate import SQL_DIR, migrate
from worker.queue.models import Job, JobOutcome
from worker.queue.postgres import PostgresJobStore

SUPABASE_FILE = "supabase/100_supabase.sql"
# Every file of sql/supabase/, in the order `migrate` applies them.
SUPABASE_FILES = [
    SUPABASE_FILE,
    "supabase/101_transitions_v1.sql",
    "supabase/102_fair_share.sql",
]
CLIPS = {"clips": [{"url": "https://cdn.example.com/a.mp4"}]}

# Roles are cluster-wide and the test databases share one server: create them once, idempotently
# (two sessions racing on CREATE ROLE may see unique_violation instead of duplicate_object), and
# never drop them. `video_worker_owner` plays a table owner that is neither superuser nor BYPASSRLS.
_ROLES = {
    "anon": "nologin noinherit",
    "authenticated": "nologin noinherit",
    "service_role": "nologin noinherit bypassrls",
    "video_worker_owner": "nologin",
}
_CREATE_ROLE = """
do $$ begin
    create role {name} {options};
exception when duplicate_object or unique_violation then null;
end $$
"""

# What a Supabase project has before any SQL of ours runs. auth.uid() is Supabase's own
# definition: the `sub` claim, with the older `request.jwt.claim.sub` setting as a fallback.
SUPABASE_BOOTSTRAP = """
grant usage on schema public to anon, authenticated, service_role;
grant all on all tables in schema public to anon, authenticated, service_role;
grant all on all sequences in schema public to anon, authenticated, service_role;
grant all on all routines in schema public to anon, authenticated, service_role;
alter default privileges in schema public
    grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public
    grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public
    grant all on routines to anon, authenticated, service_role;

create schema auth;
grant usage on schema auth to anon, authenticated, service_role;
create function auth.uid() returns uuid language sql stable as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
create function auth.role() returns text language sql stable as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;
grant execute on all functions in schema auth to anon, authenticated, service_role;

create publication supabase_realtime;
"""

# pg_cron is not installed here. Its signatures, stricter than the real thing: pg_cron (1.3+)
# replaces a job scheduled again under the same name, this one appends a second job, so the
# tests prove our SQL does not lean on that. unschedule() raises when nothing matches, as
# pg_cron does.
FAKE_PG_CRON = """
create schema cron;
create table cron.job (
    jobid bigserial primary key,
    schedule text not null,
    command text not null,
    nodename text not null default 'localhost',
    nodeport int not null default 5432,
    database text not null default current_database(),
    username text not null default current_user,
    active boolean not null default true,
    jobname text
);
create function cron.schedule(job_name text, schedule text, command text) returns bigint
language sql as $$
    insert into cron.job (jobname, schedule, command) values (job_name, schedule, command)
    returning jobid
$$;
create function cron.unschedule(job_name text) returns boolean
language plpgsql as $$
begin
    delete from cron.job where jobname = job_name and username = current_user;
    if not found then
        raise exception 'could not find valid entry for job ''%''', job_name;
    end if;
    return true;
end
$$;
create function cron.unschedule(job_id bigint) returns boolean
language plpgsql as $$
begin
    delete from cron.job where jobid = job_id;
    if not found then
        raise exception 'could not find valid entry for job %', job_id;
    end if;
    return true;
end
$$;
"""


@dataclass
class Supabase:
    url: str
    conn: psycopg.AsyncConnection[Any]  # the migrating role: superuser and table owner

    async def rows(self, query: str, *params: Any) -> list[dict[str, Any]]:
        cur = await self.conn.execute(query, params or None)
        return await cur.fetchall() if cur.description else []


async def create_roles(conn: psycopg.AsyncConnection[Any]) -> None:
    for name, options in _ROLES.items():
        await conn.execute(_CREATE_ROLE.format(name=name, options=options).encode())


@pytest.fixture
async def supa(databases) -> AsyncIterator[Supabase]:
    url = databases.create()
    conn = await connect(url)
    try:
        await create_roles(conn)
        await conn.execute(SUPABASE_BOOTSTRAP.encode())
        await conn.execute(FAKE_PG_CRON.encode())
        applied = await migrate(conn)
        assert applied == SUPABASE_FILES
        yield Supabase(url, conn)
    finally:
        await conn.close()
        databases.drop(url, wait=False)


@contextlib.asynccontextmanager
async def request(
    db: Supabase,
    role: str,
    sub: uuid.UUID | None = None,
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """One Data API request: a transaction as `role`, with the user's JWT claims if any."""
    async with db.conn.transaction():
        await db.conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        if sub is not None:
            claims = json.dumps({"sub": str(sub), "role": role})
            await db.conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        yield db.conn


async def as_user(
    db: Supabase, user: uuid.UUID | None, query: str, *params: Any, role: str = "authenticated"
) -> list[dict[str, Any]]:
    async with request(db, role, user) as conn:
        cur = await conn.execute(query, params or None)
        return await cur.fetchall() if cur.description else []


async def insert_as(db: Supabase, user: uuid.UUID, **columns: Any) -> uuid.UUID:
    columns.setdefault("payload", Jsonb(CLIPS))
    query = sql.SQL("insert into public.video_jobs ({}) values ({}) returning id").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    async with request(db, "authenticated", user) as conn:
        cur = await conn.execute(query, tuple(columns.values()))
        row = await cur.fetchone()
    assert row is not None
    return row["id"]


async def enqueue_as(
    db: Supabase, user: uuid.UUID | None, payload: Any = CLIPS, **args: Any
) -> uuid.UUID:
    named = sql.SQL("").join(
        sql.SQL(", {} => {}").format(sql.Identifier(k), sql.Placeholder()) for k in args
    )
    query = sql.SQL("select public.enqueue_video_job(payload => {}{}) as id").format(
        sql.Placeholder(), named
    )
    async with request(db, "authenticated", user) as conn:
        cur = await conn.execute(query, (Jsonb(payload), *args.values()))
        row = await cur.fetchone()
    assert row is not None
    return row["id"]


async def cancel_as(db: Supabase, user: uuid.UUID, job_id: uuid.UUID) -> bool:
    [row] = await as_user(db, user, "select public.cancel_video_job(%s) as ok", job_id)
    return bool(row["ok"])


async def job(db: Supabase, job_id: uuid.UUID) -> dict[str, Any]:
    [row] = await db.rows("select * from public.video_jobs where id = %s", job_id)
    return row


def users() -> tuple[uuid.UUID, uuid.UUID]:
    return uuid.uuid4(), uuid.uuid4()


# --- applying it ---------------------------------------------------------------------------


async def test_migrate_applies_the_supabase_file_where_auth_exists(supa):
    recorded = [
        r["name"]
        for r in await supa.rows("select name from public.video_worker_migrations order by name")
    ]
    assert set(SUPABASE_FILES) <= set(recorded)
    [table] = await supa.rows(
        "select relrowsecurity, relforcerowsecurity from pg_class "
        "where oid = 'public.video_jobs'::regclass"
    )
    # enabled for the API roles, not forced on the owner the worker connects as
    assert table == {"relrowsecurity": True, "relforcerowsecurity": False}
    policies = await supa.rows(
        "select policyname, cmd, roles::text[] as roles from pg_policies "
        "where schemaname = 'public' and tablename = 'video_jobs' "
        "order by policyname"
    )
    assert [(p["policyname"], p["cmd"], p["roles"]) for p in policies] == [
        ("video_jobs_cancel_own", "UPDATE", ["authenticated"]),
        ("video_jobs_insert_own", "INSERT", ["authenticated"]),
        ("video_jobs_select_own", "SELECT", ["authenticated"]),
    ]
    assert await migrate(supa.conn) == []


async def test_databases_without_auth_skip_the_supabase_file(db_url):
    conn = await connect(db_url)
    try:
        assert await migrate(conn) == []
        cur = await conn.execute("select name from public.video_worker_migrations")
        assert not set(SUPABASE_FILES) & {r["name"] for r in await cur.fetchall()}
        cur = await conn.execute(
            "select relrowsecurity, to_regprocedure('public.enqueue_video_job(jsonb,int,"
            "timestamptz,text,text)') is null as no_rpc from pg_class "
            "where oid = 'public.video_jobs'::regclass"
        )
        assert await cur.fetchone() == {"relrowsecurity": False, "no_rpc": True}
    finally:
        await conn.close()


async def test_the_files_apply_again_without_changing_anything(supa):
    async def state() -> dict[str, Any]:
        return {
            "grants": await supa.rows(
                "select grantee, privilege_type, column_name from "
                "information_schema.column_privileges where table_name = 'video_jobs' "
                "and grantee in ('anon', 'authenticated', 'service_role') order by 1, 2, 3"
            ),
            "routines": await supa.rows(
                "select grantee, routine_name from information_schema.routine_privileges "
                "where routine_schema = 'public' and grantee in ('anon', 'authenticated') "
                "order by 1, 2"
            ),
            "policies": await supa.rows(
                "select policyname, qual, with_check from pg_policies "
                "where tablename = 'video_jobs' order by 1"
            ),
            "triggers": await supa.rows(
                "select tgname from pg_trigger where tgrelid = 'public.video_jobs'::regclass "
                "and not tgisinternal order by 1"
            ),
            "published": await supa.rows(
                "select count(*) as n from pg_publication_tables "
                "where pubname = 'supabase_realtime' and tablename = 'video_jobs'"
            ),
            "cron": await supa.rows("select jobname, schedule, command from cron.job"),
        }

    before = await state()
    for _ in range(2):  # pasted into the SQL editor again, over what migrate applied
        for name in SUPABASE_FILES:
            await supa.conn.execute((SQL_DIR / name).read_text().encode())
    assert await state() == before
    assert before["published"] == [{"n": 1}]
    assert before["cron"] == [
        {
            "jobname": "video-jobs-cleanup",
            "schedule": "17 3 * * *",
            "command": "select public.cleanup_old_video_jobs()",
        }
    ]
    assert {"grantee": "authenticated", "routine_name": "enqueue_video_job"} in before["routines"]
    assert [r for r in before["routines"] if r["grantee"] == "anon"] == []


# --- what a signed-in user may do -----------------------------------------------------------


async def test_a_user_inserts_rows_only_for_themselves(supa):
    alice, bob = users()
    job_id = await insert_as(supa, alice, user_id=alice)
    row = await job(supa, job_id)
    assert row["user_id"] == alice and row["status"] == "pending"
    for other in (bob, None):
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            await insert_as(supa, alice, user_id=other)


@pytest.mark.parametrize(
    "column, value",
    [
        ("status", "completed"),
        ("video_url", "https://evil.example/x.mp4"),
        ("progress", 100),
        ("result", Jsonb({"bytes": 1})),
        ("error", None),
        ("attempts", 0),
        ("worker_id", "me"),
        ("lease_token", uuid.uuid4()),
        ("started_at", None),
        ("cancel_requested_at", None),
    ],
)
async def test_a_user_cannot_insert_worker_columns(supa, column, value):
    alice, _ = users()
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        await insert_as(supa, alice, user_id=alice, **{column: value})


async def test_a_user_may_set_every_app_column(supa):
    alice, _ = users()
    job_id = await insert_as(
        supa,
        alice,
        user_id=alice,
        priority=-3,
        max_attempts=5,
        idempotency_key=f"k-{uuid.uuid4()}",
        webhook_url="https://app.example/hook",
    )
    row = await job(supa, job_id)
    assert (row["priority"], row["max_attempts"]) == (-3, 5)
    assert row["webhook_url"] == "https://app.example/hook"


async def test_a_user_sees_only_their_own_rows(supa):
    alice, bob = users()
    mine = {await insert_as(supa, alice, user_id=alice) for _ in range(2)}
    theirs = await insert_as(supa, bob, user_id=bob)
    await supa.rows("insert into public.video_jobs (payload) values ('{}')")  # no owner
    seen = await as_user(supa, alice, "select id, user_id from public.video_jobs")
    assert {r["id"] for r in seen} == mine
    assert await as_user(supa, alice, "select * from public.video_jobs where id = %s", theirs) == []


@pytest.mark.parametrize(
    "assignment",
    [
        "status = 'completed'",
        "progress = 100",
        "result = '{}'::jsonb",
        "video_url = 'https://evil.example/x.mp4'",
        "priority = 1000",
        "user_id = gen_random_uuid()",
    ],
)
async def test_a_user_cannot_update_their_own_rows_worker_or_app_columns(supa, assignment):
    alice, _ = users()
    job_id = await insert_as(supa, alice, user_id=alice)
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        await as_user(
            supa, alice, f"update public.video_jobs set {assignment} where id = %s", job_id
        )
    assert (await job(supa, job_id))["status"] == "pending"


async def test_a_user_cannot_delete_even_their_own_rows(supa):
    alice, _ = users()
    job_id = await insert_as(supa, alice, user_id=alice)
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        await as_user(supa, alice, "delete from public.video_jobs where id = %s", job_id)
    assert await job(supa, job_id)


async def test_a_user_cannot_jump_the_queue(supa):
    alice, _ = users()
    with pytest.raises(errors.CheckViolation, match="priority"):
        await insert_as(supa, alice, user_id=alice, priority=1000)
    with pytest.raises(errors.CheckViolation, match="max_attempts"):
        await insert_as(supa, alice, user_id=alice, max_attempts=1000)
    # a run_at in the past would sort ahead of everyone's older jobs: it becomes now
    job_id = await insert_as(supa, alice, user_id=alice, run_at="1970-01-01T00:00:00Z")
    [fresh] = await supa.rows(
        "select run_at >= now() - interval '1 minute' as ok from public.video_jobs where id = %s",
        job_id,
    )
    assert fresh["ok"]
    # the server (owner, service role) still sets what it likes
    [row] = await supa.rows(
        "insert into public.video_jobs (payload, priority, max_attempts, "
        "run_at) values ('{}', 1000, 10, now() - interval '1 day') "
        "returning priority, max_attempts, run_at < now() as past"
    )
    assert row == {"priority": 1000, "max_attempts": 10, "past": True}


async def test_a_user_cannot_touch_the_migrations_ledger_or_run_cleanup(supa):
    alice, _ = users()
    for role in ("authenticated", "anon"):
        for query in (
            "select * from public.video_worker_migrations",
            "delete from public.video_worker_migrations",
            "select public.cleanup_old_video_jobs(interval '0')",
            "select * from public.video_jobs_complete_and_claim("
            "gen_random_uuid(), gen_random_uuid(), null, null, '{}', 'browser', 1000000)",
            "select * from public.video_jobs_claim_v1('browser', 1, 1000000)",
            "select * from public.video_jobs_rescue_v1(0)",
            "select * from public.video_jobs_status_counts(0)",
            "select nextval(pg_get_serial_sequence('public.video_jobs', 'seq'))",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                await as_user(supa, alice if role == "authenticated" else None, query, role=role)


async def test_a_project_migrated_before_the_hot_path_changed_keeps_it_from_the_browser(supa):
    """A project migrated up to 003 and the Supabase file gets sql/004_payload_text.sql alone
    (`migrate` does not run the Supabase file twice): the new function must still be out of
    the API roles' reach, PUBLIC included (anon and authenticated are members of PUBLIC)."""
    new = "public.video_jobs_complete_and_claim(uuid, uuid, text, text, jsonb, text, bigint)"
    await supa.rows(f"drop function {new}")
    for name in ("003_hot_path.sql", SUPABASE_FILE, "004_payload_text.sql"):
        await supa.conn.execute((SQL_DIR / name).read_text().encode())
    for role in ("anon", "authenticated"):
        [row] = await supa.rows(
            "select has_function_privilege(%s, %s, 'execute') as allowed", role, new
        )
        assert row["allowed"] is False, role
    [row] = await supa.rows(
        "select has_function_privilege('service_role', %s, 'execute') as allowed", new
    )
    assert row["allowed"] is True


TRANSITIONS_V1 = [
    "video_jobs_claim_v1(text, int, bigint, timestamptz)",
    "video_jobs_complete_v1(uuid, uuid, text, text, jsonb, timestamptz)",
    "video_jobs_fail_v1(uuid, uuid, text, boolean, float8, timestamptz)",
    "video_jobs_cancel_v1(uuid, uuid, timestamptz)",
    "video_jobs_release_v1(uuid, uuid, timestamptz)",
    "video_jobs_rescue_v1(float8, timestamptz)",
    "video_jobs_cancel_pending_v1(timestamptz)",
    "video_jobs_complete_and_claim_v1(uuid, uuid, text, text, jsonb, text, bigint, timestamptz)",
]


async def test_the_job_transitions_are_out_of_the_browsers_reach(supa):
    """A Supabase project that gets 006_transitions_v1.sql after the Supabase file (`migrate`
    on a project migrated before it, or a paste): Supabase's default privileges give each new
    function to the API roles, and the file takes them back, PUBLIC included. The worker's
    own roles keep them."""
    for function in TRANSITIONS_V1:
        await supa.rows(f"drop function public.{function} cascade")
    await supa.conn.execute((SQL_DIR / "006_transitions_v1.sql").read_text().encode())
    for function in TRANSITIONS_V1:
        for role, allowed in [("anon", False), ("authenticated", False), ("service_role", True)]:
            [row] = await supa.rows(
                "select has_function_privilege(%s, %s, 'execute') as allowed",
                role,
                f"public.{function}",
            )
            assert row["allowed"] is allowed, (role, function)
    # and the hot path of the previous version, now the same composition, stays theirs alone
    old = "public.video_jobs_complete_and_claim(uuid, uuid, text, text, jsonb, text, bigint)"
    for role in ("anon", "authenticated"):
        [row] = await supa.rows(
            "select has_function_privilege(%s, %s, 'execute') as allowed", role, old
        )
        assert row["allowed"] is False, role


FAIR_SHARE = [
    "video_jobs_claim_v2(text, int, bigint, timestamptz)",
    "video_jobs_complete_and_claim_v2(uuid, uuid, text, text, jsonb, text, bigint, timestamptz)",
    "video_jobs_mark_held_v1(timestamptz)",
    "video_jobs_pending_cap()",
]


async def test_fair_share_is_out_of_the_browsers_reach(supa):
    """A project that gets 007_fair_share.sql after Supabase's default privileges gave the API
    roles everything new: the claim, its helpers and the settings stay the worker's alone."""
    for function in FAIR_SHARE:
        await supa.rows(f"drop function public.{function} cascade")
    await supa.rows("drop table public.video_jobs_settings")
    await supa.conn.execute((SQL_DIR / "007_fair_share.sql").read_text().encode())
    for function in FAIR_SHARE:
        for role, allowed in [("anon", False), ("authenticated", False), ("service_role", True)]:
            [row] = await supa.rows(
                "select has_function_privilege(%s, %s, 'execute') as allowed",
                role,
                f"public.{function}",
            )
            assert row["allowed"] is allowed, (role, function)
    alice, _ = users()
    for role in ("authenticated", "anon"):
        for query in (
            "select * from public.video_jobs_settings",
            "update public.video_jobs_settings set max_pending_per_user = 100000",
            "select * from public.video_jobs_claim_v2('browser', 1, 1000000)",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                await as_user(supa, alice if role == "authenticated" else None, query, role=role)


async def set_pending_cap(db: Supabase, cap: int) -> None:
    await db.rows("update public.video_jobs_settings set max_pending_per_user = %s", cap)


async def test_a_user_past_the_pending_cap_is_refused_however_the_row_comes(supa):
    """Under RLS, through the RPC and from a backend (the service role) alike, with no worker
    running: SQLSTATE VJ001 and a message the app can show as it is."""
    alice, bob = users()
    await set_pending_cap(supa, 2)
    key = f"render-{uuid.uuid4()}"
    first = await enqueue_as(supa, alice, idempotency_key=key)
    await insert_as(supa, alice, user_id=alice)
    refusals = [
        enqueue_as(supa, alice),
        insert_as(supa, alice, user_id=alice),
        as_user(
            supa,
            None,
            "insert into public.video_jobs (payload, user_id) values ('{}', %s)",
            alice,
            role="service_role",
        ),
    ]
    for attempt in refusals:
        with pytest.raises(psycopg.Error) as refused:
            await attempt
        assert refused.value.sqlstate == "VJ001"
        assert refused.value.diag.message_primary == (
            "you have 2 videos waiting: wait until one of them starts before adding another"
        )
    # the same request again still answers with its job; bob and the backend are not held
    assert await enqueue_as(supa, alice, idempotency_key=key) == first
    await enqueue_as(supa, bob)
    await supa.rows(
        "insert into public.video_jobs (payload) select '{}' from generate_series(1, 5)"
    )
    # a job that starts makes room for the next
    await supa.rows("update public.video_jobs set status = 'processing' where id = %s", first)
    await enqueue_as(supa, alice)


# --- cancelling -----------------------------------------------------------------------------


async def test_a_user_cancels_their_own_job_and_no_one_elses(supa):
    alice, bob = users()
    mine = await insert_as(supa, alice, user_id=alice)
    theirs = await insert_as(supa, bob, user_id=bob)
    assert await cancel_as(supa, alice, mine) is True
    assert (await job(supa, mine))["cancel_requested_at"] is not None
    assert await cancel_as(supa, alice, mine) is True  # asking again is harmless
    assert await cancel_as(supa, alice, theirs) is False
    assert (await job(supa, theirs))["cancel_requested_at"] is None
    assert await cancel_as(supa, alice, uuid.uuid4()) is False


async def test_a_finished_job_cannot_be_cancelled(supa):
    alice, _ = users()
    job_id = await insert_as(supa, alice, user_id=alice)
    await supa.rows(
        "update public.video_jobs set status = 'completed', completed_at = now() where id = %s",
        job_id,
    )
    assert await cancel_as(supa, alice, job_id) is False
    updated = await as_user(
        supa,
        alice,
        "update public.video_jobs set cancel_requested_at = now() where id = %s returning id",
        job_id,
    )
    assert updated == []
    assert (await job(supa, job_id))["cancel_requested_at"] is None


async def test_a_user_cancels_by_updating_the_row_directly(supa):
    alice, bob = users()
    mine = await insert_as(supa, alice, user_id=alice)
    theirs = await insert_as(supa, bob, user_id=bob)
    query = "update public.video_jobs set cancel_requested_at = now() where id = %s returning id"
    assert await as_user(supa, alice, query, mine) == [{"id": mine}]
    assert await as_user(supa, alice, query, theirs) == []
    assert (await job(supa, theirs))["cancel_requested_at"] is None
    # and a cancellation, once asked for, is not withdrawn
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        await as_user(
            supa,
            alice,
            "update public.video_jobs set cancel_requested_at = null where id = %s",
            mine,
        )


# --- enqueue_video_job ----------------------------------------------------------------------


async def test_enqueue_takes_the_owner_from_the_jwt(supa):
    alice, _ = users()
    job_id = await enqueue_as(supa, alice, CLIPS, webhook_url="https://app.example/hook")
    row = await job(supa, job_id)
    assert row["user_id"] == alice and row["status"] == "pending"
    assert row["payload"] == CLIPS and row["webhook_url"] == "https://app.example/hook"
    assert (row["priority"], row["max_attempts"], row["attempts"]) == (0, 3, 0)
    seen = await as_user(supa, alice, "select id from public.video_jobs")
    assert seen == [{"id": job_id}]


async def test_enqueue_is_idempotent_per_user(supa):
    alice, bob = users()
    key = f"render-{uuid.uuid4()}"
    first = await enqueue_as(supa, alice, idempotency_key=key)
    assert await enqueue_as(supa, alice, idempotency_key=key) == first
    [count] = await supa.rows(
        "select count(*) as n from public.video_jobs where idempotency_key = %s", key
    )
    assert count["n"] == 1
    with pytest.raises(errors.UniqueViolation, match="idempotency_key: already used") as caught:
        await enqueue_as(supa, bob, idempotency_key=key)
    assert str(first) not in str(caught.value)  # nothing about alice's job leaks
    # without a key every call is a new job
    assert await enqueue_as(supa, alice) != await enqueue_as(supa, alice)


async def test_enqueue_refuses_without_a_signed_in_user(supa):
    with pytest.raises(errors.InsufficientPrivilege, match="sign in"):
        await enqueue_as(supa, None)
    assert await supa.rows("select id from public.video_jobs") == []


@pytest.mark.parametrize(
    "payload, message",
    [
        ([], "payload: must be a JSON object"),
        ("clips", "payload: must be a JSON object"),
        ({}, "payload.clips: must be a non-empty array"),
        ({"clips": []}, "payload.clips: must be a non-empty array"),
        ({"clips": {"url": "x"}}, "payload.clips: must be a non-empty array"),
    ],
)
async def test_enqueue_refuses_a_payload_without_clips(supa, payload, message):
    alice, _ = users()
    with pytest.raises(errors.InvalidParameterValue, match=message):
        await enqueue_as(supa, alice, payload)


async def test_enqueue_keeps_users_in_line(supa):
    alice, _ = users()
    with pytest.raises(errors.InvalidParameterValue, match="priority"):
        await enqueue_as(supa, alice, priority=5)
    job_id = await enqueue_as(supa, alice, priority=-2, run_at="2000-01-01T00:00:00Z")
    [row] = await supa.rows(
        "select priority, run_at >= now() - interval '1 minute' as fresh "
        "from public.video_jobs where id = %s",
        job_id,
    )
    assert row == {"priority": -2, "fresh": True}


# --- anon -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "select * from public.video_jobs",
        "select count(*) from public.video_jobs",
        "insert into public.video_jobs (payload) values ('{\"clips\": [{}]}')",
        "update public.video_jobs set cancel_requested_at = now()",
        'select public.enqueue_video_job(\'{"clips": [{"url": "https://a/b.mp4"}]}\')',
        "select public.cancel_video_job(gen_random_uuid())",
    ],
)
async def test_anon_gets_nothing(supa, query):
    alice, _ = users()
    await insert_as(supa, alice, user_id=alice)
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        await as_user(supa, None, query, role="anon")


# --- Realtime and pg_cron -------------------------------------------------------------------


async def test_the_table_is_published_to_realtime(supa):
    published = await supa.rows(
        "select schemaname, tablename from pg_publication_tables "
        "where pubname = 'supabase_realtime'"
    )
    assert published == [{"schemaname": "public", "tablename": "video_jobs"}]


async def test_the_cleanup_is_scheduled_once_and_its_command_runs(supa):
    jobs = await supa.rows("select command from cron.job where jobname = 'video-jobs-cleanup'")
    assert len(jobs) == 1
    await supa.rows(
        "insert into public.video_jobs (payload, status, completed_at) values "
        "('{}', 'completed', now() - interval '30 days'), "
        "('{}', 'completed', now() - interval '1 day')"
    )
    [ran] = await supa.rows(jobs[0]["command"])
    assert list(ran.values()) == [1]


# --- the worker, with RLS on ----------------------------------------------------------------


@pytest.mark.parametrize(
    "worker_role",
    [None, "video_worker_owner", "service_role"],
    ids=["superuser", "owner-without-bypassrls", "service_role"],
)
async def test_the_worker_claims_and_completes_jobs_with_rls_on(supa, worker_role):
    """The worker connects as the table owner (or the service role) and sees every job."""
    url = supa.url
    if worker_role is not None:
        url = make_conninfo(supa.url, options=f"-c role={worker_role}")
    if worker_role == "video_worker_owner":
        await supa.rows("alter table public.video_jobs owner to video_worker_owner")
        # as if that role had run the migrations (docs/production.md)
        for function in [
            *TRANSITIONS_V1,
            *FAIR_SHARE,
            "video_jobs_complete_and_claim(uuid, uuid, text, text, jsonb, text, bigint)",
            "video_jobs_status_counts(bigint)",
        ]:
            await supa.rows(f"alter function public.{function} owner to video_worker_owner")
        await supa.rows("alter table public.video_jobs_settings owner to video_worker_owner")
    alice, bob = users()
    ids = {
        await enqueue_as(supa, alice),
        await enqueue_as(supa, bob),
        await insert_as(supa, alice, user_id=alice),
    }

    pool = make_pool(url, max_size=2)
    await pool.open(wait=True)
    try:
        store = PostgresJobStore(pool)
        async with pool.connection() as conn:
            cur = await conn.execute("select current_user as who")
            row = await cur.fetchone()
            assert row is not None and (worker_role is None or row["who"] == worker_role)
        # the first job by `claim`, every next one by the hot path's function
        [job] = await store.claim("replica-1", 1)
        seen_ids = set()
        next_job: Job | None = job
        while next_job is not None:
            seen_ids.add(next_job.id)
            assert await store.progress(next_job, 50, "processing", "halfway")
            done, next_job = await store.complete_and_claim(
                next_job,
                JobOutcome(
                    video_url=f"https://cdn.example.com/{next_job.id}.mp4", result={"bytes": 1}
                ),
                "replica-1",
            )
            assert done is not None
        assert seen_ids == ids
        assert (await store.counts())["completed"] == 3
    finally:
        await pool.close()

    seen = await as_user(
        supa,
        alice,
        "select id, status, progress, video_url from public.video_jobs order by created_at",
    )
    assert len(seen) == 2
    assert all(r["status"] == "completed" and r["progress"] == 100 for r in seen)
    assert all(r["video_url"].endswith(f"{r['id']}.mp4") for r in seen)
