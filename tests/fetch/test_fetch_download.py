"""download(): streaming, caps, timeouts, retries, redirects and cleanup, against a real server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from fetch_helpers import BODY, ClipServer, fast_policy, wait_for

from worker.errors import DownloadError, InputError, RetryableError
from worker.fetch import download, make_session

CAP = 1_000_000


async def fetch(server: ClipServer, path: str, dest: Path, **kwargs):
    options = dict(source="clips[2]", max_bytes=CAP, allow_private=True, policy=fast_policy())
    options.update(kwargs)
    return await download(server.url(path), dest, **options)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_ok_file_is_streamed_to_disk_with_progress(clip_server, tmp_path):
    seen: list[tuple[int, int | None]] = []
    dest = await fetch(
        clip_server, "/ok", tmp_path / "a", on_bytes=lambda n, t: seen.append((n, t))
    )
    assert dest.read_bytes() == BODY
    assert seen[-1] == (len(BODY), len(BODY))
    assert [n for n, _ in seen] == sorted(n for n, _ in seen)
    assert leftovers(tmp_path) == ["a"]


async def test_404_is_permanent_and_names_the_input_without_the_query(clip_server, tmp_path):
    with pytest.raises(InputError) as caught:
        await fetch(clip_server, "/missing?token=SECRET123", tmp_path / "a")
    message = str(caught.value)
    assert message.startswith("clips[2]: the URL returned 404 Not Found")
    assert "SECRET123" not in message
    assert clip_server.hits["/missing"] == 1  # a 404 is never retried
    assert leftovers(tmp_path) == []


async def test_5xx_is_retried_until_it_succeeds(clip_server, tmp_path):
    dest = await fetch(clip_server, "/flaky", tmp_path / "a", policy=fast_policy(attempts=4))
    assert dest.read_bytes() == BODY
    assert clip_server.hits["/flaky"] == 3


async def test_persistent_5xx_gives_up_with_a_retryable_error(clip_server, tmp_path):
    with pytest.raises(DownloadError) as caught:
        await fetch(clip_server, "/broken?sig=SECRET123", tmp_path / "a")
    assert isinstance(caught.value, RetryableError)
    assert "500 Internal Server Error" in str(caught.value)
    assert "SECRET123" not in str(caught.value)
    assert clip_server.hits["/broken"] == 3
    assert leftovers(tmp_path) == []


async def test_429_waits_for_retry_after(clip_server, tmp_path):
    dest = await fetch(clip_server, "/limited", tmp_path / "a")
    assert dest.read_bytes() == BODY
    first, second = clip_server.times["/limited"]
    assert second - first >= 0.9  # backoff alone would be ~0.05 s


async def test_trickling_server_fails_the_minimum_speed_rule(clip_server, tmp_path):
    started = time.monotonic()
    with pytest.raises(DownloadError, match="too slowly"):
        await fetch(
            clip_server,
            "/trickle",
            tmp_path / "a",
            policy=fast_policy(min_speed=50_000, speed_window=0.3, attempts=1),
        )
    assert time.monotonic() - started < 3
    assert leftovers(tmp_path) == []


async def test_stalled_server_times_out(clip_server, tmp_path):
    started = time.monotonic()
    with pytest.raises(DownloadError, match="timed out"):
        await fetch(
            clip_server, "/stall", tmp_path / "a", policy=fast_policy(read_timeout=0.3, attempts=2)
        )
    assert time.monotonic() - started < 3
    assert clip_server.hits["/stall"] == 2
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("path", ["/big-honest", "/big-chunked", "/big-gzip"])
async def test_byte_cap_holds_whatever_content_length_says(clip_server, tmp_path, path):
    with pytest.raises(InputError, match=r"larger than the 976\.6 KiB limit"):
        await fetch(clip_server, path, tmp_path / "a")
    assert clip_server.hits[path] == 1
    assert leftovers(tmp_path) == []


async def test_honest_content_length_is_refused_before_the_body(clip_server, tmp_path):
    with pytest.raises(InputError, match=r"\(1.9 MiB\) is larger"):
        await fetch(clip_server, "/big-honest", tmp_path / "a")


async def test_redirect_chain_is_followed(clip_server, tmp_path):
    dest = await fetch(clip_server, "/chain/3", tmp_path / "a")
    assert dest.read_bytes() == BODY
    assert clip_server.hits["/ok"] == 1


async def test_redirect_loop_is_refused(clip_server, tmp_path):
    with pytest.raises(InputError, match="redirected more than 5 times"):
        await fetch(clip_server, "/loop", tmp_path / "a")
    assert clip_server.hits["/loop"] == 6
    assert leftovers(tmp_path) == []


async def test_too_many_redirects_are_refused(clip_server, tmp_path):
    with pytest.raises(InputError, match="redirected more than 2 times"):
        await fetch(clip_server, "/chain/3", tmp_path / "a", policy=fast_policy(max_redirects=2))
    assert clip_server.hits["/ok"] == 0


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/ok",
        "http://[::ffff:127.0.0.1]:{port}/ok",
    ],
)
async def test_redirect_to_a_private_address_is_refused(clip_server, tmp_path, target):
    """The first hop reaches the test server through a permissive session (it lives on
    loopback); the redirect hop is then checked like any hop of a real download."""
    port = clip_server.base.rsplit(":", 1)[1]
    start = f"http://localhost:{port}/redirect?to={target.format(port=port)}"
    async with make_session(allow_private=True) as session:
        with pytest.raises(InputError, match="only public internet addresses"):
            await download(
                start,
                tmp_path / "a",
                source="audio",
                max_bytes=CAP,
                allow_private=False,
                session=session,
                policy=fast_policy(),
            )
    assert clip_server.hits["/redirect"] == 1
    assert clip_server.hits["/ok"] == 0
    assert leftovers(tmp_path) == []


async def test_cancelling_mid_download_removes_the_partial_file(clip_server, tmp_path):
    dest = tmp_path / "a"
    task = asyncio.create_task(fetch(clip_server, "/hold", dest))
    part = tmp_path / "a.part"
    await wait_for(lambda: part.exists() and part.stat().st_size > 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(tmp_path) == []
