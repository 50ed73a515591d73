"""Webhook deliveries for jobs that reached a terminal status, durable across crashes.

Each delivery round is claimed on the job's row (webhook_attempts + 1, webhook_next_at pushed out
as a short lease) so one replica at a time sends it; within a round `sender.deliver` retries
quickly; a failed round schedules the next one with backoff, and any replica's sweep picks it
up. The `webhook-id` is derived from the job and its status, so receivers can drop duplicates.
A failed delivery never changes the job's own status.

The runner calls `on_finished` for every job that ends (it is passed in as a hook, so the queue
does not import this package) and the worker's periodic task calls `sweep`.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from worker.log import get_logger
from worker.retry import exponential
from worker.settings import Settings
from worker.webhooks.events import build_event, message_id
from worker.webhooks.sender import deliver
from worker.webhooks.store import OutboxStore

# Rounds wait 5, 10, 20, 40, 80, 160, 320 min, then 6 h (each jittered down by up to half):
# a receiver may be down for most of a day before the event is given up.
MAX_ROUNDS = 10
ROUND_ATTEMPTS = 3
ROUND_LEASE = 120.0

log = get_logger("video-worker.webhooks")


class FinishedJob(Protocol):
    """What the outbox needs of a job that ended (the queue's `Finished`)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def webhook_url(self) -> str | None: ...


class WebhookOutbox:
    def __init__(
        self,
        settings: Settings,
        store: OutboxStore,
        *,
        round_attempts: int = ROUND_ATTEMPTS,
        base_delay: float = 1.0,
        round_backoff: float = 300.0,
    ) -> None:
        self.settings = settings
        self.store = store
        self.round_attempts = round_attempts
        self.base_delay = base_delay
        self.round_backoff = round_backoff

    async def on_finished(self, finished: FinishedJob) -> None:
        if finished.webhook_url:
            await self.deliver(finished.id)

    async def sweep(self) -> None:
        for job_id in await self.store.due(max_rounds=MAX_ROUNDS):
            await self.deliver(job_id)

    async def deliver(self, job_id: uuid.UUID) -> bool:
        row = await self.store.claim(job_id, lease=ROUND_LEASE, max_rounds=MAX_ROUNDS)
        if row is None:
            return False  # delivered already, not due, or another replica has it
        _, body = build_event(row)
        result = await deliver(
            row["webhook_url"],
            body,
            msg_id=message_id(job_id, row["status"]),
            secret=self.settings.webhook_secret,
            allow_private=self.settings.allow_private_urls,
            attempts=self.round_attempts,
            base_delay=self.base_delay,
        )
        if not result.signed:
            log.warning(
                "webhook_unsigned",
                job_id=str(job_id),
                hint="set WEBHOOK_SECRET so receivers can verify deliveries",
            )
        if result.delivered:
            await self.store.delivered(job_id)
            log.info("webhook_delivered", job_id=str(job_id), attempts=result.attempts)
            return True
        rounds = int(row["webhook_attempts"])
        delay = exponential(rounds, base=self.round_backoff, cap=6 * 3600.0)
        await self.store.failed(
            job_id,
            result.error or "delivery failed",
            delay=delay,
            max_rounds=MAX_ROUNDS,
            final=result.final,
        )
        log.warning(
            "webhook_failed",
            job_id=str(job_id),
            error=result.error,
            round=rounds,
            retry_in=round(delay) if rounds < MAX_ROUNDS and not result.final else None,
            final=result.final,
        )
        return False
