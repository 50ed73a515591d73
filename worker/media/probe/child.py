"""The probe child, the child's side of process.py: confined, it answers one JSON line per input.

It runs as `python -m worker.media.probe.child`, confines itself (confine.py, with the limits of
the config it is started with) and imports only what probing needs (PyAV and the probe), not
the worker's logging or event loop: every job starts one child for its inputs and one for its
output, so each import here is paid twice per job.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from worker.errors import InputError
from worker.media.confine import answered, confine, send
from worker.media.probe.info import Kind, ProbeLimits, info_to_json


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
