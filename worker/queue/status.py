"""The read-only view of a running worker: what /health, /stats, /metrics and the dashboard
show. The HTTP side depends on `StatusView` alone, never on the runner, so it cannot change
what it reports on.

`snapshot()` copies the live state at the moment of the request; the queue's own numbers are
read through `reads` (worker.queue.store.QueueReads) when a request asks for them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Protocol

from worker.log import SecretMasker
from worker.loop_lag import LagReading, LoopLag
from worker.metrics import WorkerMetrics
from worker.queue.listener import Listener, ListenerState
from worker.queue.state import Counters, WorkerState
from worker.queue.store import QueueReads
from worker.settings import Settings


@dataclass(frozen=True)
class Snapshot:
    worker_id: str
    uptime: float  # seconds since the worker started
    draining: bool
    stuck: str | None  # why the replica must be restarted
    loop_alive: bool  # the claim loop turned recently (or is done: draining)
    listener: str  # a ListenerState value
    database_up: bool  # the last statement reached the database
    counters: Counters  # a copy
    in_flight: list[dict[str, Any]]  # one entry per job, for /stats and the dashboard
    loop_lag: LagReading  # how late the event loop ran (worker/loop_lag.py)


class StatusView(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def reads(self) -> QueueReads: ...

    @property
    def metrics(self) -> WorkerMetrics: ...

    @property
    def masker(self) -> SecretMasker: ...

    def snapshot(self) -> Snapshot: ...


@dataclass(frozen=True)
class RunnerStatus:
    """The runner's StatusView: its settings and collaborators, and its live state, read."""

    settings: Settings
    reads: QueueReads
    metrics: WorkerMetrics
    masker: SecretMasker
    state: WorkerState
    listener: Listener | None
    loop_lag: LoopLag

    def snapshot(self) -> Snapshot:
        state = self.state
        return Snapshot(
            worker_id=state.worker_id,
            uptime=round(time.time() - state.started_at, 1),
            draining=state.draining,
            stuck=state.stuck,
            loop_alive=self.loop_alive(),
            listener=self.listener_state(),
            database_up=state.db_ok,
            counters=dataclasses.replace(state.counters),
            in_flight=self.in_flight(),
            loop_lag=self.loop_lag.reading(),
        )

    def listener_state(self) -> str:
        return self.listener.state.value if self.listener else ListenerState.UNAVAILABLE.value

    def loop_alive(self) -> bool:
        limit = max(self.settings.poll_interval * 3, 30.0)
        return self.state.draining or time.monotonic() - self.state.loop_beat < limit

    def in_flight(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [
            {
                "id": str(r.job.id),
                "progress": r.reporter.state.progress,
                "stage": r.reporter.state.stage,
                "message": r.reporter.state.message,
                "attempt": r.job.attempts,
                "running_seconds": round(now - r.started, 1),
            }
            for r in self.state.in_flight.values()
        ]
