"""The guard against real loopback servers: every spelling of loopback is refused before a
request reaches the server, at once (no retries), for downloads, redirect hops and webhooks;
and the connector's own peer check refuses what the earlier lines were made to miss.

Only loopback servers this test starts are ever aimed at (each spelling here can only mean
127.0.0.1 or ::1); other addresses are covered by the pure tests in test_fetch_hostname.py.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fetch_helpers import ClipServer, fast_policy, wait_for
from spellings import (
    LOOPBACK_IPV6,
    LOOPBACK_NAMES,
    LOOPBACK_NUMERIC,
    LOOPBACK_UNICODE,
    LOOPBACK_ZONE_IDS,
)
from yarl import URL

from worker.errors import InputError
from worker.fetch import GuardedConnector, GuardedResolver, UnsafeURLError, download
from worker.webhooks import deliver

EVERY_LOOPBACK = (
    LOOPBACK_UNICODE + LOOPBACK_NUMERIC + LOOPBACK_IPV6 + LOOPBACK_ZONE_IDS + LOOPBACK_NAMES
)
START = "start.test"  # the one name the redirect tests' session lets reach the test server


def port_of(server: ClipServer) -> int:
    return int(server.base.rsplit(":", 1)[1])


async def refused_download(url: str, dest: Path, **kwargs: Any) -> InputError:
    """download() must raise InputError (permanent), never DownloadError (retried)."""
    options: dict[str, Any] = dict(
        source="clips[0]", max_bytes=10**6, allow_private=False, policy=fast_policy()
    )
    options.update(kwargs)
    with pytest.raises(InputError) as caught:
        await download(url, dest, **options)
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    return caught.value


# --- every spelling, straight ---------------------------------------------------------------


@pytest.mark.parametrize("host", EVERY_LOOPBACK)
async def test_every_loopback_spelling_is_refused_before_a_request(
    clip_server: ClipServer, tmp_path, host
):
    error = await refused_download(
        f"http://{host}:{port_of(clip_server)}/ok?token=SECRET", tmp_path / "a"
    )
    assert str(error).startswith("clips[0]: the URL's host ")
    assert "SECRET" not in str(error)
    assert sum(clip_server.hits.values()) == 0


async def test_a_loopback_refusal_reads_as_the_guard_wrote_it(clip_server: ClipServer, tmp_path):
    error = await refused_download(
        f"http://127\u30020\u30020\u30021:{port_of(clip_server)}/ok", tmp_path / "a"
    )
    assert str(error) == (
        "clips[0]: the URL's host 127\u30020\u30020\u30021 is written with non-ASCII digits "
        "or dots (U+3002); write the address with ASCII digits and dots"
    )
    error = await refused_download(f"http://localhost:{port_of(clip_server)}/ok", tmp_path / "a")
    assert str(error) == (
        "clips[0]: the URL's host localhost (127.0.0.1) is a loopback address; only public "
        "internet addresses can be fetched (for local testing, an operator can set "
        "ALLOW_PRIVATE_URLS=true)"
    )


# --- every spelling, as a redirect hop ------------------------------------------------------


class DoorResolver(AbstractResolver):
    """Answers START with 127.0.0.1 itself; every other name goes through the guard's resolver."""

    def __init__(self) -> None:
        self.guarded = GuardedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host == START:
            return [_answer(host, "127.0.0.1", port)]
        return await self.guarded.resolve(host, port, family)

    async def close(self) -> None:
        await self.guarded.close()


class DoorConnector(GuardedConnector):
    """The guarded connector, except for START: the first hop may reach the test server."""

    def _check_targets(self, host: str, addr_infos: list[Any]) -> None:
        if host != START:
            super()._check_targets(host, addr_infos)

    def _check_peer(self, host: str, transport: asyncio.Transport) -> None:
        if host != START:
            super()._check_peer(host, transport)


def _answer(host: str, address: str, port: int) -> ResolveResult:
    return {
        "hostname": host,
        "host": address,
        "port": port,
        "family": socket.AF_INET,
        "proto": 0,
        "flags": socket.AI_NUMERICHOST,
    }


@pytest.fixture
async def door_session() -> AsyncIterator[aiohttp.ClientSession]:
    connector = DoorConnector(resolver=DoorResolver())
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        yield session


@pytest.mark.parametrize("host", EVERY_LOOPBACK)
async def test_a_redirect_to_every_loopback_spelling_is_refused(
    clip_server: ClipServer, door_session, tmp_path, host
):
    port = port_of(clip_server)
    start = URL(f"http://{START}:{port}/raw-redirect").with_query(to=f"http://{host}:{port}/ok")
    error = await refused_download(str(start), tmp_path / "a", session=door_session)
    assert "the URL's host " in str(error) or "redirected to an unusable address" in str(error)
    assert clip_server.hits["/raw-redirect"] == 1  # the first hop did reach the server
    assert clip_server.hits["/ok"] == 0


async def test_a_protocol_relative_redirect_is_read_as_typed(
    clip_server: ClipServer, door_session, tmp_path
):
    port = port_of(clip_server)
    start = URL(f"http://{START}:{port}/raw-redirect").with_query(to=f"//127\uff0e0.0.1:{port}/ok")
    error = await refused_download(str(start), tmp_path / "a", session=door_session)
    assert "non-ASCII digits or dots (U+FF0E)" in str(error)
    assert clip_server.hits["/ok"] == 0


async def test_the_door_itself_lets_a_good_redirect_through(
    clip_server: ClipServer, door_session, tmp_path
):
    """The redirect tests above fail for the right reason: the same path to START works."""
    port = port_of(clip_server)
    start = URL(f"http://{START}:{port}/raw-redirect").with_query(to=f"http://{START}:{port}/ok")
    dest = await download(
        str(start),
        tmp_path / "a",
        source="clips[0]",
        max_bytes=10**6,
        allow_private=False,
        session=door_session,
        policy=fast_policy(),
    )
    assert dest.stat().st_size > 0 and clip_server.hits["/ok"] == 1


# --- the connector's own checks -------------------------------------------------------------


@dataclass
class RawServer:
    """A TCP server on 127.0.0.1 that records each connection and every byte it receives."""

    port: int = 0
    connections: int = 0
    closed: int = 0
    received: bytearray = field(default_factory=bytearray)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while chunk := await reader.read(4096):
                self.received += chunk
        except ConnectionError:
            pass
        finally:
            self.closed += 1
            writer.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    raw = RawServer()
    server = await asyncio.start_server(raw._handle, "127.0.0.1", 0)
    raw.port = server.sockets[0].getsockname()[1]
    async with server:
        yield raw


@pytest.fixture
async def tls_server(tmp_path) -> AsyncIterator[RawServer]:
    """The same, speaking TLS with a self-signed certificate: `received` is decrypted."""
    raw = RawServer()
    server = await asyncio.start_server(raw._handle, "127.0.0.1", 0, ssl=_self_signed(tmp_path))
    raw.port = server.sockets[0].getsockname()[1]
    async with server:
        yield raw


def _self_signed(folder: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peer.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


class LyingResolver(AbstractResolver):
    """Name-level checks bypassed: any name resolves to 127.0.0.1, unchecked."""

    calls = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls += 1
        return [_answer(host, "127.0.0.1", port)]

    async def close(self) -> None:
        pass


class PeerCheckOnly(GuardedConnector):
    """The connector with its pre-dial check removed: only the connected-peer check is left."""

    def _check_targets(self, host: str, addr_infos: list[Any]) -> None:
        pass


def session_with(connector: aiohttp.TCPConnector) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=connector, trust_env=False)


async def test_the_connector_refuses_to_dial_a_loopback_answer(raw_server: RawServer, tmp_path):
    async with session_with(GuardedConnector(resolver=LyingResolver())) as session:
        error = await refused_download(
            f"http://peer.test:{raw_server.port}/a.mp4", tmp_path / "a", session=session
        )
    assert str(error).startswith(
        "clips[0]: the URL's host peer.test (127.0.0.1) would connect to a loopback address"
    )
    assert raw_server.connections == 0  # not even a TCP handshake


async def test_the_peer_check_alone_refuses_a_loopback_peer(raw_server: RawServer, tmp_path):
    async with session_with(PeerCheckOnly(resolver=LyingResolver())) as session:
        error = await refused_download(
            f"http://peer.test:{raw_server.port}/a.mp4", tmp_path / "a", session=session
        )
    assert str(error).startswith(
        "clips[0]: the URL's host peer.test (127.0.0.1) connected to a loopback address"
    )
    await wait_for(lambda: raw_server.closed == 1)
    assert raw_server.connections == 1  # the socket did connect ...
    assert bytes(raw_server.received) == b""  # ... and not one byte of the request was sent


async def test_the_peer_check_refuses_over_https_before_the_request(
    tls_server: RawServer, tmp_path
):
    """For https the check runs right after the TLS handshake: the server decrypts nothing."""
    connector = PeerCheckOnly(resolver=LyingResolver(), ssl=False)  # self-signed: no verify
    async with session_with(connector) as session:
        error = await refused_download(
            f"https://peer.test:{tls_server.port}/a.mp4", tmp_path / "a", session=session
        )
    assert "peer.test (127.0.0.1) connected to a loopback address" in str(error)
    await wait_for(lambda: tls_server.closed == 1)
    assert tls_server.connections == 1 and bytes(tls_server.received) == b""


async def test_the_peer_check_covers_webhooks(raw_server: RawServer):
    async with session_with(PeerCheckOnly(resolver=LyingResolver())) as session:
        result = await deliver(
            f"http://peer.test:{raw_server.port}/hook",
            b"{}",
            msg_id="m",
            secret=None,
            allow_private=True,  # skip the up-front check: the session alone must refuse
            session=session,
            attempts=3,
            base_delay=0.01,
            max_delay=0.01,
        )
    assert not result.delivered and result.attempts == 1
    assert result.error is not None and result.error.startswith("webhook not sent: ")
    assert "connected to a loopback address" in result.error
    await wait_for(lambda: raw_server.closed == 1)
    assert bytes(raw_server.received) == b""


async def test_with_allow_private_the_connector_checks_nothing(raw_server: RawServer, tmp_path):
    """ALLOW_PRIVATE_URLS turns the address checks off: make_session uses a plain connector."""
    from worker.fetch import make_session

    async with make_session(allow_private=True, connect_timeout=2, read_timeout=0.5) as session:
        assert not isinstance(session.connector, GuardedConnector)
    async with make_session(allow_private=False) as session:
        assert isinstance(session.connector, GuardedConnector)


# --- a refusal aiohttp wrapped is still a refusal -------------------------------------------


class WrappingResolver(AbstractResolver):
    """Refuses as the guard does, but hands the refusal back inside an OSError, the way a
    resolver or aiohttp may wrap it (aiohttp then wraps that in ClientConnectorDNSError)."""

    calls = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls += 1
        try:
            raise UnsafeURLError(f"the URL's host {host} (127.0.0.1) is a loopback address")
        except UnsafeURLError as exc:
            raise OSError("lookup refused") from exc

    async def close(self) -> None:
        pass


async def test_a_wrapped_refusal_fails_at_once_with_the_guards_words(tmp_path):
    resolver = WrappingResolver()
    async with session_with(GuardedConnector(resolver=resolver)) as session:
        error = await refused_download(
            "http://wrapped.test:9/a.mp4", tmp_path / "a", session=session, source="audio"
        )
    assert str(error) == "audio: the URL's host wrapped.test (127.0.0.1) is a loopback address"
    assert resolver.calls == 1  # not retried as "the connection failed"


async def test_a_wrapped_refusal_ends_a_webhook_at_once():
    resolver = WrappingResolver()
    async with session_with(GuardedConnector(resolver=resolver)) as session:
        result = await deliver(
            "http://wrapped.test:9/hook",
            b"{}",
            msg_id="m",
            secret=None,
            allow_private=True,
            session=session,
            attempts=3,
            base_delay=0.01,
            max_delay=0.01,
        )
    assert result.attempts == 1 and resolver.calls == 1
    assert result.error == (
        "webhook not sent: the URL's host wrapped.test (127.0.0.1) is a loopback address"
    )


# --- webhooks: the up-front check -----------------------------------------------------------


@pytest.mark.parametrize("host", EVERY_LOOPBACK)
async def test_a_webhook_to_every_loopback_spelling_is_not_sent(raw_server: RawServer, host):
    result = await deliver(
        f"http://{host}:{raw_server.port}/hook?token=SECRET",
        b"{}",
        msg_id="m",
        secret=None,
        allow_private=False,
        attempts=3,
        base_delay=0.01,
        max_delay=0.01,
    )
    assert not result.delivered
    assert result.error is not None and result.error.startswith("webhook not sent: the URL's host")
    assert "SECRET" not in result.error
    assert result.attempts <= 1
    assert raw_server.connections == 0
