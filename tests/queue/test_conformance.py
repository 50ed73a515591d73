"""One suite, every store: PostgresJobStore and MemoryJobStore answer the runner alike.

Each test runs against both (River's habit). What only Postgres can show (SKIP LOCKED between
processes, plans, NOTIFY, payloads Python cannot write) stays in test_store.py and friends; what
the runner relies on is here, so that runner tests on the memory store test what production
does. Time passes by `pass_time`: one clock moves, which the memory store reads and which the
Postgres store passes to every statement as `%(now)s` (`coalesce(%(now)s, now())` in the SQL).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.queue.conftest import ManualClock
from worker.errors import PendingLimitError
from worker.queue.memory import MemoryJobStore
from worker.queue.models import Job, JobOutcome, Status
from worker.queue.postgres import PostgresJobStore
from worker.queue.store import Backlog, UserLimits

LEASE = 10
TIMESTAMPS = ("run_at", "heartbeat_at", "created_at", "started_at", "completed_at")


class Driver:
    def __init__(self, store: Any, clock: ManualClock) -> None:
        self.store = store
        self.clock = clock

    async def pass_time(self, seconds: float) -> None:
        """Move the store's clock: the memory store reads it, and on Postgres every statement
        takes it as `%(now)s` (rows are never edited to move time)."""
        self.clock.advance(seconds)
        if isinstance(self.store, PostgresJobStore):
            self.store.now = self.clock.now

    async def row(self, job_id: uuid.UUID) -> dict[str, Any]:
        found = await self.store.get(job_id)
        assert found is not None
        return found

    async def claim_one(self, worker_id: str = "w1") -> Job | None:
        claimed = await self.store.claim(worker_id, 1)
        return claimed[0] if claimed else None


@pytest.fixture(params=["postgres", "memory"])
def driver(request: pytest.FixtureRequest) -> Driver:
    clock = ManualClock()
    if request.param == "postgres":
        store = request.getfixturevalue("store")
        store.now = clock.now
        return Driver(store, clock)
    return Driver(MemoryJobStore(clock=clock), clock)


async def enqueue(driver: Driver, **kw: Any) -> uuid.UUID:
    job_id, created = await driver.store.enqueue({"n": 1}, **kw)
    assert created
    return job_id


async def test_claim_takes_priority_then_run_at_then_age_and_not_the_future(driver):
    now = driver.clock.now  # the store's clock (the wall clock ran on while the database was made)
    plain = await enqueue(driver)
    urgent = await enqueue(driver, priority=5)
    earlier = await enqueue(driver, run_at=now - timedelta(minutes=1))
    later = await enqueue(driver, run_at=now + timedelta(hours=1))
    order = [(await driver.claim_one()) for _ in range(4)]
    assert [j.id if j else None for j in order] == [urgent, earlier, plain, None]
    await driver.pass_time(3601)
    job = await driver.claim_one()
    assert job is not None and job.id == later


async def test_a_claim_leases_the_job_and_counts_the_attempt(driver):
    job_id, _ = await driver.store.enqueue({"script": [1, 2]}, max_attempts=4)
    [job] = await driver.store.claim("w1", 5)
    assert (job.id, job.attempts, job.max_attempts, job.payload) == (
        job_id,
        1,
        4,
        {"script": [1, 2]},
    )
    assert job.lease_token is not None and job.payload_bytes > 0
    row = await driver.row(job_id)
    assert (row["status"], row["worker_id"], row["progress"]) == ("processing", "w1", 0)
    assert row["stage"] == "starting" and row["started_at"] is not None
    assert await driver.store.claim("w2", 5) == []  # leased: nobody else gets it


async def test_a_payload_over_the_limit_is_withheld_with_its_size(driver):
    job_id, _ = await driver.store.enqueue({"pad": "x" * 200})
    driver.store.max_payload_bytes = 100
    [job] = await driver.store.claim("w1", 1)
    assert job.id == job_id and job.payload_text is None and job.payload_bytes > 200


async def test_complete_writes_the_outcome_once_fenced_on_the_lease(driver):
    job_id = await enqueue(driver, webhook_url="http://127.0.0.1:9/hook")
    job = await driver.claim_one()
    assert job is not None
    outcome = JobOutcome(video_url="file:///v.mp4", thumbnail_url="file:///t.jpg", result={"a": 1})
    stranger = dataclasses.replace(job, lease_token=uuid.uuid4())
    assert await driver.store.complete(stranger, outcome) is None
    finished = await driver.store.complete(job, outcome)
    assert finished is not None
    assert (finished.id, finished.status, finished.webhook_url) == (
        job_id,
        Status.COMPLETED,
        "http://127.0.0.1:9/hook",
    )
    row = await driver.row(job_id)
    assert (row["status"], row["progress"], row["video_url"]) == ("completed", 100, "file:///v.mp4")
    assert row["result"] == {"a": 1} and row["completed_at"] is not None
    assert await driver.store.complete(job, outcome) is None  # the lease ended with the job


async def test_complete_and_claim_finishes_one_and_leases_the_next(driver):
    first = await enqueue(driver)
    second = await enqueue(driver)
    job = await driver.claim_one()
    assert job is not None and job.id == first
    finished, claimed = await driver.store.complete_and_claim(job, JobOutcome(), "w1")
    assert finished is not None and finished.status is Status.COMPLETED
    assert claimed is not None and (claimed.id, claimed.attempts) == (second, 1)
    assert (await driver.row(second))["status"] == "processing"
    finished, claimed = await driver.store.complete_and_claim(claimed, JobOutcome(), "w1")
    assert finished is not None and claimed is None


async def test_a_retryable_failure_waits_its_backoff_then_fails_for_good_at_max_attempts(driver):
    job_id = await enqueue(driver, max_attempts=2)
    job = await driver.claim_one()
    assert job is not None
    finished = await driver.store.fail(job, "flaky", retry=True, backoff_seconds=30)
    assert finished is not None and finished.status is Status.PENDING
    row = await driver.row(job_id)
    assert (row["status"], row["stage"], row["progress"], row["error"]) == (
        "pending",
        "retrying",
        0,
        "flaky",
    )
    assert row["worker_id"] is None and row["completed_at"] is None and len(row["errors"]) == 1
    assert await driver.claim_one() is None  # backing off
    await driver.pass_time(31)
    again = await driver.claim_one()
    assert again is not None and again.attempts == 2
    finished = await driver.store.fail(again, "flaky again", retry=True, backoff_seconds=30)
    assert finished is not None and finished.status is Status.FAILED
    row = await driver.row(job_id)
    assert (row["status"], row["error"], row["attempts"]) == ("failed", "flaky again", 2)
    assert [e["error"] for e in row["errors"]] == ["flaky", "flaky again"]
    assert row["completed_at"] is not None


async def test_a_permanent_failure_fails_at_once_and_is_fenced(driver):
    job_id = await enqueue(driver, max_attempts=5)
    job = await driver.claim_one()
    assert job is not None
    stranger = dataclasses.replace(job, lease_token=uuid.uuid4())
    assert await driver.store.fail(stranger, "no", retry=False, backoff_seconds=0) is None
    finished = await driver.store.fail(job, "payload: bad", retry=False, backoff_seconds=0)
    assert finished is not None and finished.status is Status.FAILED
    row = await driver.row(job_id)
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 1, "payload: bad")


async def test_a_pending_job_cancelled_never_starts_and_maintenance_ends_it(driver):
    job_id = await enqueue(driver)
    assert await driver.store.request_cancel(job_id)
    assert await driver.claim_one() is None
    result = await driver.store.maintain(LEASE)
    assert result.locked and [f.id for f in result.cancelled] == [job_id]
    row = await driver.row(job_id)
    assert (row["status"], row["attempts"], row["started_at"]) == ("cancelled", 0, None)
    assert not await driver.store.request_cancel(job_id)  # finished: nothing to cancel


async def test_a_running_job_asked_to_cancel_hears_it_at_its_heartbeat(driver):
    job_id = await enqueue(driver)
    job = await driver.claim_one()
    assert job is not None
    beat = await driver.store.heartbeat([job])
    assert (beat.held, beat.cancel_requested) == (frozenset({job_id}), frozenset())
    assert await driver.store.request_cancel(job_id)
    beat = await driver.store.heartbeat([job])
    assert beat.held == beat.cancel_requested == frozenset({job_id})
    finished = await driver.store.cancelled(job)
    assert finished is not None and finished.status is Status.CANCELLED
    row = await driver.row(job_id)
    assert (row["status"], row["stage"]) == ("cancelled", "cancelled")
    assert row["completed_at"] is not None
    assert (await driver.store.heartbeat([job])).held == frozenset()


async def test_release_hands_the_job_back_without_counting_the_attempt(driver):
    job_id = await enqueue(driver)
    job = await driver.claim_one()
    assert job is not None
    assert await driver.store.release(job)
    row = await driver.row(job_id)
    assert (row["status"], row["attempts"], row["worker_id"]) == ("pending", 0, None)
    assert not await driver.store.release(job)  # the lease went with it
    again = await driver.claim_one("w2")
    assert again is not None and (again.id, again.attempts) == (job_id, 1)


async def test_maintenance_rescues_expired_leases_only(driver):
    retry = await enqueue(driver, max_attempts=3)
    used_up = await enqueue(driver, max_attempts=1)
    cancel = await enqueue(driver)
    fresh = await enqueue(driver)
    jobs = {j.id: j for j in await driver.store.claim("w1", 4)}
    assert set(jobs) == {retry, used_up, cancel, fresh}
    assert await driver.store.request_cancel(cancel)
    await driver.pass_time(LEASE + 1)
    assert (await driver.store.heartbeat([jobs[fresh]])).held == {fresh}
    result = await driver.store.maintain(LEASE)
    assert {f.id: f.status for f in result.rescued} == {
        retry: Status.PENDING,
        used_up: Status.FAILED,
        cancel: Status.CANCELLED,
    }
    assert result.cancelled == []
    rows = {i: await driver.row(i) for i in jobs}
    assert rows[fresh]["status"] == "processing"
    assert "stopped responding" in rows[retry]["error"] and rows[retry]["worker_id"] is None
    assert "stopped responding" in rows[used_up]["error"]
    assert rows[used_up]["completed_at"] is not None and rows[cancel]["completed_at"] is not None
    # the rescued job's old lease writes nothing; its next attempt runs elsewhere
    assert await driver.store.complete(jobs[retry], JobOutcome()) is None
    assert (await driver.store.heartbeat([jobs[retry]])).held == frozenset()
    again = await driver.claim_one("w2")
    assert again is not None and (again.id, again.attempts) == (retry, 2)


async def test_progress_is_fenced_and_never_goes_back(driver):
    job_id = await enqueue(driver)
    job = await driver.claim_one()
    assert job is not None
    assert await driver.store.progress(job, 50, "encoding", "half")
    assert await driver.store.progress(job, 30, None, None)
    row = await driver.row(job_id)
    assert (row["progress"], row["stage"], row["message"]) == (50, "encoding", "half")
    stranger = dataclasses.replace(job, lease_token=uuid.uuid4())
    assert not await driver.store.progress(stranger, 90, "x", "y")
    await driver.store.complete(job, JobOutcome())
    assert not await driver.store.progress(job, 100, None, None)


async def test_the_reads_behind_health_and_stats(driver):
    await driver.store.ping()
    failed = []
    for _ in range(2):
        failed.append(await enqueue(driver))
        job = await driver.claim_one()
        assert job is not None and job.id == failed[-1]
        await driver.store.fail(job, f"failure {job.id}", retry=False, backoff_seconds=0)
        await driver.pass_time(5)
    for _ in range(2):
        await enqueue(driver)
    running = await driver.claim_one()
    assert running is not None
    await driver.pass_time(10)
    queue = await driver.store.queue_counts()
    assert queue.counts == {
        "pending": 1,
        "processing": 1,
        "completed": 0,
        "failed": 2,
        "cancelled": 0,
    }
    assert queue.estimated == frozenset()
    newest = await driver.store.recent_failures(10)
    assert [r["id"] for r in newest] == failed[::-1]
    assert newest[0]["error"] == f"failure {failed[1]}" and newest[0]["attempts"] == 1
    assert await driver.store.oldest_pending_seconds() >= 10


async def test_an_idempotency_key_returns_the_first_job(driver):
    first, created = await driver.store.enqueue({}, idempotency_key="k1")
    again, created_again = await driver.store.enqueue({"other": 1}, idempotency_key="k1")
    assert (again, created, created_again) == (first, True, False)


# ---- fair share (sql/007_fair_share.sql) ----------------------------------------------------

ALICE, BOB, CAROL = (uuid.UUID(int=n) for n in (0xA, 0xB, 0xC))


async def claimed_users(driver: Driver, n: int) -> list[uuid.UUID | None]:
    """Whose job each of `n` single claims took (None: a row without user_id)."""
    found = []
    for _ in range(n):
        job = await driver.claim_one()
        assert job is not None
        found.append(job.user_id)
    return found


async def test_users_take_turns_fewest_running_first_then_age(driver):
    for _ in range(3):
        await enqueue(driver, user_id=ALICE)
    await enqueue(driver)  # the backend's rows are one more user
    await enqueue(driver)
    await enqueue(driver, user_id=BOB)
    # 0 running each: oldest first (alice, backend, bob); then 1 each: oldest again
    assert await claimed_users(driver, 5) == [ALICE, None, BOB, ALICE, None]
    assert await driver.claim_one() is None  # alice is at the cap (2), her third job waits


async def test_priority_still_wins_across_users(driver):
    await driver.store.set_limits(UserLimits(max_running=5))
    for _ in range(2):
        await enqueue(driver, user_id=ALICE, priority=5)
    await enqueue(driver, user_id=BOB)
    await enqueue(driver, user_id=CAROL, priority=1)
    assert await claimed_users(driver, 4) == [ALICE, ALICE, CAROL, BOB]


async def test_a_user_never_runs_more_than_the_cap_the_backend_is_not_capped(driver):
    await driver.store.set_limits(UserLimits(max_running=3))
    for _ in range(5):
        await enqueue(driver, user_id=ALICE)
        await enqueue(driver)
    jobs = await driver.store.claim("w1", 20)
    users = [j.user_id for j in jobs]
    assert (users.count(ALICE), users.count(None)) == (3, 5)
    done = next(j for j in jobs if j.user_id == ALICE)
    _, next_job = await driver.store.complete_and_claim(done, JobOutcome(), "w1")
    assert next_job is not None and next_job.user_id == ALICE  # a slot of hers is free again
    assert await driver.store.claim("w1", 5) == []


async def test_the_pending_cap_refuses_inserts_past_it_but_never_a_retry(driver):
    await driver.store.set_limits(UserLimits(max_running=2, max_pending=3))
    first = [await enqueue(driver, user_id=ALICE, idempotency_key=f"a{n}") for n in range(3)]
    with pytest.raises(PendingLimitError) as refused:
        await driver.store.enqueue({"n": 1}, user_id=ALICE)
    assert str(refused.value) == (
        "you have 3 videos waiting: wait until one of them starts before adding another"
    )
    # the same request again still finds its job; other users and the backend are not limited
    assert await driver.store.enqueue({"n": 1}, user_id=ALICE, idempotency_key="a0") == (
        first[0],
        False,
    )
    await enqueue(driver, user_id=BOB)
    for _ in range(5):
        await enqueue(driver)
    # a job that starts makes room; its retry going back to pending is never refused
    job = await driver.claim_one()
    assert job is not None and job.user_id == ALICE
    await enqueue(driver, user_id=ALICE)
    assert await driver.store.fail(job, "flaky", retry=True, backoff_seconds=0) is not None
    assert (await driver.row(job.id))["status"] == "pending"  # 4 pending now, over the cap


async def test_a_job_held_back_by_the_running_cap_says_so(driver):
    for _ in range(3):
        await enqueue(driver, user_id=ALICE)
    waiting = await enqueue(driver, user_id=BOB)
    held = await enqueue(driver, user_id=ALICE)
    jobs = await driver.store.claim("w1", 3)
    assert [j.user_id for j in jobs] == [ALICE, BOB, ALICE]
    result = await driver.store.maintain(LEASE)
    assert result.held_back == 2  # alice's two waiting jobs
    assert (await driver.row(held))["message"] == "waiting: 2 of your videos are rendering"
    assert (await driver.row(waiting))["message"] == "Job claimed"
    assert (await driver.store.maintain(LEASE)).held_back == 0  # written once, not per pass
    await driver.store.complete(jobs[0], JobOutcome())
    assert (await driver.store.maintain(LEASE)).held_back == 2  # no longer held: it says so
    assert (await driver.row(held))["message"] is None
    await driver.store.set_limits(UserLimits(max_running=1))
    assert (await driver.store.maintain(LEASE)).held_back == 2
    assert (await driver.row(held))["message"] == "waiting: 1 of your videos is rendering"


async def test_operators_see_the_largest_backlogs_and_how_many_users_wait(driver):
    await driver.store.set_limits(UserLimits(max_running=1))
    for user, n in ((ALICE, 4), (BOB, 2), (CAROL, 1)):
        for _ in range(n):
            await enqueue(driver, user_id=user)
    await enqueue(driver)
    assert await driver.store.users_waiting() == 4  # three users and the backend
    await driver.store.claim("w1", 10)
    backlogs = await driver.store.user_backlogs(2)
    assert backlogs == [Backlog(ALICE, 3, 1), Backlog(BOB, 1, 1)]
    assert await driver.store.users_waiting() == 2
