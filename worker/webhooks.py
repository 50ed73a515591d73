"""Webhooks: a signed POST to the job's `webhook_url` when it reaches a terminal status.

Signed per Standard Webhooks (shared/spec/video-jobs.md, `Webhooks`), so a web app can
verify deliveries with any Standard Webhooks or Svix library:

    webhook-id          stable for one event across retries (and across worker restarts,
                        see `message_id`), so receivers can drop duplicates
    webhook-timestamp   unix seconds of this attempt; the signature is recomputed each time
    webhook-signature   "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))

Decisions where the contract leaves room:

- No WEBHOOK_SECRET: the event is still sent, with `webhook-id` and `webhook-timestamp` but
  no `webhook-signature`. Refusing would lose the event, and sending it unsigned makes no
  receiver less safe: one that verifies rejects it ("missing headers") and so notices the
  missing secret at once, and one that does not verify accepts forged posts either way.
  The result says `signed=False` so the caller can warn.
- Retries: any answer other than 2xx is retried with exponential backoff and jitter (the
  contract), as are network errors and timeouts; `Retry-After` is honoured up to
  `max_delay`. Two answers stop at once because repeating the request cannot change them:
  410 Gone (the receiver says the endpoint is gone, as Standard Webhooks recommends) and
  3xx (redirects are never followed, so a redirect cannot reach a private address; the
  error tells the developer to use the final address).
- Targets: `worker.fetch.check_url` refuses non-public hosts and ambiguous host spellings
  up front, and the POST goes through `worker.fetch.make_session`, whose resolver and
  connector check the addresses it connects to (no DNS rebinding, no parser tricks).
  `allow_private` (ALLOW_PRIVATE_URLS) lifts the address checks.
- `deliver` never raises for a failed delivery: a webhook must never change the job's
  status. It returns a `DeliveryResult`; only cancellation propagates. Retries live in
  this call only (no outbox): a worker stopped mid-retry drops the remaining attempts.
- Error strings name the URL without its query string or credentials (signed URLs and
  tokens live there) and never contain the secret: they are built from our own words,
  status codes and exception class names, never from exception text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import aiohttp

from worker.fetch import UnsafeURLError, check_url, make_session, redact, unsafe_cause

USER_AGENT = "video-worker"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the key format's prefix, not a key
EVENT_STATUSES = frozenset({"completed", "failed", "cancelled"})
DATA_KEYS = ("video_url", "thumbnail_url", "result", "error")


class WebhookSecretError(ValueError):
    """WEBHOOK_SECRET cannot be used as a key; the message never contains the secret."""


@dataclass(frozen=True)
class DeliveryResult:
    """How a delivery ended: `attempts` POSTs were made (0 when refused before sending)."""

    delivered: bool
    attempts: int
    status: int | None = None  # the last HTTP status, None when no answer came
    error: str | None = None  # why the last attempt failed; None when delivered
    signed: bool = True
    final: bool = False  # no later round can deliver it (refused address, bad secret, 410, 3xx)


@dataclass(frozen=True)
class _Attempt:
    """One POST's outcome and whether another try could change it."""

    status: int | None
    error: str | None
    retry: bool = True
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# --- signing ------------------------------------------------------------------------------


def secret_bytes(secret: str) -> bytes:
    """The HMAC key: `whsec_` + base64 is decoded (as Svix keys are), raw text is UTF-8."""
    if not secret:
        raise WebhookSecretError("WEBHOOK_SECRET is empty")
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode("utf-8")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        # Padding is often dropped when keys are copied around; the libraries accept that.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSecretError(
            "WEBHOOK_SECRET starts with whsec_ but the rest is not valid base64"
        ) from None
    if not key:
        raise WebhookSecretError("WEBHOOK_SECRET has nothing after whsec_")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one attempt: `v1,` + base64 HMAC-SHA256."""
    return _signature(secret_bytes(secret), msg_id, timestamp, body)


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


# --- events -------------------------------------------------------------------------------


def message_id(job_id: uuid.UUID | str, status: str) -> str:
    """A `webhook-id` derived from the event itself, so a resend after a restart keeps it."""
    return f"msg_{uuid.UUID(str(job_id)).hex}_{status}"


def build_event(row: Mapping[str, Any], *, now: datetime | None = None) -> tuple[str, bytes]:
    """The event type and JSON body for a terminal job row.

    `timestamp` is when the job finished (`completed_at`), else `now`, so every retry and
    resend of the event carries the same body. Raises ValueError for a non-terminal status:
    that is a caller's bug, not a delivery failure.
    """
    status = _status_text(row["status"])
    if status not in EVENT_STATUSES:
        raise ValueError(f"no webhook event for status {status!r}")
    event_type = f"video_job.{status}"
    when = row.get("completed_at") or now or datetime.now(UTC)
    data: dict[str, Any] = {"id": str(row["id"]), "status": status}
    data.update({key: row.get(key) for key in DATA_KEYS})
    event = {"type": event_type, "timestamp": _iso_utc(when), "data": data}
    body = json.dumps(event, separators=(",", ":"), default=_json_default)
    return event_type, body.encode("utf-8")


def _status_text(status: object) -> str:
    """A Status enum or its text, as the text (`Status.COMPLETED` → "completed")."""
    if isinstance(status, enum.Enum):
        return str(status.value)
    return str(status)


def _iso_utc(when: datetime) -> str:
    """ISO 8601 in UTC with a `Z`; a naive datetime is taken as UTC (Postgres timestamptz)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_default(value: object) -> object:
    """Values a row's `result` may hold that json cannot write, as JSON-friendly values."""
    if isinstance(value, datetime):
        return _iso_utc(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, enum.Enum):
        return value.value
    # UUID, date, Path…: better sent as a string than lost to a TypeError.
    return str(value)


# --- delivery -----------------------------------------------------------------------------


async def deliver(
    url: str,
    body: bytes,
    *,
    msg_id: str,
    secret: str | None,
    allow_private: bool,
    session: aiohttp.ClientSession | None = None,
    attempts: int = 5,
    base_delay: float = 2.0,
    max_delay: float = 60.0,
    timeout: float = 10.0,  # noqa: ASYNC109 - per attempt; not a deadline for the call
    clock: Callable[[], float] = time.time,
) -> DeliveryResult:
    """POST `body` to `url`, signed, retrying until a 2xx or `attempts` run out.

    Never raises for a failed delivery (see the module docstring). Pass a `session` from
    `worker.fetch.make_session` to share connections; without one a guarded session is
    made for this call. `clock` gives the unix time each attempt is stamped with.
    """
    try:
        key = secret_bytes(secret) if secret else None
    except WebhookSecretError as exc:
        return DeliveryResult(False, 0, error=str(exc), signed=False, final=True)
    refusal = await _refusal(url, allow_private)
    if refusal is not None:
        return DeliveryResult(False, 0, error=refusal, signed=key is not None, final=True)
    post = _Poster(url, body, msg_id, key, timeout, clock)
    async with _session_scope(session, allow_private, timeout) as http:
        return await _retrying(http, post, max(attempts, 1), base_delay, max_delay)


async def _refusal(url: str, allow_private: bool) -> str | None:
    """Why `url` may not be posted to, or None. A name that does not resolve yet is let
    through: the attempts report it, and retry it, as a network error."""
    try:
        await check_url(url, allow_private=allow_private)
    except UnsafeURLError as exc:
        return f"webhook not sent: {exc}"
    except OSError:
        return None
    return None


@contextlib.asynccontextmanager
async def _session_scope(
    session: aiohttp.ClientSession | None, allow_private: bool, seconds: float
) -> AsyncIterator[aiohttp.ClientSession]:
    """Use the caller's session, or a guarded one that lives for this delivery only."""
    if session is not None:
        yield session
        return
    own = make_session(
        allow_private=allow_private, connect_timeout=seconds, read_timeout=seconds, limit=2
    )
    async with own:
        yield own


async def _retrying(
    http: aiohttp.ClientSession, post: _Poster, attempts: int, base: float, cap: float
) -> DeliveryResult:
    """Attempt until delivered, a final answer, or the last attempt; sleep between tries."""
    for number in range(1, attempts + 1):
        outcome = await post.once(http)
        if outcome.ok:
            return DeliveryResult(True, number, outcome.status, signed=post.signed)
        if not outcome.retry or number == attempts:
            return DeliveryResult(
                False,
                number,
                outcome.status,
                outcome.error,
                signed=post.signed,
                final=not outcome.retry,
            )
        await asyncio.sleep(_delay(number, outcome.retry_after, base, cap))
    raise AssertionError("unreachable: attempts is at least 1")


def _delay(number: int, retry_after: float | None, base: float, cap: float) -> float:
    """The receiver's Retry-After (capped), else exponential backoff with jitter.

    Jitter spreads retries from many replicas that failed at once against one receiver.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    ceiling = min(cap, base * 2 ** (number - 1))
    return random.uniform(ceiling / 2, ceiling)


class _Poster:
    """Makes one signed POST at a time; each call stamps and signs afresh."""

    def __init__(
        self,
        url: str,
        body: bytes,
        msg_id: str,
        key: bytes | None,
        timeout: float,
        clock: Callable[[], float],
    ) -> None:
        self.url = url
        self.shown = redact(url)
        self.body = body
        self.msg_id = msg_id
        self.key = key
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.seconds = timeout
        self.clock = clock

    @property
    def signed(self) -> bool:
        return self.key is not None

    def headers(self) -> dict[str, str]:
        """This attempt's headers; the timestamp is now, so the signature is new too."""
        timestamp = int(self.clock())
        headers = {
            "webhook-id": self.msg_id,
            "webhook-timestamp": str(timestamp),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        if self.key is not None:
            headers["webhook-signature"] = _signature(self.key, self.msg_id, timestamp, self.body)
        return headers

    async def once(self, http: aiohttp.ClientSession) -> _Attempt:
        """One POST, redirects not followed; every failure becomes an `_Attempt`."""
        try:
            async with http.post(
                self.url,
                data=self.body,
                headers=self.headers(),
                allow_redirects=False,
                timeout=self.timeout,
            ) as resp:
                return self._judge(resp)
        except Exception as exc:  # any failure is one failed attempt, never an escape
            refusal = unsafe_cause(exc)  # the guard refused the address, maybe wrapped
            if refusal is not None:
                return _Attempt(None, f"webhook not sent: {refusal}", retry=False)
            return _Attempt(None, f"POST {self.shown}: {_network_problem(exc, self.seconds)}")

    def _judge(self, resp: aiohttp.ClientResponse) -> _Attempt:
        """2xx delivers; 410 and 3xx are final; anything else is worth another try."""
        status = resp.status
        if 200 <= status < 300:
            return _Attempt(status, None)
        answered = f"POST {self.shown}: the receiver answered {_status_phrase(status)}"
        if status == HTTPStatus.GONE:
            return _Attempt(status, f"{answered}; not retried (the endpoint is gone)", False)
        if 300 <= status < 400:
            target = redact(resp.headers.get("Location", "")) or "an unknown address"
            return _Attempt(
                status,
                f"{answered} to {target}; webhooks do not follow redirects, "
                "so set webhook_url to the final address",
                retry=False,
            )
        return _Attempt(status, answered, retry_after=_retry_after(resp))


def _status_phrase(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    """Delta-seconds from Retry-After on 429/503; HTTP dates are ignored (backoff applies)."""
    value = resp.headers.get("Retry-After", "").strip()
    if resp.status in (429, 503) and value.isdigit():
        return float(value)
    return None


def _network_problem(exc: BaseException, seconds: float) -> str:
    """A few words about a failed connection, from the exception's class, never its text
    (which can hold the full URL)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {seconds:g} s"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name could not be resolved"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"the receiver could not be reached ({type(exc).__name__})"
    if isinstance(exc, aiohttp.ClientError | OSError):
        return f"the connection failed ({type(exc).__name__})"
    return f"an unexpected error ({type(exc).__name__})"
