"""The mix child: pass one's measures in, pass two's gains and ducking commands out, confined.

    worker (mix_process.py: plan_mix_confined)    child: python -m worker.media.sound.mix_child
    request ── JSON line ──▶ read the per-100 ms measures pass one wrote (mix_plan.py),
                             plan gains, envelope, loudness correction; write the envelope's
                             `asendcmd` file (bounded: at most 2,000 segments)
      ◀── JSON line: {"made": {gains, envelope, fades}} | {"limit": "memory"} | {"failed": "…"}

The measures hold one entry per 100 ms of the output, whose length an end user chooses, so
reading them and planning the envelope is work that grows with what a user sent: it runs here,
confined as every confined child is (confine.py: address space, CPU time, dies with the
worker), not in the worker's event loop. The worker gets a few numbers back and the child's
one file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from worker.media.confine import answered, confine, send
from worker.media.sound.duck import COMMANDS_FILE
from worker.media.sound.mix_plan import plan_mix

COMMANDS_BYTES = 1024 * 1024  # the envelope's file: 2,000 segments of two short lines each


def make(request: dict[str, Any]) -> dict[str, Any]:
    """Plan the mix from the measures in the request's folder; write the envelope's commands."""
    folder = Path(request["directory"])
    music = None if request["music"] is None else SimpleNamespace(**request["music"])
    mix = plan_mix(folder, int(request["samples"]), music, float(request["target"]),
                   (int(request["fades"][0]), int(request["fades"][1])))  # fmt: skip
    if mix.envelope is not None:
        (folder / COMMANDS_FILE).write_text(mix.envelope.commands(), encoding="utf-8")
    return asdict(mix)


def main(argv: Sequence[str]) -> int:
    confine(json.loads(argv[0]))
    request = json.loads(sys.stdin.readline())
    send(answered(lambda: {"made": make(request)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
