"""What the address guard costs (run by hand: `.venv/bin/python bench/bench_guard.py`).

(a) Per URL: `check_url_syntax` (yarl parse, spelling rules, literal-IP check) against the
    previous check (`urlsplit` + `ipaddress`), on a few kinds of URL. Pure CPU, no network.
(b) Per connection: the connector's two checks (the addresses about to be dialled, then the
    connected peer) on their own, and a fetch from a loopback server over a fresh connection
    each time (`force_close`), with a plain TCPConnector and with the guarded connector
    doing the same work (its refusal of loopback is turned into a no-op so it can run here).

The queue benchmark (bench_queue.py) runs no-op jobs that fetch nothing, so the guard cannot
change its figures; per job the guard adds (a) once per input URL and redirect hop, and (b)
once per new connection.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from worker.fetch import GuardedConnector, check_url_syntax, non_global_reason

# Each kind is a template: every call gets a URL never seen before ({n}), so neither yarl's
# caches nor ipaddress's help more than they would on a real queue. "same host" varies only the
# path (a CDN's clips); "new host" varies the host too (the worst case for yarl's IDNA cache).
URLS = {
    "same host": "https://cdn.example.com/videos/2024/clip-{n}.mp4",
    "new host": "https://cdn{n}.example.com/videos/clip.mp4",
    "signed": "https://bucket.s3.eu-west-1.amazonaws.com/a/{n}.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIA%2F20240101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z"
    "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "ab" * 32,
    "ipv4": "http://8.8.{a}.{b}:8080/a.mp4",
    "ipv6": "http://[2606:4700:{h:x}::1]/a.mp4",
    "idna": "https://b\u00fccher{n}.example/a.mp4",
}


def _urls(template: str, start: int, count: int) -> list[str]:
    return [
        template.format(n=n, a=(n // 250) % 250 + 1, b=n % 250 + 1, h=n % 0xFFFF + 1)
        for n in range(start, start + count)
    ]


def old_check(url: str) -> None:
    """The check of before: urlsplit's host, an IP literal only if ipaddress says so."""
    host = urlsplit(url).hostname or ""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    non_global_reason(ip)


def per_url(number: int) -> None:
    print(f"(a) per URL, {number} distinct URLs per kind, best of 5")
    print(f"    {'kind':10} {'before (µs)':>12} {'now (µs)':>10}")
    for kind, template in URLS.items():
        before = _best(old_check, template, number)
        now = _best(functools.partial(check_url_syntax, allow_private=False), template, number)
        print(f"    {kind:10} {before * 1e6:12.2f} {now * 1e6:10.2f}")


def _best(check: Callable[[str], object], template: str, number: int) -> float:
    """Seconds per call, best of five runs, each over `number` URLs it has not seen."""
    runs = []
    for run in range(5):
        urls = _urls(template, 1 + run * number, number)
        start = time.perf_counter()
        for url in urls:
            check(url)
        runs.append(time.perf_counter() - start)
    return min(runs) / number


class _Transport:
    def get_extra_info(self, name: str) -> Any:
        return ("8.8.8.8", 443)


def per_connection_checks(number: int) -> None:
    connector = GuardedConnector.__new__(GuardedConnector)  # the checks only; no event loop
    infos = [(2, 1, 6, "", ("8.8.8.8", 443)), (10, 1, 6, "", ("2606:4700::1111", 443, 0, 0))]
    transport: Any = _Transport()

    def both() -> None:
        connector._check_targets("cdn.example.com", infos)
        connector._check_peer("cdn.example.com", transport)

    cost = min(timeit.repeat(both, number=number, repeat=5)) / number * 1e6
    print(f"(b) connector checks per connection (2 targets + peer): {cost:.2f} µs")


class _MeasuredOnly(GuardedConnector):
    """Does the guarded connector's work but lets loopback through, so it can run here."""

    def _check_targets(self, host: str, addr_infos: list[Any]) -> None:
        for info in addr_infos:
            non_global_reason(ipaddress.ip_address(info[4][0]))

    def _check_peer(self, host: str, transport: Any) -> None:
        non_global_reason(ipaddress.ip_address(transport.get_extra_info("peername")[0]))


async def fetch_alternating(url: str, n: int) -> dict[str, list[float]]:
    """n fetches through each connector, alternating, so machine load hits both alike."""
    times: dict[str, list[float]] = {"plain": [], "guarded": []}
    plain = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    guarded = aiohttp.ClientSession(connector=_MeasuredOnly(force_close=True))
    async with plain, guarded:
        for _ in range(n):
            for name, session in (("plain", plain), ("guarded", guarded)):
                start = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                times[name].append(time.perf_counter() - start)
    return times


async def per_fetch(n: int) -> None:
    app = web.Application()
    app.router.add_get("/a", lambda _r: _ok())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/a"
    try:
        rounds = await fetch_alternating(url, n)
        print(f"    fetch over a new loopback connection, median of {n} each:")
        for name, times in rounds.items():
            print(f"      {name:8} {statistics.median(times) * 1e6:8.0f} µs")
    finally:
        await runner.cleanup()


async def _ok() -> web.Response:
    return web.Response(body=b"x" * 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--fetches", type=int, default=1000)
    args = parser.parse_args()
    per_url(args.number)
    per_connection_checks(args.number)
    asyncio.run(per_fetch(args.fetches))


if __name__ == "__main__":
    main()
