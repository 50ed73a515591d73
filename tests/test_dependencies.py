"""Every dependency pyproject.toml declares is one the worker uses: no package is installed into
production images (or audited) for nothing. ffmpeg-python was declared and imported by nothing;
the FFmpeg graphs are built as strings by worker/media/, where every option is ours to check.

A dependency is used when the worker imports one of its top-level modules, or is one of the
pip font packages fonts.py finds by name with importlib (`PIP_FONT_MODULES`).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

import worker
from worker.media.picture.fonts import PIP_FONT_MODULES

ROOT = Path(worker.__file__).resolve().parents[1]


def declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [re.split(r"[\s\[<>=;!~]", spec, maxsplit=1)[0] for spec in project["dependencies"]]


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def modules_of(distribution: str) -> set[str]:
    found = set()
    for module, distributions in importlib.metadata.packages_distributions().items():
        if normal(distribution) in {normal(d) for d in distributions}:
            found.add(module)
    return found


def used_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "worker").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names | set(PIP_FONT_MODULES)


def test_every_declared_dependency_is_used_by_the_worker() -> None:
    used = used_names()
    unused = [d for d in declared() if not modules_of(d) & used]
    assert not unused, f"declared in pyproject.toml, used by nothing in worker/: {unused}"


def test_the_check_knows_an_unused_declaration() -> None:
    assert "ffmpeg-python" not in declared()
    assert modules_of("psycopg-pool") == {"psycopg_pool"}
    assert "psycopg_pool" in used_names() and "yaml" not in used_names()
