"""The hostile-input corpus: each case runs one hostile job through a real worker, checks how the
row ends, then checks that the same worker still completes a good job.

A case is what an attacker controls (the payload, the files a URL serves, whether the row has a
`user_id`) and what must happen (`Expect`: status, attempts, words the error must and must not
hold). Everything is real: the test's Postgres, the worker's Runner and Pipeline, FFmpeg, local
storage, and HTTP servers on 127.0.0.1 that the case starts (`LoopbackServer`, which records every
request it gets, so a case can show that a refused URL never reached it).

The good job reads its clip through `storage://` from local storage, so it runs whatever
ALLOW_PRIVATE_URLS says: the address-guard cases keep the guard on.

While the hostile job runs, the worker's own loop-lag monitor (worker/loop_lag.py, owned by the
Runner) watches the event loop, which the test shares with the worker: no hostile job may hold
it for MAX_LOOP_LAG seconds or more (the heartbeat, /health, JOB_TIMEOUT and cancel
all stop while it is held).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web

from tests.queue.helpers import fast_settings, running, status_is
from worker.fetch import FetchPolicy
from worker.loop_lag import Watch
from worker.pipeline import Pipeline
from worker.queue.postgres import PostgresJobStore
from worker.queue.runner import Runner
from worker.settings import Settings
from worker.storage import make_storage

# Two tries per download: a refusal misread as a network failure would show as a retry.
POLICY = FetchPolicy(attempts=2, connect_timeout=2, read_timeout=5, backoff_base=0.01)
GOOD_KEY = "corpus/good.mp4"
TERMINAL = ("completed", "failed", "cancelled")
MAX_LOOP_LAG = 0.5  # seconds a hostile job may make the worker's event loop run late

# A file, raw bytes (served as application/octet-stream), a bare status, or a function that
# makes a fresh response for each request (a response object can be sent only once).
Served = Path | bytes | int | Callable[[web.Request], web.StreamResponse]


@dataclass(frozen=True)
class Expect:
    """How the hostile row must end. `error` words must all appear in the row's error;
    `not_in_error` words must not (server paths, secrets, raw stderr)."""

    status: str = "failed"
    attempts: int | None = 1
    error: tuple[str, ...] = ()
    not_in_error: tuple[str, ...] = ()


@dataclass
class LoopbackServer:
    """An HTTP server on 127.0.0.1 serving `routes`; `requests` lists every path asked for."""

    routes: dict[str, Served] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        item = self.routes.get(request.path)
        if item is None:
            return web.Response(status=404)
        if callable(item):
            return item(request)
        if isinstance(item, int):
            return web.Response(status=item)
        if isinstance(item, bytes):
            return web.Response(body=item, content_type="application/octet-stream")
        return web.FileResponse(item)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[LoopbackServer]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        try:
            yield self
        finally:
            await runner.cleanup()


def corpus_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Fast queue timings, local storage under the test's folder, the guard on by default."""
    opts: dict[str, Any] = {
        "home": tmp_path / "home",
        "storage_backend": "local",
        "allow_private_urls": False,
        **overrides,
    }
    return fast_settings(**opts)


def stored_path(settings: Settings, key: str, bucket: str | None = None) -> Path:
    return settings.home / "storage" / (bucket or settings.storage_bucket) / key


def put_object(
    settings: Settings, key: str, source: Path | bytes, bucket: str | None = None
) -> Path:
    """Place an object in local storage directly, as another tenant or the app would have."""
    target = stored_path(settings, key, bucket)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, bytes):
        target.write_bytes(source)
    else:
        shutil.copyfile(source, target)
    return target


@contextlib.asynccontextmanager
async def corpus_worker(
    store: PostgresJobStore, settings: Settings, good_clip: Path, *, policy: FetchPolicy = POLICY
) -> AsyncIterator[Any]:
    """A real Runner with the real Pipeline; the good clip is in local storage for `check_good`."""
    put_object(settings, GOOD_KEY, good_clip)
    pipeline = Pipeline(settings, make_storage(settings), fetch_policy=policy)
    overrides = {k: getattr(settings, k) for k in settings.__dataclass_fields__}
    async with running(store, pipeline, **overrides) as runner:
        yield runner


async def check_good(
    store: PostgresJobStore, settings: Settings, timeout: float = 60
) -> dict[str, Any]:
    """Enqueue a trusted good job (no user_id) and require it to complete."""
    url = f"storage://{settings.storage_bucket}/{GOOD_KEY}"
    job_id, _ = await store.enqueue({"clips": [{"url": url}]})
    row = await status_is(store, job_id, *TERMINAL, timeout=timeout)
    assert row["status"] == "completed", f"the good job after the hostile one: {row['error']}"
    return row


def check_row(row: Mapping[str, Any], expect: Expect) -> None:
    error = row["error"] or ""
    assert row["status"] == expect.status, (row["status"], error)
    if expect.attempts is not None:
        assert row["attempts"] == expect.attempts, (row["attempts"], error)
    for words in expect.error:
        assert words in error, f"{words!r} not in error {error!r}"
    for words in expect.not_in_error:
        assert words not in error, f"{words!r} must not be in error {error!r}"


def check_lag(runner: Runner, lag: Watch, bound: float = MAX_LOOP_LAG) -> None:
    """The worst event-loop lag seen by `runner`'s monitor during the watch stayed under
    `bound`; a monitor that is not running would prove nothing, so that fails too."""
    assert runner.loop_lag.running, "the loop-lag monitor is not running: no lag was measured"
    assert lag.worst < bound, (
        f"event loop lag {lag.worst:.3f} s during the hostile job (bound {bound} s): "
        "something held the worker's event loop or the GIL"
    )


async def run_case(
    store: PostgresJobStore,
    settings: Settings,
    good_clip: Path,
    payload: Any,
    expect: Expect,
    *,
    user_id: uuid.UUID | None = None,
    policy: FetchPolicy = POLICY,
    timeout: float = 60,
) -> dict[str, Any]:
    """The whole case: hostile job to its end, checked (its row, then the loop's lag and the
    process tree's growth while it ran), then a good job completes."""
    async with corpus_worker(store, settings, good_clip, policy=policy) as runner:
        async with tree_growth() as growth:
            with worker_sized_heap(), runner.loop_lag.watch() as lag:
                job_id, _ = await store.enqueue(payload, user_id=user_id)
                row = await status_is(store, job_id, *TERMINAL, timeout=timeout)
        check_row(row, expect)
        check_lag(runner, lag)
        check_growth(growth)
        await check_good(store, settings)
    return row


@contextlib.contextmanager
def worker_sized_heap() -> Iterator[None]:
    """The test process holds every object the suite made so far; a worker's heap holds its
    own few (and the worker freezes its start-up objects, worker/app.py). `gc.freeze()` sets
    the suite's aside, so a full collection during the case scans what the worker made, as in
    production: the lag bound then measures the job, not pytest's history."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# The replica's process tree (this test process, which runs the worker, and its children: the
# probe and caption children, FFmpeg) may grow by this much during a hostile job: the bombs
# and floods this corpus holds once took gigabytes; a normal small job takes tens of MB.
TREE_GROWTH_LIMIT = 250 * 1024 * 1024


@dataclass
class Growth:
    """The tree's RSS when the case began, and its peak since (sampled every 20 ms)."""

    start: int = 0
    peak: int = 0

    @property
    def grown(self) -> int:
        return self.peak - self.start


@contextlib.asynccontextmanager
async def tree_growth() -> AsyncIterator[Growth]:
    me = psutil.Process()
    growth = Growth(tree_rss(me))
    growth.peak = growth.start

    async def sample() -> None:
        while True:
            growth.peak = max(growth.peak, tree_rss(me))
            await asyncio.sleep(0.02)

    task = asyncio.create_task(sample())
    try:
        yield growth
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def check_growth(growth: Growth) -> None:
    assert growth.grown < TREE_GROWTH_LIMIT, (
        f"the worker's process tree grew by {growth.grown / 2**20:.0f} MB during the hostile job "
        f"(bound {TREE_GROWTH_LIMIT / 2**20:.0f} MB)"
    )
