"""The child's side of process.py: confined, it answers one JSON line per input.

It runs as `python -m worker.media.probe.child` and imports only what probing needs (PyAV and
the probe), not the worker's logging or event loop: every job starts one child for its inputs
and one for its output, so each import here is paid twice per job.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from worker.errors import InputError
from worker.media.confine import die_with_parent, enter_confinement
from worker.media.probe.info import Kind, ProbeLimits, info_to_json

# Extra CPU seconds the child may use past its per-input budget (start-up, imports).
CPU_SLACK_SECONDS = 5


def confine(config: dict[str, Any]) -> None:
    """Limits the kernel enforces on this process, set before any input is opened.

    Address space bounds memory (FFmpeg's allocations fail, and we report the limit); CPU time
    is a backstop for a child that outlives its parent's deadline; the child writes no file
    larger than `file_bytes` (the probe none at all) and leaves no core dumps; and it dies with
    the worker, so no child is ever orphaned. picture/caption_child.py confines itself the same way.
    """
    import resource

    memory = int(config["memory_bytes"])
    cpu = math.ceil(float(config["timeout"])) * int(config["inputs"]) + CPU_SLACK_SECONDS
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    file_bytes = int(config.get("file_bytes", 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    die_with_parent(int(config["parent"]))
    enter_confinement()


def _answer(request: dict[str, Any], limits: ProbeLimits) -> dict[str, Any]:
    from worker.media.probe.examine import describe, probe

    source, path, mode = str(request["source"]), Path(request["path"]), request["mode"]
    try:
        if mode == "describe":
            info = describe(path, source, limits)
        else:
            kinds: dict[str, Kind] = {"audio": "audio", "image": "image", "visual": "visual"}
            info = probe(path, source, kinds.get(mode, "clip"), limits)
    except InputError as exc:
        return {"refused": exc.problem}
    except MemoryError:
        return {"limit": "memory"}
    return {"info": info_to_json(info)}


def main(argv: Sequence[str]) -> int:
    import worker.media.probe.examine  # noqa: F401  (PyAV's own footprint is not the file's cost)

    config = json.loads(argv[0])
    confine(config)
    limits = ProbeLimits(**{k: config[k] for k in ProbeLimits.__dataclass_fields__})
    for line in sys.stdin:
        send(answered(lambda: _answer(json.loads(line), limits)))  # noqa: B023 (called at once)
    return 0


def answered(answer: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`answer()`, or the reply that says why there is none: the memory limit, or a bug or an
    unforeseen file (its trace goes to stderr, which the worker logs)."""
    try:
        return answer()
    except MemoryError:
        return {"limit": "memory"}
    except Exception as exc:
        import traceback

        traceback.print_exc()
        return {"failed": f"{type(exc).__name__}: {exc}"[:500]}


def send(reply: dict[str, Any]) -> None:
    """One JSON line to the worker."""
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
