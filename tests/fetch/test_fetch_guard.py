"""The SSRF guard: which addresses are refused, and that refusals happen before any request."""

from __future__ import annotations

import ipaddress

import pytest
from fetch_helpers import ClipServer, fast_policy

from worker.errors import InputError
from worker.fetch import (
    UnsafeURLError,
    check_url,
    check_url_syntax,
    download,
    make_session,
    non_global_reason,
    redact,
)

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fe80::1", "link-local"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private"),
    ("64:ff9b::a9fe:a9fe", "link-local"),
    ("2002:7f00:1::", "loopback"),
]
GLOBAL = [
    "8.8.8.8",
    "1.1.1.1",
    "100.128.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_non_global_addresses_are_named(address, kind):
    reason = non_global_reason(ipaddress.ip_address(address))
    assert reason is not None and kind in reason


@pytest.mark.parametrize("address", GLOBAL)
def test_global_addresses_pass(address):
    assert non_global_reason(ipaddress.ip_address(address)) is None


def test_redact_drops_query_fragment_and_credentials():
    url = "https://user:pw@cdn.example.com:8443/a/b.mp4?X-Amz-Signature=abc&token=t#frag"
    assert redact(url) == "https://cdn.example.com:8443/a/b.mp4"


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/ok",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/ok",
        "http://[fd00::1]/ok",
        "http://0.0.0.0/ok",
    ],
)
def test_private_literals_are_refused_by_the_pure_check(url):
    """No socket here: the network rule forbids aiming even a refused request at these."""
    with pytest.raises(UnsafeURLError, match="only public internet addresses"):
        check_url_syntax(url + "?token=SECRET", allow_private=False)


async def test_a_name_that_resolves_to_loopback_is_refused(clip_server: ClipServer, tmp_path):
    port = clip_server.base.rsplit(":", 1)[1]
    with pytest.raises(InputError, match=r"localhost \(127\.0\.0\.1\) is a loopback address"):
        await download(
            f"http://localhost:{port}/ok",
            tmp_path / "a",
            source="audio",
            max_bytes=10**6,
            allow_private=False,
            policy=fast_policy(),
        )
    assert sum(clip_server.hits.values()) == 0
    assert list(tmp_path.iterdir()) == []


async def test_a_guarded_session_refuses_loopback_on_its_own(clip_server: ClipServer):
    """What the webhook sender relies on: the session itself refuses, not just download()."""
    port = clip_server.base.rsplit(":", 1)[1]
    async with make_session(allow_private=False) as session:
        with pytest.raises(UnsafeURLError):
            await session.get(f"http://localhost:{port}/ok")
    assert sum(clip_server.hits.values()) == 0


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a.mp4", "file:///etc/passwd", "gopher://example.com/", "http:///nohost"],
)
async def test_only_http_and_https_are_fetched(tmp_path, url):
    with pytest.raises(InputError, match=r"^clips\[1\]: "):
        await download(
            url,
            tmp_path / "a",
            source="clips[1]",
            max_bytes=10,
            allow_private=True,
            policy=fast_policy(),
        )


async def test_allow_private_reaches_the_local_server(clip_server: ClipServer, tmp_path):
    port = clip_server.base.rsplit(":", 1)[1]
    dest = await download(
        f"http://localhost:{port}/ok",
        tmp_path / "a",
        source="clips[0]",
        max_bytes=10**6,
        allow_private=True,
        policy=fast_policy(),
    )
    assert dest.stat().st_size > 0


async def test_check_url_for_the_webhook_sender():
    with pytest.raises(UnsafeURLError, match="loopback"):
        await check_url("http://localhost:9/hook", allow_private=False)
    with pytest.raises(UnsafeURLError, match="link-local"):
        await check_url("http://169.254.169.254/hook", allow_private=False)
    with pytest.raises(UnsafeURLError, match="only http and https"):
        await check_url("ftp://example.com/", allow_private=True)
    await check_url("http://localhost:9/hook", allow_private=True)
    await check_url("https://8.8.8.8/hook", allow_private=False)  # a global literal
