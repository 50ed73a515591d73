"""No import cycle in `worker/`, and no import against its layers, read from the source rather
than from what happens to load.

Every module under worker/ is parsed with `ast`, and every import counts wherever it is written:
at the top, inside a function (a lazy import hides a cycle without removing it), or under
`if TYPE_CHECKING`. Two graphs are checked:

- modules: `worker.media.probe.child` → `worker.media.probe.examine`; importing `worker.a.b` from
  outside `worker.a` also runs `worker/a/__init__.py`, so it depends on `worker.a` too;
- parts: the same imports seen from the top (`worker.queue`, `worker.webhooks`, `worker.cli`),
  where a cycle between two packages shows even when no two modules import each other (say
  queue → webhooks → fetch → queue).

The parts also keep to one order, `LAYERS`: a part imports only parts of the layers below its
own. A failure prints each cycle as `a → b → c → a`, and each import against the order as the
module that makes it, the module it names, and the rule it breaks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import worker

ROOT = Path(worker.__file__).resolve().parent
Graph = Mapping[str, Iterable[str]]

# The parts of the worker from the top down, as the code has them. A part may import the parts
# of any layer below its own; the parts of one layer do not import each other. A new top-level
# module or package goes in the lowest layer its imports allow. A subpackage belongs to its
# top-level part (`worker.media.probe` is `worker.media`), so moving modules inside a part
# changes nothing here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("worker.__main__",),  # `python -m worker`
    ("worker.cli",),  # the command line: parser, commands, demo, progress on a terminal
    ("worker.app",),  # the daemon put together: queue, pipeline, HTTP, webhooks
    ("worker.pipeline", "worker.webhooks", "worker.http", "worker.cleanup", "worker.liveness"),
    ("worker.queue", "worker.payload", "worker.fetch"),
    ("worker.db", "worker.storage", "worker.media", "worker.metrics", "worker.row_error"),
    ("worker.settings", "worker.loop_lag", "worker.retry"),
    ("worker.errors", "worker.log"),
)


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
    """`worker.queue.postgres` → `worker.queue`, `worker.media.probe.child` → `worker.media`;
    a top-level module is its own part."""
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


def layer_breaches(graph: Graph, layers: Sequence[Sequence[str]] = LAYERS) -> list[str]:
    """Every import from a part to a part of a higher layer or of its own layer, one line each
    (`importer → imported: why`), after a line for each part in no layer and each name in
    `layers` that is no part. The root package (it only names the version) is in no layer."""
    depth = {part: n for n, layer in enumerate(layers) for part in layer}
    parts = {part_of(name) for name in graph} - {worker.__name__}
    found = [f"{part} is in no layer of LAYERS" for part in sorted(parts - depth.keys())]
    found += [f"LAYERS names {part}, which is no part" for part in sorted(depth.keys() - parts)]
    for name in sorted(graph):
        mine = part_of(name)
        for target in sorted(graph[name]):
            theirs = part_of(target)
            if mine == theirs or mine not in depth or theirs not in depth:
                continue
            if depth[theirs] < depth[mine]:
                found.append(f"{name} → {target}: {mine} is below {theirs}")
            elif depth[theirs] == depth[mine]:
                found.append(f"{name} → {target}: {mine} and {theirs} share a layer")
    return found


def test_no_module_imports_itself_back():
    cycles = find_cycles(module_graph())
    assert not cycles, "import cycles between worker modules:\n" + shown(cycles)


def test_no_part_of_the_worker_imports_itself_back():
    cycles = find_cycles(part_graph(module_graph()))
    assert not cycles, "import cycles between parts of the worker:\n" + shown(cycles)


def test_each_part_imports_only_the_layers_below_its_own():
    breaches = layer_breaches(module_graph())
    assert not breaches, "imports against the layer order (LAYERS):\n" + "\n".join(breaches)


def test_the_picture_and_the_sound_start_their_children_without_the_probe():
    """The caption and mix children are confined children of their own (media/child_process.py
    and media/confine.py), not probes: picture/ and sound/ import neither side of the probe's."""
    graph = module_graph()
    probes = {"worker.media.probe.process", "worker.media.probe.child"}
    borrowed = sorted(
        f"{name} → {target}"
        for name, edges in graph.items()
        if name.startswith(("worker.media.picture", "worker.media.sound"))
        for target in edges & probes
    )
    assert not borrowed, "\n".join(borrowed)


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
    assert "worker.cli.commands" in graph["worker.cli.parser"]
    assert "worker.media.probe.examine" in graph["worker.media.probe.child"]  # inside main()


def test_imports_against_the_layers_are_named():
    graph = {
        "worker.cli.commands": {"worker.queue.runner", "worker.queue"},  # down: allowed
        "worker.queue.runner": {"worker.queue.store", "worker.errors"},
        "worker.queue.store": set(),
        "worker.errors": {"worker.cli", "worker.cli.commands"},  # up
        "worker.media.probe.child": {"worker.media.sound.mix", "worker.log"},  # one part
        "worker.media.sound.mix": {"worker.log", "worker.settings"},  # sideways
        "worker.settings": set(),
        "worker.log": set(),
        "worker.extra": set(),
        "worker": set(),
    }
    layers = [
        ["worker.cli"],
        ["worker.queue"],
        ["worker.media", "worker.settings"],
        ["worker.errors", "worker.log", "worker.gone"],
    ]
    assert layer_breaches(graph, layers) == [
        "worker.extra is in no layer of LAYERS",
        "LAYERS names worker.gone, which is no part",
        "worker.errors → worker.cli: worker.errors is below worker.cli",
        "worker.errors → worker.cli.commands: worker.errors is below worker.cli",
        "worker.media.sound.mix → worker.settings: worker.media and worker.settings share a layer",
    ]


def test_cycles_are_found_and_printed_in_order():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["d", "d"]]
    assert shown([["a", "b", "a"]]) == "a → b → a"
    assert find_cycles({"a": {"b"}, "b": set()}) == []
