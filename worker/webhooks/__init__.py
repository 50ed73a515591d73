"""Webhooks: a signed POST to the job's `webhook_url` when it reaches a terminal status.

Signed per Standard Webhooks (docs/contract.md, `Webhooks`), so a web app can
verify deliveries with any Standard Webhooks or Svix library:

    webhook-id          stable for one event across retries (and across worker restarts,
                        see `message_id`), so receivers can drop duplicates
    webhook-timestamp   unix seconds of this attempt; the signature is recomputed each time
    webhook-signature   "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))

The parts, each a module:

    signing.py   the key (WEBHOOK_SECRET) and the signature
    events.py    the event's type, body and `webhook-id`, from a finished job's row
    sender.py    `deliver`: one round of signed POSTs, retried quickly, through the SSRF guard
    outbox.py    `WebhookOutbox`: durable rounds on the job's row, so a delivery survives a
                 crash or a receiver that is down for hours, and any replica can finish it
    store.py     the outbox's statements (queries.sql) on the `webhook_*` columns of video_jobs

Calls go one way: outbox → sender → signing, events, and the SSRF guard and backoff in
`worker.fetch` and `worker.retry`. Nothing here imports the queue: the runner is handed
`WebhookOutbox.on_finished` as a hook when the worker is wired up (worker/app.py).
"""

from worker.webhooks.events import build_event, message_id
from worker.webhooks.sender import DeliveryResult, deliver
from worker.webhooks.signing import WebhookSecretError, secret_bytes, sign

__all__ = [
    "DeliveryResult",
    "WebhookSecretError",
    "build_event",
    "deliver",
    "message_id",
    "secret_bytes",
    "sign",
]
