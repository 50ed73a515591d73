"""Sending one delivery round: signed POSTs to a `webhook_url`, retried quickly, never raising.

Decisions where the contract leaves room:

- No WEBHOOK_SECRET: the event is still sent, with `webhook-id` and `webhook-timestamp` but
  no `webhook-signature`. Refusing would lose the event, and sending it unsigned makes no
  receiver less safe: one that verifies rejects it ("missing headers") and so notices the
  missing secret at once, and one that does not verify accepts forged posts either way.
  The result says `signed=False` so the caller can warn.
- Retries: any answer other than 2xx is retried with exponential backoff and jitter (the
  contract, `worker.retry`), as are network errors and timeouts; `Retry-After` is honoured up
  to `max_delay`. Two answers stop at once because repeating the request cannot change them:
  410 Gone (the receiver says the endpoint is gone, as Standard Webhooks recommends) and
  3xx (redirects are never followed, so a redirect cannot reach a private address; the
  error tells the developer to use the final address).
- Targets: `worker.fetch.check_url` refuses non-public hosts and ambiguous host spellings
  up front, and the POST goes through `worker.fetch.make_session`, whose resolver and
  connector check the addresses it connects to (no DNS rebinding, no parser tricks).
  `allow_private` (ALLOW_PRIVATE_URLS) lifts the address checks.
- `deliver` never raises for a failed delivery: a webhook must never change the job's
  status. It returns a `DeliveryResult`; only cancellation propagates. Its retries are one
  round, in this call; the outbox (outbox.py) keeps the delivery on the job's row and runs
  later rounds, so a worker stopped mid-round loses nothing but that round.
- Error strings name the URL without its query string or credentials (signed URLs and
  tokens live there) and never contain the secret: they are built from our own words,
  status codes and exception class names, never from exception text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

import aiohttp

from worker.fetch import (
    UnsafeURLError,
    check_url,
    redact,
    session_scope,
    status_text,
    unsafe_cause,
)
from worker.retry import next_delay
from worker.webhooks.signing import WebhookSecretError, secret_bytes, signature

USER_AGENT = "video-worker"


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
    async with session_scope(
        session,
        allow_private=allow_private,
        connect_timeout=timeout,
        read_timeout=timeout,
        limit=2,
    ) as http:
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
        # the receiver's Retry-After (capped), else backoff with jitter, which spreads the
        # retries of many replicas that failed at once against one receiver
        delay = next_delay(number, outcome.retry_after, base=base, cap=cap, max_retry_after=cap)
        await asyncio.sleep(delay)
    raise AssertionError("unreachable: attempts is at least 1")


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
            headers["webhook-signature"] = signature(self.key, self.msg_id, timestamp, self.body)
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
        answered = f"POST {self.shown}: the receiver answered {status_text(status)}"
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
