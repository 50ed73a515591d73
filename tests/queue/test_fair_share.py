"""Fair share on a real Postgres (sql/007_fair_share.sql): what only the database can show.

The rules themselves (turns, the caps, the held-back message, the operator reads) are held to
both stores in test_conformance.py. Here: the running cap stays exact while several connections
claim at once, a user with nothing running is next whatever another user queued, the pending
cap holds for concurrent inserts, and the limits get where the database reads them (migrate,
the worker's start) before /health answers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from tests.queue.procs import Replica
from tests.test_cli import cli
from tests.test_deploy_files import keda_count
from worker.app import apply_migrations
from worker.db.connection import make_pool
from worker.errors import PendingLimitError
from worker.queue.models import Job, JobOutcome
from worker.queue.postgres import PostgresJobStore
from worker.queue.store import UserLimits

CONNECTIONS = 8  # claimers at once, each on a connection (a backend) of its own
CAP = 2


async def sql(store: PostgresJobStore, query: str, *params: object) -> list[dict]:
    async with store.pool.connection() as conn:
        cur = await conn.execute(query, params or None)
        return await cur.fetchall() if cur.description else []


async def running_by_user(store: PostgresJobStore) -> dict[uuid.UUID | None, int]:
    rows = await sql(
        store,
        "select user_id, count(*) as n from video_jobs where status = 'processing' "
        "group by user_id",
    )
    return {r["user_id"]: r["n"] for r in rows}


async def add_jobs(store: PostgresJobStore, users: list[uuid.UUID | None], each: int) -> None:
    """`each` jobs per user, interleaved (user 1, user 2, …, user 1, …), in one statement."""
    await sql(
        store,
        "insert into video_jobs (payload, user_id) "
        "select '{}', u from generate_series(1, %s) as n, unnest(%s::uuid[]) as u "
        "order by n",
        each,
        users,
    )


@pytest.fixture
async def claimers(db_url: str) -> AsyncIterator[list[PostgresJobStore]]:
    """CONNECTIONS stores, each on a pool of one connection: their claims run at once."""
    pools = [make_pool(db_url, max_size=1, name=f"claimer-{n}") for n in range(CONNECTIONS)]
    for pool in pools:
        await pool.open(wait=True)
    try:
        yield [PostgresJobStore(pool) for pool in pools]
    finally:
        for pool in pools:
            await pool.close()


async def test_claims_from_many_connections_at_once_never_pass_the_cap(store, claimers):
    """Every connection claims at the same moment, again and again, and nothing completes in
    between: any claim past the cap would stay visible. Each user ends exactly at the cap."""
    await store.set_limits(UserLimits(max_running=CAP, max_pending=1000))
    for _round in range(5):
        users: list[uuid.UUID | None] = [uuid.uuid4() for _ in range(3)]
        await add_jobs(store, users, 20)
        go = asyncio.Event()

        async def claim_until_empty(claimer: PostgresJobStore, go: asyncio.Event) -> list[Job]:
            await go.wait()
            got: list[Job] = []
            while batch := await claimer.claim("hammer", 3):
                got.extend(batch)
            return got

        tasks = [asyncio.create_task(claim_until_empty(c, go)) for c in claimers]
        await asyncio.sleep(0)
        go.set()
        claimed = [job for jobs in await asyncio.gather(*tasks) for job in jobs]
        assert await running_by_user(store) == dict.fromkeys(users, CAP)
        assert len(claimed) == len(users) * CAP
        for job in claimed:  # free the slots and the queue for the next round
            assert await store.complete(job, JobOutcome()) is not None
        await sql(store, "delete from video_jobs where status = 'pending'")


async def test_the_cap_holds_while_jobs_finish_and_claim_on_the_hot_path(store, claimers):
    """Claimers finish each job and claim the next in one round trip, as a busy worker does,
    while a watcher reads the running jobs by user: never one past the cap."""
    await store.set_limits(UserLimits(max_running=CAP, max_pending=1000))
    users: list[uuid.UUID | None] = [uuid.uuid4() for _ in range(3)]
    await add_jobs(store, users, 40)
    done = asyncio.Event()
    seen: list[int] = []

    async def watch() -> None:
        while not done.is_set():
            seen.extend((await running_by_user(store)).values())
            await asyncio.sleep(0)

    async def work(claimer: PostgresJobStore) -> int:
        finished = 0
        for job in await claimer.claim("hot", 1):
            next_job: Job | None = job
            while next_job is not None:
                _, next_job = await claimer.complete_and_claim(next_job, JobOutcome(), "hot")
                finished += 1
        return finished

    watcher = asyncio.create_task(watch())
    # claimers that found nothing (all users at the cap) try again until every job is done
    total = 0
    while total < len(users) * 40:
        total += sum(await asyncio.gather(*(work(c) for c in claimers)))
    done.set()
    await watcher
    assert seen and max(seen) <= CAP


async def test_a_user_with_nothing_running_is_next_whatever_another_queued(store):
    """1,000 of alice's jobs queued first, both slots hers: bob's one job is the next claimed
    once a slot frees, then alice's again."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    await store.set_limits(UserLimits(max_running=CAP, max_pending=1000))
    await add_jobs(store, [alice], 1000)
    running = await store.claim("w", 2)
    assert [j.user_id for j in running] == [alice, alice]
    bobs, _ = await store.enqueue({}, user_id=bob)
    _, next_job = await store.complete_and_claim(running[0], JobOutcome(), "w")
    assert next_job is not None and next_job.id == bobs
    _, next_job = await store.complete_and_claim(running[1], JobOutcome(), "w")
    assert next_job is not None and next_job.user_id == alice


async def test_a_user_is_next_behind_the_backends_backlog_too(store):
    """The rows without user_id are never capped, so they may fill every slot; they still take
    turns as one user, and a user with nothing running goes before their next one."""
    bob = uuid.uuid4()
    await add_jobs(store, [None], 1000)
    running = await store.claim("w", 4)
    assert [j.user_id for j in running] == [None] * 4
    bobs, _ = await store.enqueue({}, user_id=bob)
    _, next_job = await store.complete_and_claim(running[0], JobOutcome(), "w")
    assert next_job is not None and next_job.id == bobs
    _, next_job = await store.complete_and_claim(running[1], JobOutcome(), "w")
    assert next_job is not None and next_job.user_id is None


async def test_inserts_at_the_same_moment_never_pass_the_pending_cap(store, claimers):
    alice = uuid.uuid4()
    await store.set_limits(UserLimits(max_running=CAP, max_pending=10))

    async def insert(into: PostgresJobStore) -> int:
        made = 0
        for _ in range(4):
            try:
                await into.enqueue({}, user_id=alice)
                made += 1
            except PendingLimitError:
                pass
        return made

    assert sum(await asyncio.gather(*(insert(c) for c in claimers))) == 10
    [row] = await sql(
        store,
        "select count(*) as n from video_jobs where user_id = %s and status = 'pending'",
        alice,
    )
    assert row["n"] == 10


async def test_inserts_for_several_users_in_opposite_orders_do_not_deadlock(store, db_url):
    """Two statements insert rows for the same two users in opposite orders, both made to wait
    for the users' cap locks (held by a third connection) and let go at the same moment. Locks
    taken row by row would now be held one each and waited on crosswise (Postgres aborts one
    with a deadlock); taken in one order per statement, one insert waits for the other."""
    await store.set_limits(UserLimits(max_running=CAP, max_pending=10))
    users = [uuid.uuid4(), uuid.uuid4()]
    keys = [(await sql(store, "select hashtext(%s::text) as k", str(u)))[0]["k"] for u in users]
    holder = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    inserters = [await psycopg.AsyncConnection.connect(db_url) for _ in range(2)]
    try:
        for key in keys:
            await holder.execute("select pg_advisory_lock(72385611, %s)", (key,))

        async def insert(conn: psycopg.AsyncConnection, order: list[uuid.UUID]) -> None:
            async with conn.transaction():
                await conn.execute(
                    "insert into video_jobs (payload, user_id) "
                    "select '{}', u from unnest(%s::uuid[]) with ordinality as t(u, n) "
                    "order by n",
                    (order,),
                )

        tasks = [asyncio.create_task(insert(inserters[0], users)),
                 asyncio.create_task(insert(inserters[1], users[::-1]))]  # fmt: skip
        for _ in range(500):  # both statements are waiting for a lock
            cur = await holder.execute(
                "select count(*) from pg_locks where locktype = 'advisory' and not granted"
            )
            if (await cur.fetchone())[0] == 2:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the inserts never waited for the cap's locks")
        await holder.execute("select pg_advisory_unlock_all()")
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for conn in [holder, *inserters]:
            await conn.close()
    assert [r for r in results if isinstance(r, BaseException)] == []
    counted = await sql(
        store,
        "select user_id, count(*) as n from video_jobs where user_id = any(%s) group by user_id",
        users,
    )
    assert sorted(r["n"] for r in counted) == [2, 2]


async def limits(store: PostgresJobStore) -> tuple[int, int]:
    [row] = await sql(
        store,
        "select max_running_per_user as r, max_pending_per_user as p from video_jobs_settings",
    )
    return row["r"], row["p"]


async def test_migrate_writes_the_configured_limits(store, db_url):
    assert await limits(store) == (2, 100)  # the defaults, before any worker said otherwise
    await apply_migrations(db_url, UserLimits(max_running=4, max_pending=9))
    assert await limits(store) == (4, 9)
    await apply_migrations(db_url)  # `enqueue` migrating a fresh database leaves them alone
    assert await limits(store) == (4, 9)
    cli(db_url, "migrate", MAX_RUNNING_PER_USER="3", MAX_PENDING_PER_USER="50")
    assert await limits(store) == (3, 50)


async def test_the_worker_writes_its_limits_before_health_answers(store, db_url, tmp_path: Path):
    """Even without migrating (a least-privilege role runs `run --no-migrate`)."""
    replica = Replica(
        db_url,
        "limits",
        tmp_path,
        args=["--no-migrate"],
        MAX_RUNNING_PER_USER="5",
        MAX_PENDING_PER_USER="12",
    )
    try:
        await asyncio.to_thread(replica.port)  # logged once /health answers
        assert await limits(store) == (5, 12)
    finally:
        replica.stop()


async def test_a_settings_value_the_database_cannot_hold_is_refused_at_start(db_url):
    proc = cli(db_url, "migrate", check=False, MAX_PENDING_PER_USER="0")
    assert proc.returncode == 2 and "MAX_PENDING_PER_USER must be at least 1" in proc.stderr
    proc = cli(db_url, "migrate", check=False, MAX_RUNNING_PER_USER=str(2**31))
    assert proc.returncode == 2 and "MAX_RUNNING_PER_USER must be at most" in proc.stderr


@pytest.mark.slow
async def test_enqueue_past_the_cap_says_so_on_the_command_line(store, db_url):
    alice = uuid.uuid4()
    await store.set_limits(UserLimits(max_pending=1))
    clips = '{"clips": [{"url": "https://cdn.example.com/a.mp4"}]}'
    cli(db_url, "enqueue", "--user-id", str(alice), "--payload", clips)
    proc = cli(db_url, "enqueue", "--user-id", str(alice), "--payload", clips, check=False)
    assert proc.returncode == 1
    assert "you have 1 videos waiting: wait until one of them starts" in proc.stderr


async def test_held_back_jobs_are_marked_by_one_replica_without_a_write_per_pass(store):
    """The maintenance pass writes a held-back job's message once, when it changes: passes
    that find nothing new leave every row version as it was."""
    alice = uuid.uuid4()
    await add_jobs(store, [alice], 5)
    await store.claim("w", 5)
    assert (await store.maintain(60)).held_back == 3
    versions = "select id, xmin::text as xmin, ctid::text as ctid from video_jobs order by id"
    before = await sql(store, versions)
    for _ in range(3):
        assert (await store.maintain(60)).held_back == 0
    assert await sql(store, versions) == before


async def test_keda_counts_only_the_jobs_a_worker_may_run_now(store, db_url):
    """Running jobs, plus each user's ready jobs up to what the running cap leaves free; the
    backend's rows (no user_id) uncapped; future, cancelled and finished rows not at all."""
    await store.set_limits(UserLimits(max_running=CAP, max_pending=1000))
    flooder, other, capped = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await add_jobs(store, [flooder], 50)  # 50 ready, nothing running: counts CAP
    await add_jobs(store, [other], 1)  # counts 1
    await add_jobs(store, [None], 3)  # the backend's: counts 3
    await add_jobs(store, [capped], 4)
    await sql(
        store,
        "update video_jobs set status = 'processing', attempts = 1, "
        "worker_id = 'w', heartbeat_at = now(), started_at = now(), "
        "lease_token = gen_random_uuid() "
        "where id in (select id from video_jobs where user_id = %s limit 2)",
        capped,
    )  # capped: 2 running (counted), 2 ready held back by the cap (not counted)
    await sql(
        store,
        "insert into video_jobs (payload, user_id, run_at) "
        "values ('{}', %s, now() + interval '1 hour')",
        uuid.uuid4(),
    )
    await sql(store, "insert into video_jobs (payload, user_id, cancel_requested_at) "
                     "values ('{}', %s, now())", uuid.uuid4())  # fmt: skip
    assert await keda_count(db_url) == CAP + 1 + 3 + 2
    await store.set_limits(UserLimits(max_running=10, max_pending=1000))  # the cap from the table
    assert await keda_count(db_url) == 10 + 1 + 3 + 4
