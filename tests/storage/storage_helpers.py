"""Helpers for the storage tests: waiting on conditions, and a TCP proxy that can stall.

The proxy lets a test hold an upload mid-body deterministically: it forwards a byte budget
from client to server, then stops reading until released, so the SDK's sending thread
blocks exactly as it would on a slow network.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker.settings import Settings


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `predicate()` holds, failing the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


def make_file(path: Path, size: int) -> Path:
    """A file of `size` pseudo-random bytes (so compression cannot hide anything)."""
    path.write_bytes(os.urandom(size))
    return path


def s3_settings(endpoint: str, bucket: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        storage_backend="s3",
        s3_bucket=bucket,
        s3_endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing-secret",
        aws_region="us-east-1",
    )
    values.update(overrides)
    return Settings(**values)


class StallingProxy:
    """Forwards TCP to `target`; client-to-server bytes stop after `budget` until released."""

    def __init__(self, target_host: str, target_port: int, budget: int) -> None:
        self._target = (target_host, target_port)
        self._budget = budget
        self.forwarded = 0
        self.stalled = False
        self._released = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def release(self) -> None:
        self._released.set()

    async def close(self) -> None:
        self.release()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        await asyncio.gather(
            self._pipe(reader, up_writer, upload=True),
            self._pipe(up_reader, writer, upload=False),
            return_exceptions=True,
        )

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, upload: bool
    ) -> None:
        try:
            while data := await source.read(65536):
                if upload:
                    await self._spend(len(data))
                sink.write(data)
                await sink.drain()
        finally:
            with contextlib.suppress(Exception):
                sink.close()

    async def _spend(self, n: int) -> None:
        if self.forwarded + n > self._budget and not self._released.is_set():
            self.stalled = True
            await self._released.wait()
        self.forwarded += n
