"""Hypothesis profiles for the property tests, chosen by `HYPOTHESIS_PROFILE`.

- `ci` (the default): 200 examples a test, derandomized (the same examples on every run, so a
  CI failure reproduces anywhere) and no example database; the whole folder runs in seconds.
- `release`: 5,000 examples a test, random, with Hypothesis' example database (`.hypothesis/`)
  so a failure found once is tried first next time. Before a release:
  `HYPOTHESIS_PROFILE=release .venv/bin/pytest -q tests/property`.

No deadline in either: the machine is shared, and a slow example is not a failure here (these
properties are about what is raised, not how fast).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, database=None)
settings.register_profile("release", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
