"""The HTTP client pieces that downloads and the webhook sender share: a guarded session for
one call when the caller has none, and the words for an HTTP status."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from http import HTTPStatus

import aiohttp

from worker.fetch.guard import make_session


@contextlib.asynccontextmanager
async def session_scope(
    session: aiohttp.ClientSession | None,
    *,
    allow_private: bool,
    connect_timeout: float,
    read_timeout: float,
    limit: int = 16,
) -> AsyncIterator[aiohttp.ClientSession]:
    """Use the caller's session (shared connections), or make a guarded one (`make_session`)
    that lives for this call only and is closed on the way out."""
    if session is not None:
        yield session
        return
    async with make_session(
        allow_private=allow_private,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        limit=limit,
    ) as own:
        yield own


def status_text(status: int) -> str:
    """`404 Not Found`; a status Python has no phrase for is given as its number alone."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
