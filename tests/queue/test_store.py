"""The queue's SQL on a real Postgres: claim order and exclusivity, fencing, retries, leases,
cancellation, idempotency, cleanup, migrations and the claim plan."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime, timedelta

import psycopg
import pytest

from tests.queue.helpers import wait_for
from worker.db import preflight
from worker.db.connection import connect, make_pool
from worker.db.migrate import migrate
from worker.errors import PayloadError
from worker.queue.models import JobOutcome, Status
from worker.queue.postgres import MAINTENANCE_LOCK, PostgresJobStore


async def sql(store: PostgresJobStore, query: str, *params: object) -> list[dict]:
    async with store.pool.connection() as conn:
        cur = await conn.execute(query, params or None)
        return await cur.fetchall() if cur.description else []


PICK = r"select j\.id, j\.user_id, j\.priority, j\.run_at, j\.seq"
CLAIM_PICKS = {
    # step b while the backend has nothing running: over every row (the head's priority,
    # beside it in the select list, left out)
    "every row": rf"({PICK}),\s+case .*? end\s+into [^\n]*\n(.*?);",
    # while it has: over the rows with a user, and the backend's first job beside it
    "users": rf"\(({PICK}, 0 as busy)(.*?)\) as u\b",
    "backend": rf"\(({PICK}, 1\b)(.*?)\) as b\b",
}


async def claim_picks(store: PostgresJobStore) -> dict[str, str]:
    """The claim's picks of a ready row inside video_jobs_claim_v2 (step b, CLAIM_PICKS), as
    the database holds them, with literal values for EXPLAIN: the plan of a function's call
    does not show the statements it runs."""
    [r] = await sql(
        store, "select prosrc from pg_proc where oid = 'public.video_jobs_claim_v2'::regproc"
    )
    values = {"v_now": "now()", "v_passed": "'{}'::uuid[]"}
    picks = {}
    for name, pattern in CLAIM_PICKS.items():
        found = re.search(pattern, r["prosrc"], re.S)
        assert found, (name, r["prosrc"])
        text = f"{found.group(1)}\n{found.group(2)}"
        picks[name] = re.sub(r"\b(v_now|v_passed)\b", lambda m: values[m.group(1)], text)
    return picks


async def claim_sql(store: PostgresJobStore) -> str:
    """The claim's pick over every row (the one the claim index serves)."""
    return (await claim_picks(store))["every row"]


async def db_now(store: PostgresJobStore) -> datetime:
    [r] = await sql(store, "select now() as now")
    return r["now"]


async def later(store: PostgresJobStore, seconds: float) -> datetime:
    """Move the store's clock `seconds` past the database's (or past the time already set)."""
    base = store.now or await db_now(store)
    store.now = base + timedelta(seconds=seconds)
    return store.now


async def row(store: PostgresJobStore, job_id: uuid.UUID) -> dict:
    found = await store.get(job_id)
    assert found is not None
    return found


async def test_a_row_with_only_a_payload_is_a_complete_job(store):
    [inserted] = await sql(store, "insert into video_jobs (payload) values ('{}') returning *")
    assert inserted["status"] == "pending"
    assert (inserted["priority"], inserted["attempts"], inserted["max_attempts"]) == (0, 0, 3)
    assert inserted["progress"] == 0 and inserted["run_at"] is not None
    [job] = await store.claim("w1", 1)
    assert job.id == inserted["id"] and job.attempts == 1


async def test_claim_order_is_priority_then_run_at_then_insertion(store):
    ids = []
    for priority, delay in [(0, 0), (5, 0), (0, -60), (5, 0), (0, 0)]:
        [r] = await sql(
            store,
            "insert into video_jobs (payload, priority, run_at) values "
            "('{}', %s, now() + make_interval(secs => %s)) returning id",
            priority,
            delay,
        )
        ids.append(r["id"])
    order = [(await store.claim("w", 1))[0].id for _ in range(5)]
    assert order == [ids[1], ids[3], ids[2], ids[0], ids[4]]


async def test_future_and_cancelled_jobs_are_not_claimed(store):
    await sql(
        store, "insert into video_jobs (payload, run_at) values ('{}', now() + interval '1 hour')"
    )
    await sql(store, "insert into video_jobs (payload, cancel_requested_at) values ('{}', now())")
    assert await store.claim("w", 10) == []


async def test_concurrent_claims_never_share_a_job(store):
    for _ in range(40):
        await store.enqueue({})
    results = await asyncio.gather(*[store.claim(f"w{i}", 3) for i in range(8)])
    claimed = [j.id for batch in results for j in batch]
    assert len(claimed) == len(set(claimed)) == 24


async def test_claim_sets_lease_and_worker_columns(store):
    job_id, _ = await store.enqueue({})
    [job] = await store.claim("replica-a", 1)
    r = await row(store, job_id)
    assert r["status"] == "processing" and r["worker_id"] == "replica-a"
    assert r["heartbeat_at"] is not None and r["started_at"] is not None
    assert job.lease_token is not None


async def test_writes_are_fenced_on_the_lease_token(store):
    job_id, _ = await store.enqueue({})
    [job] = await store.claim("w", 1)
    # the lease expires and another replica takes the job back
    await later(store, 3600)
    rescued = await store.maintain(lease_seconds=60)
    assert [f.id for f in rescued.rescued] == [job_id]
    [job2] = await store.claim("w2", 1)
    # the zombie's late writes are rejected, the new holder's accepted
    assert await store.progress(job, 50, "processing", "zombie") is False
    assert await store.complete(job, JobOutcome(video_url="zombie")) is None
    assert await store.fail(job, "zombie", retry=False, backoff_seconds=0) is None
    assert await store.cancelled(job) is None
    assert await store.release(job) is False
    assert (await store.heartbeat([job])).held == frozenset()
    assert await store.progress(job2, 10, "downloading", "ok") is True
    done = await store.complete(job2, JobOutcome(video_url="good"))
    assert done is not None and done.status is Status.COMPLETED
    r = await row(store, job_id)
    assert (r["status"], r["video_url"], r["progress"]) == ("completed", "good", 100)


async def test_progress_never_goes_backwards_within_an_attempt(store):
    await store.enqueue({})
    [job] = await store.claim("w", 1)
    assert await store.progress(job, 40, "processing", "a")
    assert await store.progress(job, 20, None, "b")
    r = await row(store, job.id)
    assert (r["progress"], r["stage"], r["message"]) == (40, "processing", "b")


async def test_retryable_failure_backs_off_then_fails_at_max_attempts(store):
    job_id, _ = await store.enqueue({}, max_attempts=2)
    [job] = await store.claim("w", 1)
    failed_at = await later(store, 0)
    retrying = await store.fail(job, "network down", retry=True, backoff_seconds=30)
    assert retrying is not None and retrying.status is Status.PENDING  # not a lost lease
    r = await row(store, job_id)
    assert r["status"] == "pending" and r["error"] == "network down"
    assert r["run_at"] == failed_at + timedelta(seconds=30)
    await later(store, 29.9)
    assert await store.claim("w", 1) == []  # not before run_at
    await later(store, 0.1)
    [job] = await store.claim("w", 1)
    finished = await store.fail(job, "network down again", retry=True, backoff_seconds=30)
    assert finished is not None and finished.status is Status.FAILED
    r = await row(store, job_id)
    assert r["status"] == "failed" and r["attempts"] == 2 and r["completed_at"] is not None
    assert [e["error"] for e in r["errors"]] == ["network down", "network down again"]


async def test_permanent_failure_fails_at_once(store):
    job_id, _ = await store.enqueue({})
    [job] = await store.claim("w", 1)
    finished = await store.fail(job, "payload.clips: required", retry=False, backoff_seconds=5)
    assert finished is not None and finished.status is Status.FAILED
    r = await row(store, job_id)
    assert (r["status"], r["attempts"], r["error"]) == ("failed", 1, "payload.clips: required")


async def test_expired_lease_on_last_attempt_fails_with_a_clear_error(store):
    job_id, _ = await store.enqueue({}, max_attempts=1)
    await store.claim("w", 1)
    await later(store, 300)
    result = await store.maintain(lease_seconds=60)
    assert [(f.id, f.status) for f in result.rescued] == [(job_id, Status.FAILED)]
    r = await row(store, job_id)
    assert r["status"] == "failed" and "stopped responding" in r["error"]


async def test_live_leases_are_not_rescued(store):
    await store.enqueue({})
    await later(store, 0)  # claimed at the store's time: the lease is measured from there
    await store.claim("w", 1)
    assert (await store.maintain(lease_seconds=60)).rescued == []
    await later(store, 60)  # a lease of 60 s is still live at 60 s
    assert (await store.maintain(lease_seconds=60)).rescued == []
    await later(store, 0.001)
    assert len((await store.maintain(lease_seconds=60)).rescued) == 1


async def test_maintenance_runs_on_one_replica_at_a_time(store):
    expired, _ = await store.enqueue({})
    cancelled, _ = await store.enqueue({})
    await store.claim("w", 1)
    await store.request_cancel(cancelled)
    await later(store, 3600)
    async with store.pool.connection() as conn, conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(%s)", (MAINTENANCE_LOCK,))
        skipped = await store.maintain(60)
        assert (skipped.locked, skipped.rescued, skipped.cancelled) == (False, [], [])
        assert (await row(store, expired))["status"] == "processing"  # nothing ran
        assert (await row(store, cancelled))["status"] == "pending"
    done = await store.maintain(60)
    assert done.locked is True
    assert [f.id for f in done.rescued] == [expired]
    assert [f.id for f in done.cancelled] == [cancelled]


async def test_cancelled_pending_job_never_starts(store):
    job_id, _ = await store.enqueue({})
    assert await store.request_cancel(job_id)
    assert await store.claim("w", 1) == []
    result = await store.maintain(60)
    assert [f.id for f in result.cancelled] == [job_id]
    r = await row(store, job_id)
    assert (r["status"], r["attempts"], r["started_at"]) == ("cancelled", 0, None)


async def test_heartbeat_reports_cancel_requests(store):
    await store.enqueue({})
    [job] = await store.claim("w", 1)
    await store.request_cancel(job.id)
    beat = await store.heartbeat([job])
    assert beat.held == {job.id} and beat.cancel_requested == {job.id}
    assert (await store.cancelled(job)).status is Status.CANCELLED


async def test_release_hands_the_job_back_without_using_an_attempt(store):
    job_id, _ = await store.enqueue({})
    [job] = await store.claim("w", 1)
    assert await store.progress(job, 55, "processing", "Encoding")
    assert await store.release(job)
    r = await row(store, job_id)
    assert (r["status"], r["attempts"], r["worker_id"]) == ("pending", 0, None)
    assert (r["progress"], r["stage"]) == (0, "queued")  # not "pending … 55%"
    assert [j.id for j in await store.claim("w2", 1)] == [job_id]


async def test_a_job_waiting_for_another_attempt_shows_no_progress(store):
    retried, _ = await store.enqueue({})
    rescued, _ = await store.enqueue({})
    last, _ = await store.enqueue({}, max_attempts=1)
    jobs = {j.id: j for j in await store.claim("w", 3)}
    for job in jobs.values():
        assert await store.progress(job, 55, "processing", "Encoding")
    await store.fail(jobs[retried], "network", retry=True, backoff_seconds=0)
    await store.fail(jobs[last], "network", retry=True, backoff_seconds=0)
    await later(store, 3600)  # the lease of the one still running expires
    await store.maintain(lease_seconds=60)
    progress = {
        r["id"]: (r["status"], r["progress"])
        for r in await sql(store, "select id, status, progress from video_jobs")
    }
    assert progress == {
        retried: ("pending", 0),
        rescued: ("pending", 0),
        last: ("failed", 55),  # a job that failed for good keeps where it stopped
    }


async def test_idempotency_key_makes_one_job(store):
    first, created1 = await store.enqueue({"a": 1}, idempotency_key="order-42")
    second, created2 = await store.enqueue({"a": 2}, idempotency_key="order-42")
    assert (first, created1, created2) == (second, True, False)
    rows = await sql(
        store,
        "insert into video_jobs (payload, idempotency_key) values ('{}', "
        "'order-42') on conflict (idempotency_key) do nothing returning id",
    )
    assert rows == []
    with pytest.raises(psycopg.errors.UniqueViolation):
        await sql(
            store, "insert into video_jobs (payload, idempotency_key) values ('{}', 'order-42')"
        )
    assert (await store.counts())["pending"] == 1


async def test_cleanup_removes_only_old_finished_jobs(store):
    for status, age in [
        ("completed", 8),
        ("failed", 10),
        ("cancelled", 30),
        ("completed", 1),
        ("pending", 30),
    ]:
        await sql(
            store,
            "insert into video_jobs (payload, status, completed_at) values "
            "('{}', %s, now() - make_interval(days => %s))",
            status,
            age,
        )
    assert await store.cleanup(7) == 3
    assert await store.counts() == {
        "pending": 1,
        "processing": 0,
        "completed": 1,
        "failed": 0,
        "cancelled": 0,
    }
    [r] = await sql(store, "select cleanup_old_video_jobs() as n")
    assert r["n"] == 0


async def test_notify_fires_on_insert_retry_and_cancel(store, db_url):
    listener = await connect(db_url)
    await listener.execute("listen video_jobs")
    gen = listener.notifies(timeout=5)
    job_id, _ = await store.enqueue({})
    [job] = await store.claim("w", 1)
    await store.fail(job, "x", retry=True, backoff_seconds=0)
    await store.request_cancel(job_id)
    got = []
    async for note in gen:
        got.append(note.payload)
        if len(got) == 3:
            break
    await listener.close()
    assert got == ["pending", "pending", f"cancel:{job_id}"]


async def test_claim_plan_uses_the_partial_index(store):
    # enough finished rows that a sequential scan would be the wrong plan
    await sql(
        store,
        "insert into video_jobs (payload, status, completed_at) "
        "select '{}', 'completed', now() from generate_series(1, 20000)",
    )
    for _ in range(5):
        await store.enqueue({})
    await sql(store, "analyze video_jobs")
    for _ in range(5):
        await store.enqueue({}, user_id=uuid.uuid4())
    await sql(store, "analyze video_jobs")
    picks = await claim_picks(store)
    plan = "\n".join(r["QUERY PLAN"] for r in await sql(store, "explain " + picks["every row"]))
    assert "video_jobs_claim_idx" in plan and "Sort" not in plan, plan
    plan = "\n".join(r["QUERY PLAN"] for r in await sql(store, "explain " + picks["users"]))
    assert "video_jobs_claim_users_idx" in plan and "Sort" not in plan, plan
    # the backend's first job: its own entries of the user index, in order, none sorted
    plan = "\n".join(r["QUERY PLAN"] for r in await sql(store, "explain " + picks["backend"]))
    assert "video_jobs_user_claim_idx" in plan and "Sort" not in plan, plan


async def test_migrate_applies_once_and_is_safe_concurrently(databases):
    url = databases.create()
    try:
        # this database comes from the migrated template: a fresh one needs the real thing
        conn = await connect(url)
        await conn.execute("drop table video_jobs; drop table video_worker_migrations")
        await conn.close()
        conns = [await connect(url) for _ in range(3)]
        applied = await asyncio.gather(*[migrate(c) for c in conns])
        from worker.db.migrate import migrations

        names = [n for a in applied for n in a]
        core = [m.name for m in migrations() if not m.supabase_only]
        assert sorted(names) == sorted(core)  # every file applied exactly once, by one of them
        assert await migrate(conns[0]) == []
        for c in conns:
            await c.close()
    finally:
        databases.drop(url)


def test_migrations_paste_into_an_sql_editor():
    """No psql meta-commands: the files must run as plain SQL in Supabase's editor."""
    from worker.db.migrate import migrations

    for m in migrations():
        for line in m.sql.splitlines():
            assert not line.lstrip().startswith("\\"), f"{m.name}: {line}"


async def test_core_files_pasted_again_change_nothing(store):
    """People paste sql/*.sql into an SQL editor, maybe twice, maybe over what `migrate`
    applied: every core file runs again without error and leaves the same objects."""
    from worker.db.migrate import migrations

    async def objects() -> list[dict]:
        return await sql(
            store,
            "select tgname as name, pg_get_triggerdef(oid) as definition from pg_trigger "
            "where tgrelid = 'public.video_jobs'::regclass and not tgisinternal "
            "union all select indexname, indexdef from pg_indexes where tablename = 'video_jobs' "
            "union all select p.oid::regprocedure::text, pg_get_functiondef(p.oid) "
            "from pg_proc as p where p.pronamespace = 'public'::regnamespace order by 1",
        )

    before = await objects()
    async with store.pool.connection() as conn:
        for m in migrations():
            if not m.supabase_only:
                await conn.execute(m.sql.encode())
    assert await objects() == before
    assert any(o["name"] == "video_jobs_notify_update" for o in before)


async def test_complete_and_claim_finishes_one_and_takes_the_next(store):
    first, _ = await store.enqueue({}, priority=1)
    low, _ = await store.enqueue({}, priority=0)
    high, _ = await store.enqueue({}, priority=5)
    [job] = await store.claim("w", 1)
    assert job.id == high
    finished, claimed = await store.complete_and_claim(job, JobOutcome(video_url="v"), "w")
    assert finished is not None and finished.id == high and finished.status is Status.COMPLETED
    assert claimed is not None and claimed.id == first and claimed.attempts == 1
    assert (await row(store, high))["video_url"] == "v"
    assert (await row(store, first))["status"] == "processing"
    # a stale token completes nothing, yet the live replica may still take the next job
    finished, claimed = await store.complete_and_claim(job, JobOutcome(video_url="zombie"), "w")
    assert finished is None and claimed is not None and claimed.id == low
    assert (await row(store, high))["video_url"] == "v"
    # nothing left to claim: the completion alone
    finished, claimed = await store.complete_and_claim(claimed, JobOutcome(), "w")
    assert finished is not None and finished.id == low and claimed is None


async def test_each_transition_is_written_once(store):
    """Only the transition functions of 006_transitions_v1.sql change a job's status: the hot
    paths (this version's and the previous one's) and the queue's statements call them."""
    from worker.queue.queries import QUERIES

    functions = await sql(
        store,
        "select proname, prosrc from pg_proc where pronamespace = 'public'::regnamespace",
    )
    sets_status = re.compile(r"\bset\s+status\s*=", re.I)
    writers = {f["proname"] for f in functions if sets_status.search(f["prosrc"])}
    assert writers == {
        "video_jobs_claim_v1",
        "video_jobs_claim_v2",
        "video_jobs_complete_v1",
        "video_jobs_fail_v1",
        "video_jobs_cancel_v1",
        "video_jobs_release_v1",
        "video_jobs_rescue_v1",
        "video_jobs_cancel_pending_v1",
    }
    assert [name for name, q in QUERIES.items() if sets_status.search(q)] == []


async def test_every_transition_runs_on_the_clock_it_is_given(store):
    """The queue's clock is a parameter of every statement that reads the time: a store given
    a time writes that time, and its claims and rescues judge by it."""
    start = await later(store, 7 * 86400)  # a week from now, by the store's clock
    job_id, _ = await store.enqueue({}, max_attempts=3)
    assert (await row(store, job_id))["run_at"] == start
    [job] = await store.claim("w", 1)
    r = await row(store, job_id)
    assert (r["started_at"], r["heartbeat_at"], r["updated_at"]) == (start, start, start)
    beat_at = await later(store, 5)
    assert (await store.heartbeat([job])).held == {job.id}
    assert (await row(store, job_id))["heartbeat_at"] == beat_at
    assert (await store.oldest_pending_seconds()) == 0.0
    failed_at = await later(store, 1)
    await store.fail(job, "boom", retry=True, backoff_seconds=10)
    r = await row(store, job_id)
    assert r["run_at"] == failed_at + timedelta(seconds=10)
    assert datetime.fromisoformat(r["errors"][0]["at"]) == failed_at
    await later(store, 15)
    assert await store.oldest_pending_seconds() == 5.0
    [job] = await store.claim("w", 1)
    released_at = await later(store, 1)
    assert await store.release(job)
    assert (await row(store, job_id))["run_at"] == released_at
    [job] = await store.claim("w", 1)
    rescued_at = await later(store, 61)
    assert [f.id for f in (await store.maintain(lease_seconds=60)).rescued] == [job_id]
    assert datetime.fromisoformat((await row(store, job_id))["errors"][-1]["at"]) == rescued_at
    [job] = await store.claim("w", 1)
    asked_at = await later(store, 1)
    assert await store.request_cancel(job_id)
    assert (await row(store, job_id))["cancel_requested_at"] == asked_at
    cancelled_at = await later(store, 1)
    await store.cancelled(job)
    assert (await row(store, job_id))["completed_at"] == cancelled_at
    # the hot path: the completion and the claim of the next job, both at the store's time
    first, _ = await store.enqueue({})
    second, _ = await store.enqueue({})
    [job] = await store.claim("w", 1)
    done_at = await later(store, 1)
    _, claimed = await store.complete_and_claim(job, JobOutcome(), "w")
    assert claimed is not None and claimed.id == second
    assert (await row(store, first))["completed_at"] == done_at
    assert (await row(store, second))["started_at"] == done_at
    # and a store without a clock is back on the database's
    store.now = None
    assert await store.claim("w", 1) == []
    later_job, _ = await store.enqueue({})
    assert (await row(store, later_job))["run_at"] < start


async def insert_text(store: PostgresJobStore, payload: str, priority: int = 0) -> uuid.UUID:
    """Insert a payload given as JSON text: Postgres takes what Python's json cannot write."""
    [r] = await sql(
        store,
        "insert into video_jobs (payload, priority) values (%s::jsonb, %s) returning id",
        payload,
        priority,
    )
    return r["id"]


DEEP = "[" * 3000 + "]" * 3000  # Postgres accepts it; psycopg's JSON loader does not
HUGE_INT = '{"n": ' + "7" * 5000 + "}"


async def test_the_claim_hands_over_payloads_as_text_poisoned_ones_included(store):
    small = PostgresJobStore(store.pool, max_payload_bytes=8000)
    fine, _ = await small.enqueue({"clips": [{"url": "https://a.example/x.mp4"}]})
    deep = await insert_text(small, DEEP)
    huge = await insert_text(small, HUGE_INT)
    big = await insert_text(small, '{"pad": "' + "x" * 9000 + '"}')
    jobs = {j.id: j for j in await small.claim("w", 10)}  # decoding the claim cannot fail
    assert set(jobs) == {fine, deep, huge, big}
    assert jobs[fine].payload == {"clips": [{"url": "https://a.example/x.mp4"}]}
    assert jobs[deep].payload_text == DEEP and jobs[deep].payload_bytes == 6000
    assert jobs[huge].payload_text == HUGE_INT
    with pytest.raises(PayloadError, match="nested more than"):
        _ = jobs[deep].payload
    with pytest.raises(PayloadError, match="5000 characters long"):
        _ = jobs[huge].payload
    # over the limit: the text stays in the database, its size comes back
    assert jobs[big].payload_text is None and jobs[big].payload_bytes == 9011
    with pytest.raises(PayloadError) as caught:
        _ = jobs[big].payload
    assert str(caught.value) == "payload: is 9011 bytes; at most 8000 are allowed"


async def test_a_row_with_a_poisoned_payload_can_still_be_read(store):
    deep = await insert_text(store, DEEP)
    fine, _ = await store.enqueue({"clips": [{"url": "https://a.example/x.mp4"}], "n": 1.5})
    assert (await row(store, deep))["payload"] == DEEP  # its text: `status` can show it
    assert (await row(store, fine))["payload"] == {
        "clips": [{"url": "https://a.example/x.mp4"}],
        "n": 1.5,
    }


async def test_the_hot_path_hands_over_payloads_as_text_and_withholds_large_ones(store):
    small = PostgresJobStore(store.pool, max_payload_bytes=8000)
    first, _ = await small.enqueue({}, priority=9)
    deep = await insert_text(small, DEEP, priority=8)
    big = await insert_text(small, '{"pad": "' + "x" * 9000 + '"}', priority=7)
    exact = await insert_text(small, '{"pad": "' + "x" * 7989 + '"}', priority=6)  # 8000 B
    [job] = await small.claim("w", 1)
    assert job.id == first
    seen = []
    for _ in range(3):
        _done, claimed = await small.complete_and_claim(job, JobOutcome(), "w")
        assert claimed is not None
        job = claimed
        seen.append((job.id, job.payload_text, job.payload_bytes))
    assert seen[:2] == [(deep, DEEP, 6000), (big, None, 9011)]
    assert seen[2][0] == exact and seen[2][2] == 8000 and job.payload == {"pad": "x" * 7989}


async def test_stale_statistics_are_refreshed_for_the_claim_plan(store):
    """Right after a burst of inserts the planner would sort every pending row on each claim;
    the worker's once-a-second check analyzes the table and the claim walks its index again."""
    await sql(store, "insert into video_jobs (payload) select '{}' from generate_series(1, 6000)")
    claim = await claim_sql(store)

    async def plan() -> str:
        return "\n".join(r["QUERY PLAN"] for r in await sql(store, "explain " + claim))

    async def stats_visible() -> bool:  # cumulative stats reach the view within a second
        [r] = await sql(
            store,
            "select n_mod_since_analyze as n from pg_stat_user_tables "
            "where relid = 'video_jobs'::regclass",
        )
        return r["n"] >= 6000

    await wait_for(stats_visible, timeout=5)
    assert "Sort" in await plan()  # the trap: every pending row read and sorted per claim
    assert await store.analyze_if_stale() is True
    after = await plan()
    assert "video_jobs_claim_idx" in after and "Sort" not in after, after
    assert await store.analyze_if_stale() is False  # not again at once


async def test_triggers_notify_only_when_a_row_becomes_ready_or_is_cancelled(db_url, store):
    """The NOTIFY triggers carry WHEN clauses (003_hot_path.sql): claims, progress,
    heartbeats and completions send nothing; inserts, retries and cancel requests do."""
    listen = await connect(db_url)
    await listen.execute("listen video_jobs")

    async def heard() -> list[str]:
        return [n.payload async for n in listen.notifies(timeout=0.3)]

    try:
        job_id, _ = await store.enqueue({})
        assert await heard() == ["pending"]
        [job] = await store.claim("w", 1)
        await store.progress(job, 10, "s", "m")
        await store.heartbeat([job])
        assert await heard() == []
        await store.fail(job, "boom", retry=True, backoff_seconds=0)
        assert await heard() == ["pending"]
        [job] = await store.claim("w", 1)
        await store.request_cancel(job_id)
        assert await heard() == [f"cancel:{job_id}"]
        other, _ = await store.enqueue({})
        assert await heard() == ["pending"]
        await store.complete_and_claim(job, JobOutcome(), "w")
        assert await heard() == []
        assert (await row(store, other))["status"] == "processing"
    finally:
        await listen.close()


async def test_updated_at_moves_on_every_update_unless_the_update_sets_it(store):
    job_id, _ = await store.enqueue({})
    before = (await row(store, job_id))["updated_at"]
    await sql(store, "update video_jobs set priority = 3 where id = %s", job_id)
    moved = (await row(store, job_id))["updated_at"]
    assert moved > before
    await sql(
        store,
        "update video_jobs set priority = 4, updated_at = '2001-01-01' where id = %s",
        job_id,
    )
    assert (await row(store, job_id))["updated_at"].year == 2001


async def test_a_database_behind_this_versions_functions_is_refused_at_start(db_url):
    """A worker started with --no-migrate on a database migrated by an older version: every
    claim would fail, so the start-up check says what is missing and what to run."""
    db = preflight.Database(db_url, "the test database", embedded=False)
    await preflight.check(db, need_schema=True)
    conn = await connect(db_url)
    try:
        await conn.execute(f"drop function {preflight.NEWEST_FUNCTION}")
    finally:
        await conn.close()
    with pytest.raises(preflight.PreflightError) as refused:
        await preflight.check(db, need_schema=True)
    message = str(refused.value)
    assert preflight.NEWEST_FUNCTION in message and "run `video-worker migrate`" in message
    await preflight.check(db, need_schema=False)  # `migrate` itself is not refused


async def test_the_hot_path_claims_through_the_claim_index_as_the_table_grows(db_url):
    """The function's plans are kept per backend. Warmed on a near-empty table (where a
    sequential scan is the cheaper plan), they must still walk the claim index once the table
    has grown and been analyzed: the index statistics count one claim-index scan per call."""
    pool = make_pool(db_url, max_size=1)  # one backend: the one whose plans are cached
    await pool.open(wait=True)
    try:
        store = PostgresJobStore(pool)
        [version] = await sql(store, "select current_setting('server_version_num')::int as v")
        if version["v"] < 150000:
            pytest.skip("pg_stat_force_next_flush() needs PostgreSQL 15")

        async def scans() -> tuple[int, int]:
            await sql(store, "select pg_stat_force_next_flush()")
            [r] = await sql(
                store,
                "select i.idx_scan, t.seq_scan from pg_stat_user_indexes as i "
                "join pg_stat_user_tables as t using (relid) "
                "where i.indexrelname = 'video_jobs_claim_idx'",
            )
            return r["idx_scan"], r["seq_scan"]

        for _ in range(12):  # past PL/pgSQL's five custom plans, on a table of one row
            await store.enqueue({})
            [job] = await store.claim("w", 1)
            await store.complete_and_claim(job, JobOutcome(), "w")
        await sql(
            store, "insert into video_jobs (payload) select '{}' from generate_series(1, 20000)"
        )
        await sql(store, "analyze video_jobs")
        [job] = await store.claim("w", 1)
        idx_before, seq_before = await scans()
        for _ in range(50):
            _, next_job = await store.complete_and_claim(job, JobOutcome(), "w")
            assert next_job is not None
            job = next_job
        idx_after, seq_after = await scans()
        assert (idx_after - idx_before, seq_after - seq_before) == (50, 0)
    finally:
        await pool.close()
