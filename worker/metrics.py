"""Prometheus metrics for one worker, in a registry of its own (several workers can share a
process in tests). Names follow the conventions: `video_worker_` prefix, `_total` counters,
`_seconds` units, and no job ids as labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from worker.loop_lag import TICK, WINDOW

OUTCOMES = ("completed", "failed", "cancelled", "retried")


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.jobs = Counter(
            "video_worker_jobs",
            "Job attempts finished here, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.jobs.labels(outcome)
        self.duration = Histogram(
            "video_worker_job_duration_seconds",
            "Wall time of job attempts, by outcome.",
            ["outcome"],
            registry=self.registry,
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, float("inf")),
        )
        self.queue = Gauge(
            "video_worker_queue_jobs",
            "Jobs in video_jobs, by status.",
            ["status"],
            registry=self.registry,
        )
        self.queue_estimated = Gauge(
            "video_worker_queue_jobs_estimated",
            "1 where video_worker_queue_jobs is estimated from planner statistics (finished "
            "statuses on a large table), 0 where it is an exact count.",
            ["status"],
            registry=self.registry,
        )
        self.oldest_ready = Gauge(
            "video_worker_queue_oldest_ready_seconds",
            "Age of the oldest ready pending job.",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "video_worker_in_flight_jobs", "Jobs this replica is running.", registry=self.registry
        )
        self.last_success = Gauge(
            "video_worker_last_success_timestamp_seconds",
            "Unix time of the last job completed here.",
            registry=self.registry,
        )
        self.up = Gauge(
            "video_worker_database_up",
            "1 when the database answered last time.",
            registry=self.registry,
        )
        self.listening = Gauge(
            "video_worker_listener_up", "1 while LISTEN/NOTIFY delivers.", registry=self.registry
        )
        self.loop_lag = Gauge(
            "video_worker_event_loop_lag_seconds",
            f"Worst lateness of the event loop over the last {WINDOW:g} s "
            f"(a timer checked every {TICK:g} s; worker/loop_lag.py).",
            registry=self.registry,
        )
        self.loop_lag_max = Gauge(
            "video_worker_event_loop_lag_max_seconds",
            "Worst lateness of the event loop since the worker started.",
            registry=self.registry,
        )

    def job_finished(self, outcome: str, seconds: float) -> None:
        self.jobs.labels(outcome).inc()
        self.duration.labels(outcome).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
