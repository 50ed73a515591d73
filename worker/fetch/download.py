"""Download one input over HTTP(S) to a local file, defensively.

Users' URLs are hostile or flaky by default: a server may lie about Content-Length, stall,
trickle a byte a second, redirect forever or point at our own network. So: the body is
streamed to disk under a byte cap counted on what arrives, silence and slowness both end the
attempt, only passing failures (network, 5xx, 429) are retried here, every redirect hop goes
through the SSRF guard, and whatever fails or is cancelled leaves no file behind.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from worker.errors import DownloadError, InputError, RetryableError
from worker.fetch.guard import UnsafeURLError, check_url_syntax, redact, unsafe_cause
from worker.fetch.hostname import HostSpellingError, client_url
from worker.fetch.session import session_scope, status_text
from worker.retry import next_delay

ProgressCallback = Callable[[int, int | None], None]

REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchPolicy:
    """How patient a download is. Defaults suit real CDNs; tests shrink them."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # longest silence allowed, before headers or between chunks
    min_speed: float = 32 * 1024  # bytes/s, averaged over each `speed_window`
    speed_window: float = 20.0
    attempts: int = 4  # tries per download; the job's own retries come on top
    backoff_base: float = 0.5
    backoff_cap: float = 15.0
    max_retry_after: float = 60.0  # a longer Retry-After is cut to this
    max_redirects: int = 5
    chunk_size: int = 64 * 1024


DEFAULT_POLICY = FetchPolicy()


@dataclass(frozen=True)
class _Request:
    """One download: what to fetch, where to, and the rules it is fetched under."""

    url: str
    dest: Path
    source: str
    max_bytes: int
    allow_private: bool
    on_bytes: ProgressCallback | None
    policy: FetchPolicy


class _Transient(RetryableError):
    """One attempt failed for a reason that may pass; `retry_after` is the server's hint."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


async def download(
    url: str,
    dest: Path,
    *,
    source: str,
    max_bytes: int,
    allow_private: bool,
    session: aiohttp.ClientSession | None = None,
    on_bytes: ProgressCallback | None = None,
    policy: FetchPolicy = DEFAULT_POLICY,
) -> Path:
    """Fetch `url` into `dest` and return `dest`.

    `source` names the input in errors (`clips[2]`). Pass a `session` from `make_session`
    to share connections; without one a guarded session is made for this call. Raises
    `InputError` for problems retrying cannot fix (4xx, too large, unsafe address, too
    many redirects) and `DownloadError` once retries of a passing failure are used up.
    `on_bytes(received, expected_or_None)` reports progress after every chunk.
    """
    req = _Request(url, dest, source, max_bytes, allow_private, on_bytes, policy)
    try:
        async with session_scope(
            session,
            allow_private=allow_private,
            connect_timeout=policy.connect_timeout,
            read_timeout=policy.read_timeout,
        ) as http:
            return await _retrying(http, req)
    except BaseException:
        _part_path(dest).unlink(missing_ok=True)
        raise


async def _retrying(http: aiohttp.ClientSession, req: _Request) -> Path:
    """Run attempts until one succeeds, a permanent error arises or attempts run out."""
    for attempt in range(1, req.policy.attempts + 1):
        try:
            return await _attempt(http, req)
        except _Transient as exc:
            if attempt == req.policy.attempts:
                raise DownloadError(
                    f"{req.source}: {exc.problem} ({redact(req.url)}, "
                    f"gave up after {attempt} attempts)"
                ) from exc
            await asyncio.sleep(_delay(attempt, exc.retry_after, req.policy))
    raise AssertionError("unreachable: attempts must be at least 1")


def _delay(attempt: int, retry_after: float | None, policy: FetchPolicy) -> float:
    """Server's Retry-After (capped) if given, else exponential backoff with full jitter."""
    return next_delay(
        attempt,
        retry_after,
        base=policy.backoff_base,
        cap=policy.backoff_cap,
        max_retry_after=policy.max_retry_after,
    )


async def _attempt(http: aiohttp.ClientSession, req: _Request) -> Path:
    """One try: follow redirects hop by hop, each hop checked, then stream the body."""
    source, policy = req.source, req.policy
    current = req.url
    for _hop in range(policy.max_redirects + 1):
        target = _check_hop(current, source, req.allow_private)
        try:
            async with http.get(
                target,  # the parsed URL that was checked, never re-parsed from text
                allow_redirects=False,
                timeout=_timeout(policy),
                headers={"Accept-Encoding": "identity"},
            ) as resp:
                if resp.status in REDIRECTS:
                    current = _next_hop(resp, current, source)
                    continue
                _raise_for_status(resp, source)
                await _save_body(resp, req)
                return req.dest
        except (aiohttp.ClientError, TimeoutError, ConnectionError, UnsafeURLError) as exc:
            raise _classified(exc, source) from exc
    raise InputError(source, f"the URL redirected more than {policy.max_redirects} times")


def _classified(exc: BaseException, source: str) -> Exception:
    """The guard's refusal (however aiohttp wrapped it) and invalid URLs are permanent;
    other network trouble may pass and is retried."""
    unsafe = unsafe_cause(exc)
    if unsafe is not None:
        return InputError(source, str(unsafe))
    if isinstance(exc, aiohttp.InvalidURL):
        return InputError(source, "the URL is not valid")
    return _Transient(_describe_network_error(exc))


def _timeout(policy: FetchPolicy) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None, sock_connect=policy.connect_timeout, sock_read=policy.read_timeout
    )


def _check_hop(url: str, source: str, allow_private: bool) -> URL:
    """Scheme, host spelling and literal-IP check for one hop; returns the URL to request.

    Host names are checked by the resolver and the connector when the connection is made.
    """
    try:
        return check_url_syntax(url, allow_private=allow_private)
    except UnsafeURLError as exc:
        raise InputError(source, str(exc)) from exc


def _next_hop(resp: aiohttp.ClientResponse, current: str, source: str) -> str:
    """The absolute URL a redirect points at (relative Locations resolved).

    The Location is read as typed first: joining normalises its host, and a hop must not
    pass with a spelling a first URL would be refused for.
    """
    location = resp.headers.get("Location")
    if not location:
        raise InputError(source, f"the URL {redact(current)} redirected without a Location")
    try:
        return str(URL(current).join(client_url(location)))
    except HostSpellingError as exc:
        raise InputError(source, f"the URL redirected to an unusable address: {exc}") from exc
    except ValueError as exc:
        raise InputError(source, "the URL redirected to an invalid address") from exc


def _raise_for_status(resp: aiohttp.ClientResponse, source: str) -> None:
    """2xx passes; 5xx and 429 are passing; any other status is the input's fault."""
    status = resp.status
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise _Transient(
            f"the server answered {status_text(status)}",
            _retry_after(resp.headers.get("Retry-After")),
        )
    raise InputError(source, f"the URL returned {status_text(status)}{_hint(status)}")


def _hint(status: int) -> str:
    """What a user can do about a 4xx, in a few words."""
    if status in (401, 403):
        return " (access denied: if it is a signed URL it may have expired)"
    if status in (404, 410):
        return " (check that the file still exists at that address)"
    return ""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _describe_network_error(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name could not be resolved"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "the server could not be reached"
    if isinstance(exc, TimeoutError):
        return "the server stopped sending data (timed out)"
    return "the connection failed while downloading"


def _part_path(dest: Path) -> Path:
    """Where the body lands until it is complete, so `dest` never holds a partial file."""
    return dest.with_name(dest.name + ".part")


async def _save_body(resp: aiohttp.ClientResponse, req: _Request) -> None:
    """Stream the body to `req.dest` under the byte cap and the minimum-speed rule."""
    source, max_bytes, on_bytes, policy = req.source, req.max_bytes, req.on_bytes, req.policy
    expected = resp.content_length
    if expected is not None and expected > max_bytes:
        raise InputError(source, _too_large(max_bytes, expected))
    part = _part_path(req.dest)
    meter = _SpeedMeter(policy.min_speed, policy.speed_window)
    received = 0
    with part.open("wb") as out:
        async for chunk in resp.content.iter_chunked(policy.chunk_size):
            received += len(chunk)
            if received > max_bytes:
                raise InputError(source, _too_large(max_bytes))
            out.write(chunk)
            meter.add(len(chunk))
            if on_bytes is not None:
                on_bytes(received, expected)
    if expected is not None and received < expected:
        raise _Transient("the server closed the connection before the end of the file")
    part.replace(req.dest)


def _too_large(max_bytes: int, size: int | None = None) -> str:
    stated = f" ({_human(size)})" if size is not None else ""
    return f"the file{stated} is larger than the {_human(max_bytes)} limit per input"


def _human(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


class _SpeedMeter:
    """Fails an attempt whose average speed over a window falls below the minimum.

    `sock_read` catches a server that goes silent; this catches one that trickles just
    enough bytes to keep the socket alive but would take days to finish.
    """

    def __init__(self, min_speed: float, window: float) -> None:
        self._min_speed = min_speed
        self._window = window
        self._start = time.monotonic()
        self._bytes = 0

    def add(self, n: int) -> None:
        self._bytes += n
        elapsed = time.monotonic() - self._start
        if elapsed < self._window:
            return
        speed = self._bytes / elapsed
        if speed < self._min_speed:
            raise _Transient(
                f"the server sent data too slowly ({speed:.0f} bytes/s, "
                f"below {self._min_speed:.0f} bytes/s)"
            )
        self._start, self._bytes = time.monotonic(), 0
