"""Hostile inputs the worker refused before the corpus existed: each still ends in a clear
permanent error on its row, and the worker then completes a good job."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiohttp import web

from tests.hostile.harness import Expect, LoopbackServer, corpus_settings, run_case

HLS = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:10,\nfile:///etc/passwd\n"
CONCAT = b"ffconcat version 1.0\nfile '/etc/passwd'\n"
HTML = b"<!doctype html><html><body>Sign in</body></html>"
TEXT = b"just some words, not a video at all\n" * 20


def redirect(to: str) -> Callable[[web.Request], web.Response]:
    return lambda _request: web.Response(status=302, headers={"Location": to})


# (payload, what the row must say): refused while the payload is read, before any fetch.
PAYLOADS = [
    ({"clips": [{"url": "ftp://example.com/a.mp4"}]}, ("payload.clips[0].url: ", "'ftp'")),
    ({"clips": [{"url": "file:///etc/passwd"}]}, ("payload.clips[0].url: ", "'file'")),
    ({"clips": [{"url": "javascript:alert(1)"}]}, ("payload.clips[0].url: ",)),
    ({"clips": [{"url": "data:video/mp4;base64,AAAA"}]}, ("payload.clips[0].url: ",)),
    ({"clips": [{"url": "gopher://127.0.0.1:6379/_FLUSHALL"}]}, ("payload.clips[0].url: ",)),
    ({"clips": [{"url": "storage://generated-videos/../etc/passwd"}]}, ("payload.clips[0].url: ",)),
    ({"clips": [{"url": "storage://../x/a.mp4"}]}, ("payload.clips[0].url: ",)),
    ({"clips": [{"url": "http://"}]}, ("payload.clips[0].url: ", "no host")),
    ({"clips": [{"url": "https://example.com/a.mp4\r\nX-Injected: 1"}]}, ("control characters",)),
    ({"clips": [{"url": "https://example.com/" + "a" * 5000}]}, ("longer than 4096",)),
    ({"clips": "https://example.com/a.mp4"}, ("payload.clips: ",)),
    ({"clips": [{"url": "https://example.com/a.mp4"}], "version": 2}, ("payload.version: ",)),
    (
        {"clips": [{"url": "https://example.com/a.mp4"}], "output": {"path": "/etc/cron.d/x.mp4"}},
        ("payload.output.path: ",),
    ),
    (
        {"clips": [{"url": "https://example.com/a.mp4"}], "output": {"path": "a/../../b.mp4"}},
        ("payload.output.path: ",),
    ),
    (
        {"clips": [{"url": "https://example.com/a.mp4"}], "output": {"path": "x/evil.html"}},
        ("payload.output.path: ", ".mp4"),
    ),
    (
        {
            "clips": [{"url": "https://example.com/a.mp4"}],
            "output": {"width": 16000, "height": 16000},
        },
        ("payload.output.width: ",),
    ),
    (
        {"clips": [{"url": "https://example.com/a.mp4"}], "output": {"fps": 1e9}},
        ("payload.output.fps: ",),
    ),
    ({"clips": [{"url": "https://example.com/a.mp4", "start": -1}]}, ("payload.clips[0].start: ",)),
    ([1, 2, 3], ("payload: ", "JSON object")),
]


@pytest.mark.parametrize(("payload", "words"), PAYLOADS)
async def test_a_malformed_payload_fails_at_once(store, tmp_path, good_clip, payload, words):
    settings = corpus_settings(tmp_path)
    await run_case(store, settings, good_clip, payload, Expect(error=words))


# (what the URL serves, what the row must say): refused after download, before FFmpeg.
SERVED = [
    (HLS, ("clips[0]: ", "HLS playlist")),
    (CONCAT, ("clips[0]: ", "concat list")),
    (HTML, ("clips[0]: ", "looks like HTML")),
    (TEXT, ("clips[0]: ", "text file")),
    (b"", ("clips[0]: ", "empty")),
    (b"\x00" * 4096, ("clips[0]: ",)),
    (404, ("clips[0]: ", "404")),
    (410, ("clips[0]: ", "410")),
    (403, ("clips[0]: ", "403", "access denied")),
]


@pytest.mark.parametrize(("body", "words"), SERVED)
async def test_a_file_that_is_not_a_video_fails_naming_the_clip(
    store, tmp_path, good_clip, body, words
):
    server = LoopbackServer({"/a.mp4": body})
    async with server.serving():
        settings = corpus_settings(tmp_path, allow_private_urls=True)
        payload = {"clips": [{"url": f"{server.base}/a.mp4"}]}
        await run_case(store, settings, good_clip, payload, Expect(error=words))


async def test_a_voice_over_without_sound_fails_naming_it(store, tmp_path, good_clip, corpus_media):
    server = LoopbackServer({"/a.mp4": good_clip, "/v.mp4": corpus_media.path("h264_30_silent")})
    async with server.serving():
        settings = corpus_settings(tmp_path, allow_private_urls=True)
        payload = {"clips": [{"url": f"{server.base}/a.mp4", "voice_url": f"{server.base}/v.mp4"}]}
        expect = Expect(error=("clips[0].voice_url: ", "no audio stream"))
        await run_case(store, settings, good_clip, payload, expect)


async def test_music_that_is_a_web_page_fails_naming_audio(store, tmp_path, good_clip):
    server = LoopbackServer({"/a.mp4": good_clip, "/m.mp3": HTML})
    async with server.serving():
        settings = corpus_settings(tmp_path, allow_private_urls=True)
        payload = {
            "clips": [{"url": f"{server.base}/a.mp4"}],
            "audio": {"url": f"{server.base}/m.mp3"},
        }
        await run_case(store, settings, good_clip, payload, Expect(error=("audio: ", "HTML")))


async def test_an_input_over_the_byte_cap_fails(store, tmp_path, good_clip):
    server = LoopbackServer({"/a.mp4": b"\x00" * 600_000})  # the good clip is ~115 KB
    async with server.serving():
        settings = corpus_settings(tmp_path, allow_private_urls=True, max_input_bytes=500_000)
        payload = {"clips": [{"url": f"{server.base}/a.mp4"}]}
        await run_case(store, settings, good_clip, payload, Expect(error=("clips[0]: ", "limit")))


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("file:///etc/passwd", ("clips[0]: ", "'file'")),
        ("ftp://example.com/a.mp4", ("clips[0]: ", "'ftp'")),
        ("gopher://127.0.0.1:6379/_x", ("clips[0]: ",)),
    ],
)
async def test_a_redirect_to_another_scheme_is_refused(store, tmp_path, good_clip, location, words):
    server = LoopbackServer({"/a.mp4": redirect(location)})
    async with server.serving():
        settings = corpus_settings(tmp_path, allow_private_urls=True)
        payload = {"clips": [{"url": f"{server.base}/a.mp4"}]}
        await run_case(store, settings, good_clip, payload, Expect(error=words))


async def test_endless_redirects_are_refused(store, tmp_path, good_clip):
    server = LoopbackServer({"/a.mp4": redirect("/a.mp4")})
    async with server.serving():
        settings = corpus_settings(tmp_path, allow_private_urls=True)
        payload = {"clips": [{"url": f"{server.base}/a.mp4"}]}
        expect = Expect(error=("clips[0]: ", "redirected more than"))
        await run_case(store, settings, good_clip, payload, expect)


async def test_a_literal_loopback_url_is_refused_without_a_request(store, tmp_path, good_clip):
    server = LoopbackServer({"/a.mp4": good_clip})
    async with server.serving():
        settings = corpus_settings(tmp_path)  # the guard is on
        payload = {"clips": [{"url": f"{server.base}/a.mp4"}]}
        expect = Expect(error=("clips[0]: ", "loopback address"))
        await run_case(store, settings, good_clip, payload, expect)
    assert server.requests == []


async def test_a_missing_storage_object_fails_naming_the_clip(store, tmp_path, good_clip):
    settings = corpus_settings(tmp_path)
    payload = {"clips": [{"url": f"storage://{settings.storage_bucket}/nobody/none.mp4"}]}
    await run_case(
        store, settings, good_clip, payload, Expect(error=("clips[0]: ", "does not exist"))
    )
