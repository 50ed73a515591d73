"""No import cycle in `worker/`, read from the source rather than from what happens to load.

Every module under worker/ is parsed with `ast`, and every import counts wherever it is written:
at the top, inside a function (a lazy import hides a cycle without removing it), or under
`if TYPE_CHECKING`. Two graphs are checked:

- modules: `worker.media.probe.child` → `worker.media.probe.examine`; importing `worker.a.b` from
  outside `worker.a` also runs `worker/a/__init__.py`, so it depends on `worker.a` too;
- parts: the same imports seen from the top (`worker.queue`, `worker.webhooks`, `worker.cli`),
  where a cycle between two packages shows even when no two modules import each other (the
  queue → webhooks → fetch → queue of issue 11 was one).

A failure prints each cycle as `a → b → c → a`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import worker

ROOT = Path(worker.__file__).resolve().parent
Graph = Mapping[str, Iterable[str]]


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """{dotted name: file} for every module and package under `root`."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_names(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The dotted names `name`'s source imports, relative imports resolved; `from a import b`
    counts `a.b` when that is a module, and `a` when `b` is a name defined in `a`."""
    known = set(known)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            modules = {f"{base}.{a.name}" for a in node.names} & known
            found.update(modules)
            if len(modules) < len(node.names):  # a name defined in `base` itself
                found.add(base)
    return found


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: the worker modules it imports}, each with the packages importing it runs."""
    names = module_names(root)
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        edges: set[str] = set()
        for target in imported_names(name, path, names):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                step = ".".join(parts[:i])
                # a module inside a package is imported after that package, not by it
                if step in names and (step == target or not name.startswith(step + ".")):
                    edges.add(step)
        edges.discard(name)
        edges.discard(worker.__name__)  # the root package only names the version
        graph[name] = edges
    return graph


def part_of(name: str) -> str:
    """`worker.queue.jobs` → `worker.queue`; a top-level module is its own part."""
    return ".".join(name.split(".")[:2])


def part_graph(graph: Graph) -> dict[str, set[str]]:
    parts: dict[str, set[str]] = {}
    for name, edges in graph.items():
        mine = parts.setdefault(part_of(name), set())
        mine.update(part_of(e) for e in edges if part_of(e) != part_of(name))
    return parts


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle (first node repeated at the end) for each strongly connected group of nodes
    that has one, found by a depth-first walk; sorted, so a failure reads the same each run."""
    cycles: list[list[str]] = []
    seen: set[str] = set()
    for start in sorted(graph):
        if start in seen:
            continue
        path, on_path = [start], {start}
        stack = [iter(sorted(graph.get(start, ())))]  # the edges left to follow, per node
        seen.add(start)
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                on_path.discard(path.pop())
            elif nxt in on_path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in seen:
                seen.add(nxt)
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return sorted(cycles)


def shown(cycles: list[list[str]]) -> str:
    return "\n".join(" → ".join(cycle) for cycle in cycles)


def test_no_module_imports_itself_back():
    cycles = find_cycles(module_graph())
    assert not cycles, "import cycles between worker modules:\n" + shown(cycles)


def test_no_part_of_the_worker_imports_itself_back():
    cycles = find_cycles(part_graph(module_graph()))
    assert not cycles, "import cycles between parts of the worker:\n" + shown(cycles)


# --- the checker itself ---------------------------------------------------------------------


def test_imports_inside_functions_and_relative_ones_count(tmp_path):
    pkg = tmp_path / "worker"
    (pkg / "queue").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "queue" / "__init__.py").write_text("")
    (pkg / "queue" / "runner.py").write_text("def later():\n    from worker import hooks\n")
    (pkg / "queue" / "jobs.py").write_text("from . import runner\n")
    (pkg / "hooks.py").write_text("from worker.queue.jobs import Job\n")
    graph = module_graph(pkg)
    assert graph["worker.queue.runner"] == {"worker.hooks"}
    assert graph["worker.queue.jobs"] == {"worker.queue.runner"}
    assert graph["worker.hooks"] == {"worker.queue", "worker.queue.jobs"}
    assert find_cycles(graph) == [
        ["worker.hooks", "worker.queue.jobs", "worker.queue.runner", "worker.hooks"]
    ]
    assert find_cycles(part_graph(graph)) == [["worker.hooks", "worker.queue", "worker.hooks"]]


def test_the_graph_sees_the_workers_lazy_imports():
    """The CLI imports its commands inside a function, to start fast; that edge is seen."""
    graph = module_graph()
    assert "worker.commands" in graph["worker.cli"]
    assert "worker.media.probe.examine" in graph["worker.media.probe.child"]  # inside main()


def test_cycles_are_found_and_printed_in_order():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["d", "d"]]
    assert shown([["a", "b", "a"]]) == "a → b → a"
    assert find_cycles({"a": {"b"}, "b": set()}) == []
