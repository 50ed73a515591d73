"""Webhooks for finished jobs, durable on the row: delivered, retried later by any replica,
recovered after a crash, and never able to change the job's status."""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from tests.handlers import scripted
from tests.queue.helpers import fast_settings, running, status_is, wait_for
from worker.webhooks.outbox import MAX_ROUNDS, WebhookOutbox
from worker.webhooks.store import OutboxStore

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@contextlib.asynccontextmanager
async def receiver(answers: list[int]):
    """Answers each POST with the next status in `answers` (the last one repeats)."""
    got: list[tuple[dict, bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.read()))
        status = answers[min(len(got) - 1, len(answers) - 1)]
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", got
    finally:
        await runner.cleanup()


def outbox_for(store, **settings) -> WebhookOutbox:
    s = fast_settings(**{"webhook_secret": SECRET, "allow_private_urls": True, **settings})
    return WebhookOutbox(
        s, OutboxStore(store.pool), round_attempts=1, base_delay=0.01, round_backoff=0.01
    )


async def test_a_finished_job_is_delivered_signed(store):
    async with receiver([200]) as (url, got):
        job_id, _ = await store.enqueue({"script": []}, webhook_url=url)
        outbox = outbox_for(store)
        async with running(store, scripted) as runner:
            runner.on_finished = outbox.on_finished
            await status_is(store, job_id, "completed")
            await wait_for(lambda: asyncio.sleep(0, result=got))
        headers, body = got[0]
        Webhook(SECRET).verify(body, headers)  # raises if the signature is wrong
        event = json.loads(body)
        assert event["type"] == "video_job.completed"
        assert event["data"]["id"] == str(job_id) and event["data"]["status"] == "completed"
        row = await wait_for(lambda: _delivered(store, job_id))
        assert row["webhook_attempts"] == 1 and row["webhook_error"] is None


async def _delivered(store, job_id):
    async with store.pool.connection() as conn:
        cur = await conn.execute("select * from video_jobs where id = %s", (job_id,))
        row = await cur.fetchone()
    return row if row["webhook_delivered_at"] else None


async def test_a_failing_receiver_is_retried_later_with_the_same_id(store):
    async with receiver([500, 500, 204]) as (url, got):
        job_id, _ = await store.enqueue({"script": [{"fail": "bad input"}]}, webhook_url=url)
        outbox = outbox_for(store)
        async with running(store, scripted) as runner:
            runner.on_finished = outbox.on_finished
            row = await status_is(store, job_id, "failed")
            await wait_for(lambda: asyncio.sleep(0, result=len(got) == 1))
        async with store.pool.connection() as conn:
            cur = await conn.execute(
                "select status, webhook_error, webhook_next_at from video_jobs where id = %s",
                (job_id,),
            )
            after = await cur.fetchone()
        assert after["status"] == "failed"  # the receiver never changes the job
        assert "500" in after["webhook_error"] and after["webhook_next_at"] is not None
        for _ in range(2):  # the backoff is tiny here; a sweep on any replica retries
            await wait_for(lambda: _due(store, job_id))
            await outbox.sweep()
        assert len(got) == 3
        assert len({h["webhook-id"] for h, _ in got}) == 1
        assert json.loads(got[-1][1])["type"] == "video_job.failed"
        assert await _delivered(store, job_id)
        assert row["error"] == "bad input"


async def test_a_refused_webhook_address_is_given_up_not_retried(store):
    async with receiver([200]) as (url, got):
        job_id, _ = await store.enqueue({"script": []}, webhook_url=url)
        outbox = outbox_for(store, allow_private_urls=False)  # the guard refuses loopback
        async with running(store, scripted) as runner:
            runner.on_finished = outbox.on_finished
            await status_is(store, job_id, "completed")
            await wait_for(lambda: _webhook_error(store, job_id))
        await outbox.sweep()
        assert got == []  # never sent, in the first round or a later one
        row = await _webhook_error(store, job_id)
        assert row["webhook_error"].startswith("webhook not sent: ")
        assert row["webhook_next_at"] is None and row["webhook_attempts"] == MAX_ROUNDS
        assert not await _due(store, job_id)


async def _webhook_error(store, job_id) -> dict | None:
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "select webhook_error, webhook_next_at, webhook_attempts from video_jobs "
            "where id = %s and webhook_error is not null",
            (job_id,),
        )
        return await cur.fetchone()


async def _due(store, job_id) -> bool:
    return job_id in await OutboxStore(store.pool).due(max_rounds=MAX_ROUNDS)


async def test_a_delivery_lost_in_a_crash_is_recovered_by_the_sweep(store):
    async with receiver([200]) as (url, got):
        async with store.pool.connection() as conn:
            cur = await conn.execute(
                "insert into video_jobs (payload, status, webhook_url, completed_at) values "
                "('{}', 'completed', %s, now() - interval '2 minutes') returning id",
                (url,),
            )
            job_id = (await cur.fetchone())["id"]
        await outbox_for(store).sweep()
        assert len(got) == 1 and await _delivered(store, job_id)
        await outbox_for(store).sweep()
        assert len(got) == 1  # delivered once


async def test_a_cancelled_pending_job_announces_itself(store):
    async with receiver([200]) as (url, got):
        job_id, _ = await store.enqueue({"script": []}, webhook_url=url)
        await store.request_cancel(job_id)
        outbox = outbox_for(store)
        async with running(store, scripted) as runner:
            runner.on_finished = outbox.on_finished
            await status_is(store, job_id, "cancelled")
            await wait_for(lambda: asyncio.sleep(0, result=got))
        assert json.loads(got[0][1])["type"] == "video_job.cancelled"
