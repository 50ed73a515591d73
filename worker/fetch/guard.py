"""The SSRF guard: the worker fetches and posts only to global addresses unless told otherwise.

A job's URLs come from users, so a URL may point at the cloud metadata service
(169.254.169.254), the database next door or the worker's own /metrics. Checking the URL's
host name is not enough: DNS can answer differently a moment later (rebinding). So the check
lives in the resolver that aiohttp's connector uses: the addresses it returns are the ones it
checked, and the connection goes to exactly those. aiohttp skips the resolver for literal IP
hosts, so those are checked here before each request instead; a literal cannot be rebound.
Redirects are followed by the caller, hop by hop, so every hop passes through both checks.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})

# NAT64 (RFC 6052) embeds an IPv4 address in the low 32 bits; Python calls it global.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")


class UnsafeURLError(ValueError):
    """A URL the guard refuses: wrong scheme, or a host that is not a global address.

    The message is a sentence without the URL's query string, fit for a job's `error`.
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


def _literal_ip(host: str) -> IPAddress | None:
    """The host as an IP address when it is one (brackets and zone ids allowed)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url_syntax(url: str, *, allow_private: bool) -> None:
    """Refuse a URL before any network traffic: scheme, host present, literal IP global.

    Host names are checked later, by `GuardedResolver`, when the connection is made.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise UnsafeURLError("the URL is not valid") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UnsafeURLError(f"only http and https URLs can be fetched, not {parts.scheme!r}")
    if not host:
        raise UnsafeURLError(f"the URL {redact(url)} has no host")
    ip = _literal_ip(host)
    if ip is not None and not allow_private:
        _refuse_if_not_global(host, ip)


def _refuse_if_not_global(host: str, ip: IPAddress) -> None:
    reason = non_global_reason(ip)
    if reason is not None:
        shown = host if host == str(ip) else f"{host} ({ip})"
        raise UnsafeURLError(
            f"the URL's host {shown} is {reason}; only public internet addresses can be fetched"
        )


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
            ip = _literal_ip(answer["host"])
            if ip is None:
                raise UnsafeURLError(f"the URL's host {host} resolved to an unusable address")
            _refuse_if_not_global(host, ip)
        return answers

    async def close(self) -> None:
        await self._inner.close()


def make_session(
    *,
    allow_private: bool,
    connect_timeout: float = 10.0,
    read_timeout: float = 30.0,
    limit: int = 16,
) -> aiohttp.ClientSession:
    """A client session whose connections reach only checked addresses.

    With `allow_private` the default resolver is used (tests, local demos). Environment
    proxies are ignored (`trust_env=False`): a proxy would connect on our behalf to an
    address we never checked. Callers still follow redirects themselves and call
    `check_url_syntax` on each hop, because literal IPs never reach the resolver.
    """
    resolver = None if allow_private else GuardedResolver()
    connector = aiohttp.TCPConnector(resolver=resolver, limit=limit, ttl_dns_cache=10)
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
    check_url_syntax(url, allow_private=allow_private)
    host = urlsplit(url).hostname or ""
    if allow_private or _literal_ip(host) is not None:
        return
    resolver = GuardedResolver()
    try:
        await resolver.resolve(host, 0, socket.AF_UNSPEC)
    finally:
        await resolver.close()
