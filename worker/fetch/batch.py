"""Fetching all of a job's inputs at once: bounded concurrency, each distinct URL once.

AI video apps often repeat a clip (an intro, a logo sting) or reuse one music file, so
duplicate URLs are fetched once and every input that names them gets the same file.
`storage://BUCKET/PATH` inputs are read through the storage backend, never over HTTP, and
only where the job's `Tenancy` allows: every storage:// input is checked before any input is
fetched, so a user's job that names another user's object fails without touching anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from worker.errors import InputError, PermanentError, WorkerError
from worker.fetch.download import DEFAULT_POLICY, FetchPolicy, download
from worker.fetch.guard import make_session
from worker.storage.base import (
    InvalidKeyError,
    ObjectNotFound,
    ObjectTooLarge,
    Storage,
    parse_storage_url,
)
from worker.storage.tenancy import Tenancy

STORAGE_SCHEME = "storage://"


@dataclass(frozen=True)
class InputSpec:
    """One input of a job: what it is called in errors, where it comes from, and at most how
    many bytes it may have (None: the batch's own limit). A caption file or an overlay image
    needs far less room than a video, and a smaller cap stops an oversized one on the wire."""

    source: str  # clips[0], clips[1].voice_url, clips[0].audio[1], audio, captions.srt_url …
    url: str
    max_bytes: int | None = None


async def fetch_from_storage(
    url: str,
    dest: Path,
    *,
    source: str,
    max_bytes: int,
    storage: Storage | None,
    tenancy: Tenancy | None = None,
) -> Path:
    """Read a `storage://BUCKET/PATH` input through the backend, errors named by `source`."""
    if storage is None:
        raise InputError(source, "storage:// inputs need a configured storage backend")
    bucket, key = storage_location(url, source, tenancy)
    try:
        return await storage.download(bucket, key, dest, max_bytes)
    except (ObjectNotFound, ObjectTooLarge, InvalidKeyError) as exc:
        raise InputError(source, str(exc)) from exc


def storage_location(url: str, source: str, tenancy: Tenancy | None) -> tuple[str, str]:
    """The (bucket, key) of a storage:// input, if `tenancy` lets the job read it."""
    try:
        bucket, key = parse_storage_url(url)
    except InvalidKeyError as exc:
        raise InputError(source, str(exc)) from exc
    problem = tenancy.read_problem(bucket, key) if tenancy is not None else None
    if problem:
        raise InputError(source, problem)
    return bucket, key


class DownloadBatch:
    """Downloads a job's inputs into one folder, at most `concurrency` at a time.

    `on_progress(received, expected)` sums all transfers; `expected` is None until every
    HTTP response has said its length. On failure the files already fetched are removed
    and the most telling error is raised: a permanent one (a 404 fails the job whatever
    else happened) before a passing one.
    """

    def __init__(
        self,
        folder: Path,
        *,
        max_bytes: int,
        allow_private: bool,
        storage: Storage | None = None,
        tenancy: Tenancy | None = None,
        concurrency: int = 4,
        policy: FetchPolicy = DEFAULT_POLICY,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> None:
        self._folder = folder
        self._max_bytes = max_bytes
        self._allow_private = allow_private
        self._storage = storage
        self._tenancy = tenancy
        self._limit = asyncio.Semaphore(concurrency)
        self._policy = policy
        self._on_progress = on_progress
        self._received: dict[str, int] = {}
        self._expected: dict[str, int | None] = {}

    async def fetch_all(self, inputs: Sequence[InputSpec]) -> dict[str, Path]:
        """Fetch every input; return each `source`'s local path (shared for duplicates)."""
        first_source = _first_source_by_url(inputs)
        caps = _caps_by_url(inputs, self._max_bytes)
        for url, source in first_source.items():
            if url.startswith(STORAGE_SCHEME):
                storage_location(url, source, self._tenancy)  # before any input is fetched
        paths = {url: self._folder / f"input-{n:03d}" for n, url in enumerate(first_source)}
        self._folder.mkdir(parents=True, exist_ok=True)
        self._expected = {u: None for u in first_source if not u.startswith(STORAGE_SCHEME)}
        async with make_session(
            allow_private=self._allow_private,
            connect_timeout=self._policy.connect_timeout,
            read_timeout=self._policy.read_timeout,
        ) as session:
            try:
                await self._run_all(session, first_source, paths, caps)
            except BaseException:
                for path in paths.values():
                    path.unlink(missing_ok=True)
                raise
        return {spec.source: paths[spec.url] for spec in inputs}

    async def _run_all(
        self,
        session: aiohttp.ClientSession,
        first_source: dict[str, str],
        paths: dict[str, Path],
        caps: dict[str, int],
    ) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for url, source in first_source.items():
                    group.create_task(self._one(session, url, source, paths[url], caps[url]))
        except BaseExceptionGroup as failures:
            raise _most_telling(failures) from None

    async def _one(
        self, session: aiohttp.ClientSession, url: str, source: str, dest: Path, max_bytes: int
    ) -> None:
        async with self._limit:
            if url.startswith(STORAGE_SCHEME):
                await fetch_from_storage(
                    url,
                    dest,
                    source=source,
                    max_bytes=max_bytes,
                    storage=self._storage,
                    tenancy=self._tenancy,
                )
                return
            await download(
                url,
                dest,
                source=source,
                max_bytes=max_bytes,
                allow_private=self._allow_private,
                session=session,
                policy=self._policy,
                on_bytes=lambda got, total: self._report(url, got, total),
            )

    def _report(self, url: str, received: int, expected: int | None) -> None:
        self._received[url] = received
        self._expected[url] = expected
        if self._on_progress is None:
            return
        lengths = list(self._expected.values())
        known = None if None in lengths else sum(v for v in lengths if v is not None)
        self._on_progress(sum(self._received.values()), known)


def _first_source_by_url(inputs: Sequence[InputSpec]) -> dict[str, str]:
    """Each distinct URL once, in order, with the first input that names it (for errors)."""
    first: dict[str, str] = {}
    for spec in inputs:
        first.setdefault(spec.url, spec.source)
    return first


def _caps_by_url(inputs: Sequence[InputSpec], default: int) -> dict[str, int]:
    """Each distinct URL's byte cap: the largest any input that names it needs. A file fetched
    once for two inputs must fit the roomier one; the other's reader checks its own limit and
    names its own input (an overlay image over its cap fails as `overlays[0].image`)."""
    caps: dict[str, int] = {}
    for spec in inputs:
        cap = min(default, spec.max_bytes) if spec.max_bytes is not None else default
        caps[spec.url] = max(caps.get(spec.url, cap), cap)
    return caps


def _most_telling(failures: BaseExceptionGroup) -> BaseException:
    """Pick the error to report: permanent before retryable before anything else."""
    flat = _flatten(failures)
    for kind in (PermanentError, WorkerError, Exception):
        for exc in flat:
            if isinstance(exc, kind):
                return exc
    return flat[0]


def _flatten(group: BaseExceptionGroup) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_flatten(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found
