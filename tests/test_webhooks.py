"""Webhooks: signatures checked by the standardwebhooks library, deliveries to a real receiver.

The receiver is an aiohttp server on 127.0.0.1 that answers from a script of statuses and
records every request, so each test sees exactly what a web app would receive.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from worker.queue.models import Status
from worker.webhooks import (
    DeliveryResult,
    WebhookSecretError,
    build_event,
    deliver,
    message_id,
    secret_bytes,
    sign,
)

KEY = b"0123456789abcdef0123456789abcdef"
WHSEC = "whsec_" + base64.b64encode(KEY).decode()
RAW_SECRET = "correct horse battery stäple"
JOB_ID = uuid.UUID("3f2b8c1e-0000-4000-8000-000000000042")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    """A webhook endpoint: answers `script` in order, then `then`; records every request."""

    server: TestServer
    script: list[int] = field(default_factory=list)
    then: int = 200
    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook", query: str = "") -> str:
        return str(self.server.make_url(path)) + (f"?{query}" if query else "")

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(dict(request.headers), await request.read(), request.path))
        if request.path == "/slow":
            await asyncio.wait_for(self.release.wait(), timeout=30)
        if request.path == "/moved":
            raise web.HTTPTemporaryRedirect(location=self.url("/hook", "token=REDIRECTSECRET"))
        status = self.script.pop(0) if self.script else self.then
        headers = {"Retry-After": "0"} if status == 429 else None
        return web.Response(status=status, text="answer", headers=headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = web.Application()
    server = TestServer(app, host="127.0.0.1")
    recv = Receiver(server)
    app.router.add_route("POST", "/{tail:.*}", recv.handle)
    await server.start_server()
    try:
        yield recv
    finally:
        recv.release.set()  # let a held /slow handler finish, so shutdown is prompt
        await server.close()


def _row(status: object = "completed", **extra: object) -> dict[str, object]:
    return {
        "id": JOB_ID,
        "status": status,
        "video_url": "https://cdn.example.com/v.mp4",
        "thumbnail_url": "https://cdn.example.com/v.jpg",
        "result": {"bytes": 123, "duration": 6.5, "join": "copy"},
        "error": None,
        "completed_at": datetime(2024, 5, 1, 12, 30, 5, 250000, tzinfo=UTC),
        **extra,
    }


def _ticking_clock(step: float = 1.0) -> Callable[[], float]:
    """Real time, one `step` further on each call: every attempt gets its own timestamp."""
    start = time.time()
    calls = iter(range(1000))
    return lambda: start + step * next(calls)


async def _send(
    url: str,
    body: bytes,
    *,
    msg_id: str,
    secret: str | None,
    allow_private: bool,
    attempts: int = 5,
    base_delay: float = 0.01,
    max_delay: float = 0.05,
    timeout: float = 2.0,
    clock: Callable[[], float] = time.time,
) -> DeliveryResult:
    """`deliver` with backoff short enough that a whole retry ladder takes milliseconds."""
    return await deliver(
        url,
        body,
        msg_id=msg_id,
        secret=secret,
        allow_private=allow_private,
        attempts=attempts,
        base_delay=base_delay,
        max_delay=max_delay,
        timeout=timeout,
        clock=clock,
    )


# --- signing --------------------------------------------------------------------------------


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # The test vector published with the Standard Webhooks reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


@pytest.mark.parametrize(("secret", "verifier_key"), [(WHSEC, WHSEC), (RAW_SECRET, None)])
def test_signature_verifies_with_the_standardwebhooks_library(
    secret: str, verifier_key: str | None
) -> None:
    # A raw-text secret is used as its UTF-8 bytes; the library takes such a key as bytes.
    webhook = Webhook(verifier_key or RAW_SECRET.encode("utf-8"))
    _, body = build_event(_row())
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, "msg_1", now, body),
    }
    assert webhook.verify(body, headers)["data"]["id"] == str(JOB_ID)
    tampered = body.replace(b"completed", b"cancelled")
    with pytest.raises(WebhookVerificationError):
        webhook.verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(b"some other key").verify(body, headers)


def test_secret_bytes() -> None:
    assert secret_bytes(WHSEC) == KEY
    assert secret_bytes(WHSEC.rstrip("=")) == KEY  # padding dropped in copy-paste
    assert secret_bytes(RAW_SECRET) == RAW_SECRET.encode("utf-8")
    assert secret_bytes("whsec") == b"whsec"  # no underscore: raw text, not a whsec_ key


@pytest.mark.parametrize("bad", ["", "whsec_", "whsec_not base64!!", "whsec_%%%%"])
def test_unusable_secret_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(WebhookSecretError) as caught:
        secret_bytes(bad)
    assert "WEBHOOK_SECRET" in str(caught.value)
    if bad.removeprefix("whsec_"):
        assert bad.removeprefix("whsec_") not in str(caught.value)


# --- events ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED, "cancelled"])
def test_event_type_and_body_shape(status: object) -> None:
    row = _row(status, error="clips[1]: the URL returned 404 Not Found", user_id=uuid.uuid4())
    event_type, body = build_event(row)
    text = str(status.value if isinstance(status, Status) else status)
    assert event_type == f"video_job.{text}"
    event = json.loads(body)
    assert set(event) == {"type", "timestamp", "data"}
    assert event["type"] == event_type
    assert event["timestamp"] == "2024-05-01T12:30:05.250000Z"
    assert datetime.fromisoformat(event["timestamp"]).utcoffset() == timedelta(0)
    assert event["data"] == {
        "id": str(JOB_ID),
        "status": text,
        "video_url": "https://cdn.example.com/v.mp4",
        "thumbnail_url": "https://cdn.example.com/v.jpg",
        "result": {"bytes": 123, "duration": 6.5, "join": "copy"},
        "error": "clips[1]: the URL returned 404 Not Found",
    }


def test_event_serialises_uuids_datetimes_and_nulls_as_json() -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5)  # a naive time from the database is UTC
    row = _row(
        "failed",
        video_url=None,
        thumbnail_url=None,
        result=None,
        completed_at=naive,
        error="payload.clips: must list at least one clip",
    )
    event = json.loads(build_event(row)[1])
    assert event["timestamp"] == "2024-01-02T03:04:05Z"
    assert event["data"]["video_url"] is None and event["data"]["result"] is None
    nested = {"source": uuid.UUID(int=7), "at": naive, "fps": Decimal("29.97")}
    data = json.loads(build_event(_row(result=nested))[1])["data"]
    assert data["result"] == {
        "source": str(uuid.UUID(int=7)),
        "at": "2024-01-02T03:04:05Z",
        "fps": 29.97,
    }


def test_event_without_completed_at_is_stamped_now() -> None:
    row = _row()
    del row["completed_at"]
    before = datetime.now(UTC)
    stamp = datetime.fromisoformat(json.loads(build_event(row)[1])["timestamp"])
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(UTC)


@pytest.mark.parametrize("status", ["pending", "processing", Status.PROCESSING])
def test_no_event_for_a_non_terminal_status(status: object) -> None:
    with pytest.raises(ValueError, match="no webhook event"):
        build_event(_row(status))


def test_message_id_is_stable_per_event() -> None:
    assert message_id(JOB_ID, "completed") == message_id(str(JOB_ID), "completed")
    assert message_id(JOB_ID, "completed") != message_id(JOB_ID, "failed")


# --- delivery -------------------------------------------------------------------------------


async def test_retried_until_delivered_with_one_id_and_fresh_signatures(
    receiver: Receiver,
) -> None:
    receiver.script = [500, 500]
    _, body = build_event(_row())
    result = await _send(
        receiver.url(),
        body,
        msg_id="msg_abc",
        secret=WHSEC,
        allow_private=True,
        attempts=5,
        clock=_ticking_clock(),
    )
    assert result == DeliveryResult(delivered=True, attempts=3, status=200, signed=True)
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {"msg_abc"}
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
    assert stamps == sorted(set(stamps))  # a new timestamp on every attempt
    assert len({r.headers["webhook-signature"] for r in receiver.requests}) == 3
    for request in receiver.requests:
        assert request.body == body
        assert Webhook(WHSEC).verify(request.body, request.headers)["type"] == (
            "video_job.completed"
        )
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["User-Agent"] == "video-worker"


async def test_raw_text_secret_delivery_verifies(receiver: Receiver) -> None:
    _, body = build_event(_row("failed"))
    result = await _send(
        receiver.url(), body, msg_id="msg_raw", secret=RAW_SECRET, allow_private=True
    )
    assert result.delivered and result.attempts == 1
    (request,) = receiver.requests
    event = Webhook(RAW_SECRET.encode("utf-8")).verify(request.body, request.headers)
    assert event["type"] == "video_job.failed"


async def test_always_failing_receiver_gives_up_without_raising(receiver: Receiver) -> None:
    receiver.then = 503
    result = await _send(
        receiver.url(query="token=QUERYSECRET"),
        b"{}",
        msg_id="m",
        secret=WHSEC,
        allow_private=True,
        attempts=4,
    )
    assert not result.delivered
    assert result.attempts == 4 and len(receiver.requests) == 4
    assert result.status == 503
    assert result.error is not None and "503 Service Unavailable" in result.error
    assert "QUERYSECRET" not in result.error and "token" not in result.error
    assert WHSEC not in result.error and KEY.decode() not in result.error


@pytest.mark.parametrize("status", [400, 401, 404, 429])
async def test_any_non_2xx_is_retried(receiver: Receiver, status: int) -> None:
    receiver.script = [status]
    result = await _send(receiver.url(), b"{}", msg_id="m", secret=WHSEC, allow_private=True)
    assert (result.delivered, result.attempts) == (True, 2)


async def test_gone_stops_at_once(receiver: Receiver) -> None:
    receiver.then = 410
    result = await _send(receiver.url(), b"{}", msg_id="m", secret=WHSEC, allow_private=True)
    assert (result.delivered, result.attempts, result.status) == (False, 1, 410)
    assert result.error is not None and "410 Gone" in result.error


async def test_redirects_are_not_followed(receiver: Receiver) -> None:
    result = await _send(
        receiver.url("/moved"), b"{}", msg_id="m", secret=WHSEC, allow_private=True
    )
    assert (result.delivered, result.attempts, result.status) == (False, 1, 307)
    assert [r.path for r in receiver.requests] == ["/moved"]  # /hook never reached
    assert result.error is not None and "set webhook_url to the final address" in result.error
    assert "REDIRECTSECRET" not in result.error


async def test_timeout_is_a_failed_attempt(receiver: Receiver) -> None:
    result = await _send(
        receiver.url("/slow"),
        b"{}",
        msg_id="m",
        secret=WHSEC,
        allow_private=True,
        attempts=2,
        base_delay=0.01,
        max_delay=0.05,
        timeout=0.3,
    )
    assert (result.delivered, result.attempts, result.status) == (False, 2, None)
    assert result.error is not None and "no answer within 0.3 s" in result.error
    assert len(receiver.requests) == 2


async def test_unreachable_receiver_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nobody listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await _send(
        f"http://127.0.0.1:{port}/hook?sig=QUERYSECRET",
        b"{}",
        msg_id="m",
        secret=WHSEC,
        allow_private=True,
        attempts=3,
    )
    assert (result.delivered, result.attempts, result.status) == (False, 3, None)
    assert result.error is not None and "could not be reached" in result.error
    assert "QUERYSECRET" not in result.error


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_private_target_refused_unless_allowed(receiver: Receiver, host: str) -> None:
    url = receiver.url(query="token=QUERYSECRET").replace("127.0.0.1", host)
    refused = await _send(url, b"{}", msg_id="m", secret=WHSEC, allow_private=False)
    assert (refused.delivered, refused.attempts) == (False, 0)
    assert refused.error is not None and "loopback" in refused.error
    assert "QUERYSECRET" not in refused.error
    assert receiver.requests == []
    allowed = await _send(url, b"{}", msg_id="m", secret=WHSEC, allow_private=True)
    assert allowed.delivered and len(receiver.requests) == 1


async def test_non_http_target_refused() -> None:
    result = await _send("file:///etc/passwd", b"{}", msg_id="m", secret=WHSEC, allow_private=True)
    assert (result.delivered, result.attempts) == (False, 0)


async def test_without_a_secret_the_event_is_sent_unsigned(receiver: Receiver) -> None:
    result = await _send(
        receiver.url(), b'{"a":1}', msg_id="msg_u", secret=None, allow_private=True
    )
    assert result.delivered and result.signed is False
    (request,) = receiver.requests
    assert request.headers["webhook-id"] == "msg_u"
    assert "webhook-timestamp" in request.headers
    assert "webhook-signature" not in request.headers
    with pytest.raises(WebhookVerificationError):  # a verifying receiver notices at once
        Webhook(WHSEC).verify(request.body, request.headers)


async def test_invalid_secret_fails_the_delivery_not_the_caller(receiver: Receiver) -> None:
    result = await _send(
        receiver.url(), b"{}", msg_id="m", secret="whsec_***bad***", allow_private=True
    )
    assert (result.delivered, result.attempts) == (False, 0)
    assert result.error is not None and "***bad***" not in result.error
    assert receiver.requests == []
