"""LISTEN on a dedicated connection and turn notifications into wake-ups.

A notification is a hint, never a promise: the runner polls every POLL_INTERVAL regardless.
Behind a transaction pooler (Supavisor on port 6543, PgBouncer) LISTEN is accepted but other
sessions' notifications never arrive, so after each (re)connect the listener has a probe
notification sent from a *second* connection (sent on its own connection, the pooler would hand
the same server session back and the probe would come home, proving nothing). If the probe does
not arrive it reports `unavailable` and the worker relies on polling, trying again later.
A lost connection is retried with backoff and the state says so, for /health.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Callable
from typing import Any

from worker.db.connection import connect
from worker.log import get_logger
from worker.retry import exponential

CHANNEL = "video_jobs"
PROBE_TIMEOUT = 3.0
RETRY_UNAVAILABLE = 300.0

log = get_logger("video-worker.listener")


class ListenerState(enum.StrEnum):
    STARTING = "starting"
    LISTENING = "listening"
    RECONNECTING = "reconnecting"
    UNAVAILABLE = "unavailable"  # LISTEN does not deliver here (pooler): polling only
    STOPPED = "stopped"


class Listener:
    def __init__(
        self, url: str, *, on_pending: Callable[[], None], on_cancel: Callable[[uuid.UUID], None]
    ) -> None:
        self.url = url
        self.on_pending = on_pending
        self.on_cancel = on_cancel
        self.state = ListenerState.STARTING
        self.last_error: str | None = None

    async def run(self) -> None:
        """Listen until cancelled; reconnect with backoff on any failure."""
        failures = 0
        while True:
            try:
                await self._listen_once()
                failures = 0
            except asyncio.CancelledError:
                self.state = ListenerState.STOPPED
                raise
            except Exception as exc:
                failures += 1
                self.state = ListenerState.RECONNECTING
                self.last_error = f"{type(exc).__name__}: {exc}".strip()[:300]
                delay = exponential(failures, base=0.5, cap=30.0)
                log.warning("listener_lost", error=self.last_error, retry_in=round(delay, 2))
                await asyncio.sleep(delay)

    async def _listen_once(self) -> None:
        conn = await connect(self.url)
        try:
            await conn.execute(f"listen {CHANNEL}")
            probe = f"probe:{uuid.uuid4()}"
            gen = conn.notifies()
            await self._send_probe(probe)
            if not await self._await_probe(gen, probe):
                self.state = ListenerState.UNAVAILABLE
                self.last_error = "LISTEN delivers nothing on this connection (pooler?)"
                log.warning("listener_unavailable", reason=self.last_error)
                await asyncio.sleep(RETRY_UNAVAILABLE)
                return
            self.state = ListenerState.LISTENING
            self.last_error = None
            log.info("listener_ready", channel=CHANNEL)
            self.on_pending()  # catch up with anything inserted while we were away
            async for note in gen:
                self._dispatch(note.payload)
            raise ConnectionError("notification stream ended")
        finally:
            await conn.close()

    async def _send_probe(self, probe: str) -> None:
        sender = await connect(self.url)
        try:
            await sender.execute("select pg_notify(%s, %s)", (CHANNEL, probe))
        finally:
            await sender.close()

    async def _await_probe(self, gen: Any, probe: str) -> bool:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                async for note in gen:
                    if note.payload == probe:
                        return True
                    self._dispatch(note.payload)
        except TimeoutError:
            return False
        return False

    def _dispatch(self, payload: str) -> None:
        if payload.startswith("cancel:"):
            try:
                self.on_cancel(uuid.UUID(payload.removeprefix("cancel:")))
            except ValueError:
                return
        elif payload == "pending":
            self.on_pending()
