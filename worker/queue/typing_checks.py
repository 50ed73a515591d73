"""Checked by mypy, imported by nothing: both job stores keep to the ports of store.py.

Each assignment below fails type checking when a store lacks a method of `RunnerStore` or
differs from it in a signature. What the stores do is checked by tests/queue/test_conformance.py,
which runs one suite against both. (Inside store.py this check made store ↔ postgres and
store ↔ memory import cycles, which tests/test_imports.py refuses.)
"""

from __future__ import annotations

from worker.queue.memory import MemoryJobStore
from worker.queue.postgres import PostgresJobStore
from worker.queue.store import RunnerStore

_postgres: type[RunnerStore] = PostgresJobStore
_memory: type[RunnerStore] = MemoryJobStore
