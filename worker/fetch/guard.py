"""The SSRF guard: the worker fetches and posts only to global addresses unless told otherwise.

A job's URLs come from users, so a URL may point at the cloud metadata service
(169.254.169.254), the database next door or the worker's own /metrics. Three lines, each
checking what the connection will really use rather than the string we were given:

1. The URL, as aiohttp's own parser (yarl) reads it (`hostname.py`): odd spellings of numbers
   and Unicode digits or dots are refused, and a literal IP must be global. aiohttp never asks
   a resolver about a literal, so this is where literals are judged.
2. The resolver aiohttp's connector uses: every address a name resolves to must be global, and
   those are the addresses the connection goes to (no DNS rebinding window).
3. The connector itself (`GuardedConnector`): the addresses it is about to dial, and then the
   peer address of the socket it actually connected, before a byte of the request is sent.
   No parser or resolver disagreement can get past this one.

Redirects are followed by the caller, hop by hop, so every hop passes all three. A refusal is
an `UnsafeURLError`; aiohttp may hand it back wrapped in its own errors, so callers look for it
with `unsafe_cause` before treating a failure as a passing network problem.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from worker.errors import PermanentError
from worker.fetch.hostname import HostSpellingError, client_url, literal_address, shown

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})

# NAT64 (RFC 6052) embeds an IPv4 address in the low 32 bits; Python calls it global.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
# Kinds of address a developer running the worker next to a local server would hit.
_LOCAL_KINDS = ("a loopback address", "a private address")
_LOCAL_HINT = " (for local testing, an operator can set ALLOW_PRIVATE_URLS=true)"

# The connector's check overrides this aiohttp internal; fail at import, not silently, if an
# aiohttp release renames it (the peer-address test would catch it too).
if not hasattr(aiohttp.TCPConnector, "_wrap_create_connection"):
    raise ImportError("aiohttp.TCPConnector._wrap_create_connection is gone; update the guard")


class UnsafeURLError(PermanentError, ValueError):
    """A URL the guard refuses: wrong scheme, odd host spelling, or a non-global address.

    The message is a sentence without the URL's query string, fit for a job's `error`.
    Permanent: the same URL is refused again. Callers name the input it belongs to (an
    `InputError`, a webhook delivery's error); it stays a ValueError for the payload's
    validators, which report ValueErrors as the field's problem.
    """


def redact(url: str) -> str:
    """The URL without query, fragment or credentials: signed URLs carry tokens there."""
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
    except ValueError:
        return "<invalid URL>"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in a mapped, 6to4, Teredo or NAT64 address, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def non_global_reason(ip: IPAddress) -> str | None:
    """Why `ip` is not a public internet address (a few words), or None when it is.

    `is_global` alone lets multicast through, and IPv6 forms can wrap a private IPv4
    address, so those are unwrapped and checked as the IPv4 address they reach.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = non_global_reason(inner)
            return f"{reason} (inside an IPv6 address)" if reason else None
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.version == 4 and ip in _CGNAT, "a carrier-grade NAT address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "a reserved address"),
    )
    return next((reason for hit, reason in checks if hit), None)


def _answer_ip(text: str) -> IPAddress | None:
    """An address as a resolver or a socket reports it (zone ids allowed), or None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def check_url_syntax(url: str, *, allow_private: bool) -> URL:
    """Refuse a URL before any network traffic, and return it parsed as aiohttp will use it.

    Scheme http(s), a host, no ambiguous host spelling, and a literal IP must be global.
    Pass the returned `URL` to the request, so the address checked is the one requested.
    Host names are checked later, by `GuardedResolver` and `GuardedConnector`.
    """
    try:
        parsed = client_url(url)
        if parsed.scheme.lower() not in ALLOWED_SCHEMES:
            raise UnsafeURLError(f"only http and https URLs can be fetched, not {parsed.scheme!r}")
        host = parsed.raw_host
        if not host:
            raise UnsafeURLError(f"the URL {redact(url)} has no host")
        ip = literal_address(host)
    except HostSpellingError as exc:
        raise UnsafeURLError(str(exc)) from None
    if ip is not None and not allow_private:
        _refuse_if_not_global(host, ip)
    return parsed


def _refuse_if_not_global(host: str, ip: IPAddress, verb: str = "is") -> None:
    reason = non_global_reason(ip)
    if reason is None:
        return
    named = shown(host) if host == str(ip) else f"{shown(host)} ({ip})"
    hint = _LOCAL_HINT if reason.startswith(_LOCAL_KINDS) else ""
    raise UnsafeURLError(
        f"the URL's host {named} {verb} {reason}; "
        f"only public internet addresses can be fetched{hint}"
    )


def unsafe_cause(exc: BaseException) -> UnsafeURLError | None:
    """The guard's refusal behind `exc`, if there is one.

    aiohttp may wrap what the resolver or connector raised (`ClientConnectorError.os_error`,
    `__cause__`, `__context__`); a wrapped refusal must still fail the job as a refusal, not
    be retried as a network error.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, UnsafeURLError):
            return current
        todo += [current.__cause__, current.__context__, getattr(current, "os_error", None)]
        if isinstance(current, BaseExceptionGroup):
            todo += list(current.exceptions)
    return None


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses any non-global answer.

    Every address is checked, and the refusal covers the whole host when any answer is
    non-global: a host that mixes public and private answers is not one we trust.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve `host` and return its addresses, all checked to be global."""
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            ip = _answer_ip(answer["host"])
            if ip is None:
                raise UnsafeURLError(f"the URL's host {host} resolved to an unusable address")
            _refuse_if_not_global(host, ip)
        return answers

    async def close(self) -> None:
        await self._inner.close()


class GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector that dials only global addresses and checks the peer it reached.

    Whatever the URL parser, the resolver or aiohttp decided, the addresses handed to the
    socket layer are checked before dialling, and the connected socket's peer address after
    it, before the request is written (for https, right after the TLS handshake). A refusal
    closes the connection and raises `UnsafeURLError`.
    """

    async def _wrap_create_connection(
        self, *args: Any, **kwargs: Any
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        host = kwargs["req"].url.raw_host or ""
        self._check_targets(host, kwargs["addr_infos"])
        transport, protocol = await super()._wrap_create_connection(*args, **kwargs)
        try:
            self._check_peer(host, transport)
        except BaseException:
            transport.abort()
            raise
        return transport, protocol

    def _check_targets(self, host: str, addr_infos: list[Any]) -> None:
        """Every address about to be dialled must be global."""
        for info in addr_infos:
            _refuse_unless_global_peer(host, info[4][0], "would connect to")

    def _check_peer(self, host: str, transport: asyncio.Transport) -> None:
        """The address the socket is connected to must be global."""
        peer = transport.get_extra_info("peername")
        _refuse_unless_global_peer(host, peer[0] if peer else "", "connected to")


def _refuse_unless_global_peer(host: str, address: str, verb: str) -> None:
    ip = _answer_ip(address)
    if ip is None:
        raise UnsafeURLError(f"the URL's host {shown(host)} {verb} an unusable address")
    _refuse_if_not_global(host, ip, verb)


def make_session(
    *,
    allow_private: bool,
    connect_timeout: float = 10.0,
    read_timeout: float = 30.0,
    limit: int = 16,
) -> aiohttp.ClientSession:
    """A client session whose connections reach only checked addresses.

    With `allow_private` a plain connector and the default resolver are used (tests, local
    demos). Environment proxies are ignored (`trust_env=False`): a proxy would connect on
    our behalf to an address we never checked. Callers still follow redirects themselves
    and call `check_url_syntax` on each hop, so every hop's spelling is judged too.
    """
    connector: aiohttp.TCPConnector
    if allow_private:
        connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=10)
    else:
        connector = GuardedConnector(resolver=GuardedResolver(), limit=limit, ttl_dns_cache=10)
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=connect_timeout, sock_read=read_timeout
    )
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)


async def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse `url` unless its scheme is http(s) and its host resolves to global addresses.

    For callers that only need a yes or no up front (the webhook sender validating a
    `webhook_url`). A name that does not resolve raises OSError (maybe passing, so not
    "unsafe"). It cannot close the rebinding window on its own: send the request
    itself through `make_session(allow_private=...)` so the connection is checked too.
    """
    host = check_url_syntax(url, allow_private=allow_private).raw_host or ""
    if allow_private or literal_address(host) is not None:
        return
    resolver = GuardedResolver()
    try:
        await resolver.resolve(host, 0, socket.AF_UNSPEC)
    finally:
        await resolver.close()
