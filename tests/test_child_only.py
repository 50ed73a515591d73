"""The rule "bytes an end user supplies are parsed only in a confined child", held by reading the
worker's source.

A parser of user files (media, images, caption files, subtitle documents) costs time and memory
that grow with what the user sent; run in the worker's event loop or one of its threads it can
stall every job on the replica (the GIL makes a thread no shelter). So these functions may be
named only by the modules that run in a confined child (probe/child.py, picture/caption_child.py,
sound/mix_child.py) and by the modules that define them. `child_only` also makes the caption ones
raise at run time outside a child; this test covers the probe's too, and any function marked
`@child_only` later.

The children are the modules that confine themselves (`confine`, confine.py), and they stay
light and on their side of the process line: none of them imports the worker's side
(child_process.py, which starts them, and the modules that ask them), and confine.py, which
every child imports at start, imports no other worker module, no event loop and no logging.
"""

from __future__ import annotations

import ast
from pathlib import Path

import worker
from tests.test_imports import module_graph

ROOT = Path(worker.__file__).parent
# Parsers of user bytes that are not marked `child_only` (the tests call them in-process to
# inspect what the worker wrote), by module.
PARSERS = {
    "worker.media.probe.examine": {"probe", "describe"},
    "worker.media.probe.image_header": {"read_header", "sniff"},
}
# The children's entry points (probe, caption, mix): each confines itself before it reads.
CHILD_ENTRY_POINTS = {
    "worker.media.probe.child",
    "worker.media.picture.caption_child",
    "worker.media.sound.mix_child",
}
# What runs in a child: the entry points, and probe/examine.py, which only the probe child
# imports (the import graph test in tests/test_imports.py holds that).
CHILD_MODULES = CHILD_ENTRY_POINTS | {"worker.media.probe.examine"}
CHILD_SIDE = "worker.media.confine"
# The worker's side of the children: the process that starts them, the modules that ask them.
WORKER_SIDE = {
    "worker.media.child_process",
    "worker.media.probe.process",
    "worker.media.picture.caption_render",
    "worker.media.sound.mix_process",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in sorted(ROOT.rglob("*.py"))}


def marked_child_only(tree: ast.Module) -> set[str]:
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(isinstance(d, ast.Name) and d.id == "child_only" for d in node.decorator_list)
    }


def user_byte_parsers(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    found = {module: set(names) for module, names in PARSERS.items()}
    for module, tree in trees.items():
        if marked := marked_child_only(tree):
            found.setdefault(module, set()).update(marked)
    return found


def uses(tree: ast.Module, module: str, names: set[str]) -> set[str]:
    """Which of `module`'s `names` this tree imports by name or reaches as an attribute of an
    imported module (`probe.probe`, `worker.media.probe.examine.describe`)."""
    used: set[str] = set()
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.module == module:
                used |= {a.name for a in node.names} & names
            aliases |= {a.asname or a.name for a in node.names
                        if f"{node.module}.{a.name}" == module}  # fmt: skip
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name == module}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in names:
            if ast.unparse(node.value) in aliases:
                used.add(node.attr)
    return used


def test_only_the_confined_children_name_a_parser_of_user_bytes() -> None:
    trees = sources()
    parsers = user_byte_parsers(trees)
    known = {"words_from_srt", "ass_lines", "read_caption_file", "plan_mix"}
    assert known <= set().union(*parsers.values())
    offenders = []
    for module, tree in trees.items():
        if module in CHILD_MODULES:
            continue
        for defining, names in parsers.items():
            if module == defining:
                continue
            for name in sorted(uses(tree, defining, names)):
                offenders.append(f"{module} uses {defining}.{name}")
    assert not offenders, (
        "user bytes may be parsed only in a confined child (probe, caption or mix child): "
        + "; ".join(offenders)
    )


def test_the_check_sees_a_parser_named_from_the_worker_side() -> None:
    """The checker itself: an import by name and an attribute use are both found."""
    by_name = ast.parse("from worker.media.probe.examine import probe\nprobe(p, 's')\n")
    by_attribute = ast.parse(
        "from worker.media.picture import captions\ncaptions.words_from_srt(t)\n"
    )
    assert uses(by_name, "worker.media.probe.examine", {"probe"}) == {"probe"}
    assert uses(by_attribute, "worker.media.picture.captions", {"words_from_srt"}) == {
        "words_from_srt"
    }
    assert uses(by_attribute, "worker.media.picture.captions", {"ass_lines"}) == set()


def reached(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every worker module that importing `start` may import, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for name in graph.get(todo.pop(), ()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def test_the_children_are_the_modules_that_confine_themselves() -> None:
    trees = sources()
    confining = {m for m, tree in trees.items() if uses(tree, CHILD_SIDE, {"confine"})}
    assert confining == CHILD_ENTRY_POINTS


def test_no_child_imports_the_workers_side() -> None:
    graph = module_graph()
    crossing = {
        child: sorted(reached(graph, child) & (WORKER_SIDE | {"worker.media.ffmpeg"}))
        for child in sorted(CHILD_MODULES)
    }
    assert crossing == {child: [] for child in sorted(CHILD_MODULES)}


def test_the_childs_side_imports_nothing_heavy() -> None:
    """confine.py is imported at every child's start: no worker module, no event loop, no
    logging (`ctypes` and `resource` only where they are used)."""
    assert reached(module_graph(), CHILD_SIDE) == set()
    tree = sources()[CHILD_SIDE]
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}  # fmt: skip
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom)}  # fmt: skip
    assert not imported & {"asyncio", "logging", "structlog", "worker"}


def test_no_child_loads_the_event_loop_logging_or_a_database_driver() -> None:
    """Each child starts once or twice per job: what its module loads is paid each time. Read
    from what importing it really loads (a fresh interpreter), lazy imports aside."""
    import subprocess
    import sys

    heavy = ("asyncio", "structlog", "worker.log", "psycopg", "aiohttp", "boto3", "pydantic")
    for child in sorted(CHILD_ENTRY_POINTS):
        code = f"import sys, {child}; print(' '.join(n for n in {heavy!r} if n in sys.modules))"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert (child, done.stdout.split()) == (child, [])
