"""mypy's proof that both stores keep to the ports in store.py.

Nothing imports this module: it exists to be type-checked. (Inside store.py the same check
made store ↔ jobs and store ↔ memory import cycles, which tests/test_imports.py refuses.)
"""

from __future__ import annotations

from worker.queue.jobs import JobStore
from worker.queue.memory import MemoryJobStore
from worker.queue.store import Store

_postgres: type[Store] = JobStore
_memory: type[Store] = MemoryJobStore
