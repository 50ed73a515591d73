"""The fast tier, `pytest -m "not slow"`, touches every package of the worker, and the lists in
tests/conftest.py that leave tests to the full suite name tests that exist.

Read from the source with `ast`, without collecting (which would cost seconds): a package counts
as touched when a test file outside SLOW_FILES imports it or one of its modules (at the top or
inside a test) and keeps at least one test in the fast tier, one not decorated
`@pytest.mark.slow` and not in SLOW_TESTS. A test in ONE_CASE_FAST keeps one case, so it counts.
This says which files reach a package, not how much of it they run.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import worker
from tests.conftest import ONE_CASE_FAST, SLOW_FILES, SLOW_TESTS, TESTS

WORKER = Path(worker.__file__).resolve().parent
EMPTY = ast.Module(body=[], type_ignores=[])


def packages() -> list[str]:
    """Every package under worker/ (`worker.cli`, `worker.media.probe`, ...), not the root."""
    return sorted(
        ".".join(("worker", *init.parent.relative_to(WORKER).parts))
        for init in WORKER.rglob("__init__.py")
        if init.parent != WORKER
    )


@functools.cache
def parsed_files() -> dict[str, ast.Module]:
    """Every test file under tests/, by its path there, parsed (once)."""
    return {
        path.relative_to(TESTS).as_posix(): ast.parse(path.read_text(), str(path))
        for path in sorted(TESTS.rglob("test_*.py"))
    }


def imported(tree: ast.Module) -> set[str]:
    """The worker modules a file names in its imports, wherever they are written."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.startswith("worker.")}


def defined_tests(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """The test functions a file defines at its top level, by name."""
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def marked_slow(test: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any("mark.slow" in ast.unparse(decorator) for decorator in test.decorator_list)


def file_marked_slow(tree: ast.Module) -> bool:
    """A module-level `pytestmark` that names the slow mark."""
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        and "mark.slow" in ast.unparse(node.value)
        for node in tree.body
    )


def fast_tests(path: str, tree: ast.Module) -> list[str]:
    """The tests of one file that run in the fast tier (all of a test or one case of it)."""
    if path in SLOW_FILES or file_marked_slow(tree):
        return []
    return [
        name
        for name, test in defined_tests(tree).items()
        if f"{path}::{name}" not in SLOW_TESTS and not marked_slow(test)
    ]


def reaches(package: str, modules: set[str]) -> bool:
    return any(module == package or module.startswith(f"{package}.") for module in modules)


def test_the_fast_tier_touches_every_package_of_the_worker() -> None:
    files = {path: imported(tree) for path, tree in parsed_files().items()}
    fast = [modules for path, modules in files.items() if fast_tests(path, parsed_files()[path])]
    untouched = {
        package: sorted(path for path, modules in files.items() if reaches(package, modules))
        for package in packages()
        if not any(reaches(package, modules) for modules in fast)
    }
    assert not untouched, (
        "packages no fast test file imports (and the slow files that do): " + repr(untouched)
    )


def test_the_tier_lists_name_tests_that_exist() -> None:
    files = parsed_files()
    missing_files = sorted(path for path in SLOW_FILES if path not in files)
    named = [*SLOW_TESTS, *ONE_CASE_FAST]
    missing_tests = sorted(
        test
        for test in named
        if test.partition("::")[2] not in defined_tests(files.get(test.partition("::")[0], EMPTY))
    )
    assert (missing_files, missing_tests) == ([], []), "renamed or moved? update tests/conftest.py"


def test_the_check_tells_fast_tests_from_slow_ones() -> None:
    tree = ast.parse(
        "import pytest\n"
        "from worker.fetch import guard\n"
        "@pytest.mark.slow\n"
        "def test_a(): guard\n"
        "def test_b():\n"
        "    from worker.queue.models import Job\n"
    )
    assert {"worker.fetch", "worker.queue.models"} <= imported(tree)
    assert fast_tests("queue/test_x.py", tree) == ["test_b"]
    assert fast_tests(sorted(SLOW_FILES)[0], tree) == []  # a whole file left to the full suite
    assert reaches("worker.queue", imported(tree)) and not reaches("worker.que", {"worker.queue"})
