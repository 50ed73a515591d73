"""The runner with small real handlers: success, failure, retry, concurrency, progress
throttling, cancellation, timeouts, lost leases and shutdown.

Tests about the runner run on the in-memory store (`memory_store`: the rules of queries.sql,
held to them by test_conformance.py), which keeps them fast; those about what only Postgres
does (NOTIFY, the rows progress writes leave, payloads Python cannot write, one claim's
shared transaction time) run on a real Postgres (`store`)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import time
import uuid
from datetime import timedelta

import aiohttp

from tests.handlers import scripted
from tests.queue.helpers import ClaimWatch, fast_settings, running, status_is, wait_for
from worker import log as worker_log
from worker.errors import DownloadError, PermanentError, StorageError
from worker.http.server import bound_port, create_app, serve
from worker.queue.postgres import PostgresJobStore
from worker.queue.runner import Runner
from worker.row_error import UNEXPECTED


async def enqueue(store, *script, **kw):
    job_id, _ = await store.enqueue({"script": list(script)}, **kw)
    return job_id


async def test_runs_a_job_to_completion(memory_store):
    job_id = await enqueue(memory_store, {"progress": 50, "stage": "processing", "message": "half"})
    async with running(memory_store, scripted) as runner:
        r = await status_is(memory_store, job_id, "completed")
    assert r["progress"] == 100 and r["video_url"] == f"file:///out/{job_id}.mp4"
    assert r["result"] == {"attempt": 1} and r["completed_at"] is not None
    assert r["lease_token"] if "lease_token" in r else True
    assert runner.counters.processed == 1


async def test_permanent_error_fails_at_once_with_its_message(memory_store):
    job_id = await enqueue(memory_store, {"fail": "payload.clips[0].url: must be an http(s) URL"})
    async with running(memory_store, scripted) as runner:
        r = await status_is(memory_store, job_id, "failed")
    assert r["attempts"] == 1 and r["error"] == "payload.clips[0].url: must be an http(s) URL"
    assert runner.counters.failed == 1


async def test_transient_errors_retry_then_succeed(memory_store):
    job_id = await enqueue(memory_store, {"fail_until_attempt": 3}, max_attempts=3)
    async with running(memory_store, scripted):
        r = await status_is(memory_store, job_id, "completed")
    assert r["attempts"] == 3
    # an unexpected exception's text stays in the log; the row names its kind only
    assert [e["error"] for e in r["errors"]] == [UNEXPECTED.format(kind="RuntimeError")] * 2


async def test_transient_errors_stop_at_max_attempts(memory_store):
    job_id = await enqueue(memory_store, {"raise": "storage outage"}, max_attempts=2)
    async with running(memory_store, scripted):
        r = await status_is(memory_store, job_id, "failed")
    assert r["attempts"] == 2 and r["error"] == UNEXPECTED.format(kind="RuntimeError")


async def test_runs_up_to_concurrency_jobs_at_once(memory_store):
    active, peak = 0, 0
    release = asyncio.Event()

    async def handler(job, ctx):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await release.wait()  # hold the slot until the test has seen three at once
        active -= 1

    ids = [await enqueue(memory_store) for _ in range(8)]
    async with running(memory_store, handler, concurrency=3):
        await wait_for(lambda: asyncio.sleep(0, result=active == 3))
        # all slots taken: the loop leaves the other five pending
        statuses = sorted([(await memory_store.get(job_id))["status"] for job_id in ids])
        assert statuses == ["pending"] * 5 + ["processing"] * 3
        release.set()
        for job_id in ids:
            await status_is(memory_store, job_id, "completed")
    assert peak == 3


async def test_progress_writes_are_throttled_and_the_last_value_lands(store):
    async with store.pool.connection() as conn:
        await conn.execute("""
            create table progress_log (progress int, at timestamptz default clock_timestamp());
            create function log_progress() returns trigger language plpgsql as $$
            begin insert into progress_log (progress) values (new.progress); return null; end $$;
            create trigger log_progress after update of progress, message on video_jobs
            for each row when (new.message like 'step %') execute function log_progress();""")
    reported, release = asyncio.Event(), asyncio.Event()

    span = {}

    async def handler(job, ctx):
        start = time.monotonic()
        for i in range(1, 81):  # 80 reports over ~2 s (longer on a loaded machine)
            await ctx.report(i, "processing", f"step {i}")
            await asyncio.sleep(0.025)
        span["seconds"] = time.monotonic() - start
        reported.set()
        await release.wait()  # quiet from here on: the trailing write must still land

    async def last_value_landed():  # type: ignore[no-untyped-def]
        row = await store.get(job_id)
        return (row["progress"], row["message"]) == (80, "step 80")

    job_id = await enqueue(store)
    async with running(store, handler) as runner:
        try:
            await asyncio.wait_for(reported.wait(), 30)
            assert runner.in_flight[job_id].reporter.state.progress == 80
            # the trailing write comes about a second after the last report (later when loaded)
            await wait_for(last_value_landed, timeout=15)
        finally:
            release.set()
    async with store.pool.connection() as conn:
        rows = await (
            await conn.execute("select progress, at from progress_log order by at")
        ).fetchall()
    writes = list(rows)
    # about one write a second while reporting, plus the trailing one
    assert 2 <= len(writes) <= span["seconds"] + 2, (writes, span)
    gaps = [(b["at"] - a["at"]).total_seconds() for a, b in itertools.pairwise(writes)]
    assert all(g >= 0.9 for g in gaps), gaps
    assert [w["progress"] for w in writes] == sorted(w["progress"] for w in writes)


async def test_cancelling_a_running_job_stops_its_handler(store, db_url):
    stopped = asyncio.Event()

    async def handler(job, ctx):
        try:
            await ctx.report(10, "processing", "working")
            await asyncio.sleep(60)
        finally:
            stopped.set()

    job_id = await enqueue(store)
    async with running(store, handler, db_url=db_url, listen=True, lease_seconds=60) as runner:
        await wait_for(lambda: asyncio.sleep(0, result=job_id in runner.in_flight))
        await wait_for(lambda: asyncio.sleep(0, result=runner.listener_state == "listening"))
        await store.request_cancel(job_id)
        # NOTIFY wakes the heartbeat: without it the request would be seen at the next beat,
        # a third of the 60 s lease away, long after this deadline
        await asyncio.wait_for(stopped.wait(), 5)
        r = await status_is(store, job_id, "cancelled", timeout=5)
    assert r["attempts"] == 1 and r["completed_at"] is not None
    assert runner.counters.cancelled == 1


async def test_cancel_reaches_a_running_job_without_notify(memory_store):
    async def handler(job, ctx):
        await asyncio.sleep(60)

    job_id = await enqueue(memory_store)
    async with running(memory_store, handler, lease_seconds=3) as runner:
        await wait_for(lambda: asyncio.sleep(0, result=job_id in runner.in_flight))
        await memory_store.request_cancel(job_id)
        await status_is(memory_store, job_id, "cancelled", timeout=5)


async def test_a_pending_job_cancelled_before_it_starts_ends_cancelled(memory_store):
    job_id = await enqueue(memory_store)
    await memory_store.request_cancel(job_id)
    async with running(memory_store, scripted):
        r = await status_is(memory_store, job_id, "cancelled")
    assert (r["attempts"], r["started_at"]) == (0, None)


async def test_job_timeout_fails_the_job(memory_store):
    job_id = await enqueue(memory_store, {"sleep": 30})
    async with running(memory_store, scripted, job_timeout=1):
        r = await status_is(memory_store, job_id, "failed", timeout=10)
    assert "JOB_TIMEOUT" in r["error"] and r["attempts"] == 1


async def test_lost_lease_stops_the_handler_and_writes_nothing(memory_store):
    stopped = asyncio.Event()

    async def handler(job, ctx):
        try:
            await asyncio.sleep(60)
        finally:
            stopped.set()

    job_id = await enqueue(memory_store)
    async with running(memory_store, handler, lease_seconds=2) as runner:
        await wait_for(lambda: asyncio.sleep(0, result=job_id in runner.in_flight))
        # another replica rescued and re-claimed the job: the lease token changed under us
        row = memory_store.rows[job_id]
        row.lease_token, row.worker_id, row.message = uuid.uuid4(), "other", "theirs"
        # the other replica's lease is fresh: maintenance must not rescue it meanwhile
        row.heartbeat_at = memory_store.clock() + timedelta(hours=1)
        await asyncio.wait_for(stopped.wait(), 5)
        await wait_for(lambda: asyncio.sleep(0, result=job_id not in runner.in_flight))
    r = await memory_store.get(job_id)
    assert (r["status"], r["worker_id"], r["message"]) == ("processing", "other", "theirs")


async def test_shutdown_lets_short_jobs_finish(memory_store):
    job_id = await enqueue(memory_store, {"sleep": 0.5})
    async with running(memory_store, scripted, shutdown_grace=10) as runner:
        await wait_for(lambda: asyncio.sleep(0, result=job_id in runner.in_flight))
    r = await memory_store.get(job_id)
    assert r["status"] == "completed"


async def test_shutdown_hands_unfinished_jobs_back(memory_store):
    job_id = await enqueue(memory_store, {"sleep": 60})
    async with running(memory_store, scripted, shutdown_grace=0.5) as runner:
        await wait_for(lambda: asyncio.sleep(0, result=job_id in runner.in_flight))
    # handed back after the 0.5 s grace: a shutdown that waited for the 60 s job would have
    # left it completed, not pending
    r = await memory_store.get(job_id)
    assert (r["status"], r["attempts"], r["worker_id"]) == ("pending", 0, None)


async def test_a_second_stop_signal_hands_running_jobs_back_at_once(memory_store):
    """The first Ctrl-C gives running jobs SHUTDOWN_GRACE (here 120 s, far past the helper's
    30 s wait for the runner to end); the second ends the grace period there and then."""
    job_id = await enqueue(memory_store, {"sleep": 60})
    async with running(memory_store, scripted, shutdown_grace=120) as runner:
        await wait_for(lambda: asyncio.sleep(0, result=job_id in runner.in_flight))
        runner.on_stop_signal()
        assert runner.draining and job_id in runner.in_flight
        runner.on_stop_signal()
    r = await memory_store.get(job_id)
    assert (r["status"], r["attempts"], r["worker_id"]) == ("pending", 0, None)


async def test_notify_wakes_an_idle_worker_long_before_the_poll(store, db_url):
    watch = ClaimWatch(store)
    async with running(
        watch, scripted, db_url=db_url, listen=True, poll_interval_ms=60_000
    ) as runner:
        await wait_for(lambda: asyncio.sleep(0, result=runner.listener_state == "listening"))
        await watch.idle(runner)  # the listener's catch-up wake-up used: only a NOTIFY now
        job_id = await enqueue(store)
        # the poll is 60 s away: only the NOTIFY can start the job before this deadline
        r = await status_is(store, job_id, "completed", timeout=5)
    assert r["attempts"] == 1


async def test_polling_alone_keeps_the_queue_moving(memory_store):
    async with running(memory_store, scripted, listen=False, poll_interval_ms=100):
        job_id = await enqueue(memory_store)
        await status_is(memory_store, job_id, "completed", timeout=5)


async def test_every_log_line_of_a_job_carries_its_id(memory_store):
    out = io.StringIO()
    worker_log.configure("json", stream=out)

    async def handler(job, ctx):
        ctx.log.info("inside_handler")
        raise PermanentError("nope")

    job_id = await enqueue(memory_store)
    try:
        async with running(memory_store, handler):
            await status_is(memory_store, job_id, "failed")
    finally:
        worker_log.configure("console")
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    job_lines = [x for x in lines if x["event"] in {"job_started", "inside_handler", "job_failed"}]
    assert [x["event"] for x in job_lines] == ["job_started", "inside_handler", "job_failed"]
    assert all(x["job_id"] == str(job_id) for x in job_lines)


async def test_a_secret_in_an_exception_never_reaches_the_row(memory_store):
    secret = "sk_live_0123456789abcdef"

    async def handler(job, ctx):
        raise StorageError(f"storage said: invalid key {secret}")

    job_id = await enqueue(memory_store, max_attempts=1)
    async with running(memory_store, handler, webhook_secret=secret):
        row = await status_is(memory_store, job_id, "failed")
    assert secret not in row["error"] and "***" in row["error"]
    assert all(secret not in e["error"] for e in row["errors"])


# --- one job's payload cannot hurt the others of its claim -------------------------------------


async def insert_text(store, payload: str):
    """A payload given as JSON text: Postgres stores what Python's json cannot even write."""
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "insert into video_jobs (payload) values (%s::jsonb) returning id", (payload,)
        )
        row = await cur.fetchone()
    return row["id"]


async def ends(store, *ids, timeout=10.0):
    """The rows' status, attempts, error and started_at once none is pending or processing
    (read without the payload: psycopg's own JSON loader is what these payloads break)."""

    async def check():
        async with store.pool.connection() as conn:
            cur = await conn.execute(
                "select id, status, attempts, error, started_at from video_jobs where id = any(%s)",
                (list(ids),),
            )
            rows = {r["id"]: r for r in await cur.fetchall()}
        unfinished = [r for r in rows.values() if r["status"] in ("pending", "processing")]
        return rows if not unfinished else None

    return await wait_for(check, timeout)


async def test_poisoned_payloads_fail_alone_and_the_rest_of_their_claim_runs(store):
    small = PostgresJobStore(store.pool, max_payload_bytes=8000)
    poisoned = {
        await insert_text(small, "[" * 3000 + "]" * 3000): "payload: is nested more than",
        await insert_text(small, '{"script": ' + "1" * 5000 + "}"): "5000 characters long",
        await insert_text(small, '{"pad": "' + "x" * 9000 + '"}'): (
            "payload: is 9011 bytes; at most 8000 are allowed"
        ),
    }
    innocent = await enqueue(small, {"progress": 50})
    async with running(small, scripted, concurrency=4) as runner:
        rows = await ends(small, innocent, *poisoned)
    assert rows[innocent]["status"] == "completed" and rows[innocent]["attempts"] == 1
    for job_id, words in poisoned.items():
        r = rows[job_id]
        assert (r["status"], r["attempts"]) == ("failed", 1), r
        assert words in r["error"], r["error"]
    # one claim took all four: they share the claim's transaction time
    assert len({r["started_at"] for r in rows.values()}) == 1
    assert runner.db_ok and runner.counters.failed == 3 and runner.counters.processed == 1


# --- a handler that ignores cancellation -------------------------------------------------------


async def test_a_handler_that_ignores_cancellation_keeps_its_slot_and_stops_the_worker(
    memory_store,
):
    release = asyncio.Event()
    started = []

    async def stubborn(job, ctx):
        started.append(job.id)
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    first = await enqueue(memory_store)
    second = await enqueue(memory_store)
    settings = fast_settings(concurrency=1, job_timeout=0.5, abort_wait=0.3)
    runner = Runner(settings, memory_store, stubborn)
    try:
        # run() ends by itself: the replica stops claiming, for its process to be restarted
        await asyncio.wait_for(runner.run(), 20)
        assert runner.stuck == "a job handler ignored cancellation for 0.3 s"
        r = await status_is(memory_store, first, "failed")
        assert r["attempts"] == 1 and "JOB_TIMEOUT" in r["error"]
        assert list(runner.in_flight) == [first]  # its slot stays taken while it runs
        assert started == [first]  # with concurrency 1, nothing else started
        r = await memory_store.get(second)
        assert (r["status"], r["attempts"]) == ("pending", 0)
        site = await serve(create_app(runner.status), 0, host="127.0.0.1")
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{bound_port(site)}/health") as resp,
            ):
                assert resp.status == 503
                body = await resp.json()
        finally:
            await site.cleanup()
        assert body["reason"] == "a job handler ignored cancellation for 0.3 s"
    finally:
        release.set()
    await wait_for(lambda: asyncio.sleep(0, result=not runner.in_flight))  # ended: slot free


async def _logged(store, handler, *, max_attempts: int, until: str) -> list[dict]:
    """The JSON log lines of one job run by `handler` until its row is `until`."""
    out = io.StringIO()
    worker_log.configure("json", stream=out)
    job_id = await enqueue(store, max_attempts=max_attempts)
    try:
        async with running(store, handler):
            await status_is(store, job_id, until, timeout=10)
            await wait_for(lambda: asyncio.sleep(0, result=f'"job_{until}"' in out.getvalue()))
    finally:
        worker_log.configure("console")
    return [json.loads(x) for x in out.getvalue().splitlines() if x.startswith("{")]


async def test_an_expected_retry_logs_one_warning_without_a_traceback(memory_store):
    attempts = 0

    async def handler(job, ctx):
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise DownloadError("clips[0]: the server answered 503 Service Unavailable")

    lines = await _logged(memory_store, handler, max_attempts=3, until="completed")
    events = [(x["event"], x["level"]) for x in lines if x["event"].startswith(("job_", "write"))]
    assert events == [
        ("job_started", "info"),
        ("job_will_retry", "warning"),  # the reason, once; no lease was lost
        ("job_started", "info"),
        ("job_completed", "info"),
    ]
    assert not any("exception" in x for x in lines)  # no traceback for a network hiccup
    assert "503" in next(x for x in lines if x["event"] == "job_will_retry")["error"]


async def test_a_job_that_fails_for_good_is_an_error_and_only_the_unexpected_has_a_traceback(
    memory_store,
):
    async def handler(job, ctx):
        raise RuntimeError("a bug")

    lines = await _logged(memory_store, handler, max_attempts=1, until="failed")
    levels = {x["event"]: x["level"] for x in lines}
    assert levels["job_attempt_failed"] == "error" and levels["job_failed"] == "error"
    assert "Traceback" in next(x for x in lines if x["event"] == "job_attempt_failed")["exception"]
    assert "write_rejected_lease_gone" not in levels and "job_will_retry" not in levels
