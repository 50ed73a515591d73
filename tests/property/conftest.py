"""Hypothesis profiles for the property tests, chosen by `HYPOTHESIS_PROFILE`.

- `ci` (the default): 200 examples a test, derandomized (the same examples on every run, so a
  CI failure reproduces anywhere) and no example database; the whole folder runs in seconds.
- `fast`: the same with 50 examples, the default in the fast tier (`pytest -m "not slow"`),
  which runs after each change; the full suite (the README's test command, and CI's) runs 200.
- `release`: 5,000 examples a test, random, with Hypothesis' example database (`.hypothesis/`)
  so a failure found once is tried first next time. Before a release:
  `HYPOTHESIS_PROFILE=release .venv/bin/pytest -q tests/property`.

No deadline in any: the machine is shared, and a slow example is not a failure here (these
properties are about what is raised, not how fast).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, database=None)
settings.register_profile("fast", settings.get_profile("ci"), max_examples=50)
settings.register_profile("release", max_examples=5000, deadline=None)


def pytest_configure(config: pytest.Config) -> None:
    fast_tier = "not slow" in (config.getoption("markexpr") or "")
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast" if fast_tier else "ci"))
