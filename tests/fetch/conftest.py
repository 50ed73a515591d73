"""Fixtures for the fetch tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fetch_helpers import ClipServer, start_clip_server


@pytest.fixture
async def clip_server() -> AsyncIterator[ClipServer]:
    """A fresh server per test, so request counts belong to that test alone."""
    server, runner = await start_clip_server()
    yield server
    server.gate.set()
    await runner.cleanup()
