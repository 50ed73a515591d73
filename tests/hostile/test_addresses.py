"""Hostile addresses, end to end: a job whose URL spells loopback some other way fails at once
(attempts 1) with the guard's sentence naming the input, the loopback server it points at
gets no request, and the worker then completes a good job.

Every URL here can only mean 127.0.0.1 or ::1, where the only listener is the case's own
server. The metadata service and private ranges are refused by the same functions; their
spellings are asserted without a socket in tests/fetch/test_fetch_hostname.py.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from aiohttp import web

from tests.hostile.harness import (
    GOOD_KEY,
    TERMINAL,
    Expect,
    LoopbackServer,
    check_good,
    check_row,
    corpus_settings,
    corpus_worker,
    run_case,
)
from tests.queue.helpers import status_is
from worker.webhooks.outbox import WebhookOutbox
from worker.webhooks.store import OutboxStore

NOT_RETRIED = ("gave up", "connection failed", "could not be reached", "SECRET")
UNICODE = "non-ASCII digits or dots"
NUMERIC = "not written as a plain IPv4 address"
LOOPBACK = "is a loopback address"

# (host as typed in the URL, words the row's error must hold after "clips[0]: ")
STRAIGHT = [
    ("127\u30020\u30020\u30021", ("the URL's host 127\u30020\u30020\u30021 ", UNICODE, "U+3002")),
    ("127\uff0e0\uff0e0\uff0e1", (UNICODE, "U+FF0E")),
    ("127\uff610\uff610\uff611", (UNICODE, "U+FF61")),
    ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", (UNICODE, "U+FF11")),
    ("127.0.0.\uff11", (UNICODE,)),
    ("\U0001d7cf\U0001d7d0\U0001d7d5.0.0.1", (UNICODE,)),
    ("\u0661\u0662\u0667.\u0660.\u0660.\u0661", (UNICODE,)),
    ("127.1", ("the URL's host 127.1 ", NUMERIC)),
    ("2130706433", (NUMERIC,)),
    ("017700000001", (NUMERIC,)),
    ("0177.0.0.1", (NUMERIC,)),
    ("0x7f.0.0.1", (NUMERIC,)),
    ("0x7f000001", (NUMERIC,)),
    ("0x7f.1", (NUMERIC,)),
    ("127.0.0.1.", (NUMERIC,)),
    ("127.0.0.1", ("the URL's host 127.0.0.1 ", LOOPBACK, "ALLOW_PRIVATE_URLS=true")),
    ("[::1]", ("the URL's host ::1 ", LOOPBACK)),
    ("[0:0:0:0:0:0:0:1]", ("the URL's host ::1 ", LOOPBACK)),
    ("[::ffff:127.0.0.1]", (LOOPBACK, "inside an IPv6 address")),
    ("[::1%25lo]", ("zone id",)),
    ("localhost", ("the URL's host localhost (", LOOPBACK)),
    ("\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3", ("localhost (", LOOPBACK)),
]


@pytest.mark.parametrize(("host", "words"), STRAIGHT)
async def test_a_clip_at_a_loopback_spelling_fails_at_once(store, tmp_path, good_clip, host, words):
    server = LoopbackServer({"/a.mp4": good_clip})
    async with server.serving():
        settings = corpus_settings(tmp_path)
        payload = {"clips": [{"url": f"http://{host}:{server.port}/a.mp4?token=SECRET"}]}
        expect = Expect(error=("clips[0]: the URL's host ", *words), not_in_error=NOT_RETRIED)
        await run_case(store, settings, good_clip, payload, expect)
    assert server.requests == []


def _storage_clip(settings) -> dict:
    return {"url": f"storage://{settings.storage_bucket}/{GOOD_KEY}"}


# (where the hostile URL goes in the payload, host, the input the error must name)
OTHER_INPUTS = [
    ("voice", "0x7f.0.0.1", "clips[0].voice_url: "),
    ("audio", "[::ffff:127.0.0.1]", "audio: "),
    ("second clip", "2130706433", "clips[1]: "),
    ("audio", "127\uff0e0\uff0e0\uff0e1", "audio: "),
]


@pytest.mark.parametrize(("where", "host", "source"), OTHER_INPUTS)
async def test_voice_overs_music_and_later_clips_are_guarded_too(
    store, tmp_path, good_clip, where, host, source
):
    server = LoopbackServer({"/x": good_clip})
    async with server.serving():
        settings = corpus_settings(tmp_path)
        url = f"http://{host}:{server.port}/x"
        clip = _storage_clip(settings)
        payload: dict = {"clips": [clip]}
        if where == "voice":
            clip["voice_url"] = url
        elif where == "audio":
            payload["audio"] = {"url": url}
        else:
            payload["clips"].append({"url": url})
        expect = Expect(error=(f"{source}the URL's host ",), not_in_error=NOT_RETRIED)
        await run_case(store, settings, good_clip, payload, expect)
    assert server.requests == []


def _redirect(to: str) -> Callable[[web.Request], web.Response]:
    """A Location exactly as typed (web.HTTPFound would normalise its host)."""
    return lambda _request: web.Response(status=302, headers={"Location": to})


# Redirect hops, with ALLOW_PRIVATE_URLS on so the first hop may reach the case's server:
# the spelling rules hold whatever that setting says. (host in the Location, words)
REDIRECTED = [
    ("127\u30020\u30020\u30021", ("redirected to an unusable address", UNICODE)),
    ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", ("redirected to an unusable address", UNICODE)),
    ("127.1", ("the URL's host 127.1 ", NUMERIC)),
    ("2130706433", (NUMERIC,)),
    ("0177.0.0.1", (NUMERIC,)),
    ("0x7f.0.0.1", (NUMERIC,)),
    ("127.0.0.1.", (NUMERIC,)),
    ("[::1%25lo]", ("zone id",)),
]


@pytest.mark.parametrize(("host", "words"), REDIRECTED)
async def test_a_redirect_to_a_refused_spelling_fails_at_once(
    store, tmp_path, good_clip, host, words
):
    server = LoopbackServer({"/a.mp4": good_clip})
    async with server.serving():
        server.routes["/start"] = _redirect(f"http://{host}:{server.port}/a.mp4")
        settings = corpus_settings(tmp_path, allow_private_urls=True)
        payload = {"clips": [{"url": f"{server.base}/start"}]}
        expect = Expect(error=("clips[0]: ", *words), not_in_error=NOT_RETRIED)
        await run_case(store, settings, good_clip, payload, expect)
    assert server.requests == ["/start"]  # the hop was refused; /a.mp4 was never asked for


WEBHOOKS = [
    ("127\u30020\u30020\u30021", UNICODE),
    ("127.1", NUMERIC),
    ("localhost", LOOPBACK),
]


@pytest.mark.parametrize(("host", "words"), WEBHOOKS)
async def test_a_webhook_to_a_loopback_spelling_is_not_sent(
    store, db_url, tmp_path, good_clip, host, words
):
    """The job itself completes (a webhook never changes it); the delivery is refused."""
    server = LoopbackServer({"/hook": 200})
    async with server.serving():
        settings = corpus_settings(tmp_path)
        hook = f"http://{host}:{server.port}/hook?token=SECRET"
        row = await _completed_with_webhook(store, settings, good_clip, hook)
        outbox = WebhookOutbox(settings, OutboxStore(store.pool), round_attempts=2, base_delay=0.01)
        assert await outbox.deliver(row["id"]) is False
    error = await _webhook_error(db_url, row["id"])
    assert error.startswith("webhook not sent: the URL's host ") and words in error
    assert "SECRET" not in error
    assert server.requests == []


async def _completed_with_webhook(store, settings, good_clip, hook: str) -> dict:
    async with corpus_worker(store, settings, good_clip):
        payload = {"clips": [_storage_clip(settings)]}
        job_id, _ = await store.enqueue(payload, webhook_url=hook)
        row = await status_is(store, job_id, *TERMINAL, timeout=60)
        check_row(row, Expect(status="completed", attempts=1))
        await check_good(store, settings)
    return row


async def _webhook_error(db_url: str, job_id) -> str:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "select webhook_error from public.video_jobs where id = %s", (job_id,)
        )
        found = await cur.fetchone()
    assert found is not None and found[0] is not None
    return str(found[0])
