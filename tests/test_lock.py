"""requirements.lock, which the Docker image installs from (`--require-hashes`), agrees with
pyproject.toml: every production dependency is pinned within its range, every pin carries
hashes, and nothing of development's is in it (the embedded Postgres, the test tools).

Regenerate it after changing pyproject.toml's dependencies (uv is on PyPI):
    uv pip compile pyproject.toml --universal --generate-hashes --no-emit-package pgserver \\
        --python-version 3.11 -o requirements.lock
CI (.ci/run) also installs it into a fresh venv, as the image does.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DEVELOPMENT_ONLY = {"pgserver"}  # the embedded Postgres: `pip install .` has it, images do not


def locked() -> dict[str, list[tuple[str, str, int]]]:
    """name -> [(version, marker, hashes)] as the lock pins them (a name may be pinned twice,
    for different Pythons)."""
    pins: dict[str, list[tuple[str, str, int]]] = {}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    for block in blocks:
        match = re.match(r"([A-Za-z0-9._-]+)==([^\s;]+)\s*(?:;\s*([^\\\n]+))?", block)
        if match:
            name, version, marker = match.groups()
            pins.setdefault(canonicalize_name(name), []).append(
                (version, (marker or "").strip(), block.count("--hash=sha256:"))
            )
    return pins


def production() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(spec) for spec in project["dependencies"]]


def test_every_production_dependency_is_pinned_within_its_range() -> None:
    pins = locked()
    for requirement in production():
        name = canonicalize_name(requirement.name)
        if name in DEVELOPMENT_ONLY:
            assert name not in pins, f"{name} is for development; the image must not have it"
            continue
        assert name in pins, f"{name} is in pyproject.toml but not in requirements.lock"
        for version, _, _ in pins[name]:
            assert requirement.specifier.contains(version, prereleases=True), (name, version)


def test_every_pin_carries_hashes_and_no_test_tool_is_locked() -> None:
    pins = locked()
    assert all(hashes for entries in pins.values() for _, _, hashes in entries)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    tools = {
        canonicalize_name(Requirement(s).name) for s in project["optional-dependencies"]["test"]
    }
    assert not tools & set(pins), tools & set(pins)


def test_an_image_without_the_embedded_postgres_says_to_set_database_url(tmp_path, monkeypatch):
    """The lock leaves pgserver out: a worker installed from it and started without
    DATABASE_URL says what to set, in one line (the CLI prints SettingsError's words)."""
    import sys

    import pytest

    from worker.db.embedded import embedded_url
    from worker.settings import SettingsError

    monkeypatch.setitem(sys.modules, "pgserver.postgres_server", None)  # as if not installed
    with pytest.raises(SettingsError, match="DATABASE_URL is not set, and the embedded Postgres"):
        embedded_url(tmp_path / "home")
