"""parse_payload's cost, run by hand (never a test): the contract's two example payloads.

    PYTHONPATH=. .venv/bin/python bench/bench_payload.py [--against PATH/TO/old/worker/payload.py]

With --against, that older single-file payload.py is loaded beside this one and both parse the
version-1 example in turn, in the same process (a loaded VM drifts between processes). Each
figure is the best of 15 rounds of 5,000 parses, in microseconds per parse. The single-file
parser before the pydantic models: `git show 695dce7:worker/payload.py > /tmp/payload_v1.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

from tests.test_payload import COMPOSITION_EXAMPLE, SPEC_EXAMPLE  # the contract's examples
from worker.payload import parse_payload
from worker.settings import Settings

SETTINGS = Settings()
NUMBER, ROUNDS = 5000, 15


def best_us(parse: Callable[..., object], raw: object) -> float:
    times = timeit.repeat(lambda: parse(raw, SETTINGS), number=NUMBER, repeat=ROUNDS)
    return min(times) / NUMBER * 1e6


def load(path: Path) -> Callable[..., object]:
    spec = importlib.util.spec_from_file_location("older_payload", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["older_payload"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    parse: Callable[..., object] = module.parse_payload
    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="an older worker/payload.py to compare")
    args = parser.parse_args()
    runs: list[tuple[str, Callable[..., object], object]] = [
        ("this tree, v1 example", parse_payload, SPEC_EXAMPLE),
        ("this tree, composition example", parse_payload, COMPOSITION_EXAMPLE),
    ]
    if args.against:
        older = load(args.against)
        runs += [("older, v1 example", older, SPEC_EXAMPLE)]
        runs += [("this tree, v1 example", parse_payload, SPEC_EXAMPLE)]
        runs += [("older, v1 example", older, SPEC_EXAMPLE)]
    for name, parse, raw in runs:
        print(f"{name:32} {best_us(parse, raw):7.1f} us")


if __name__ == "__main__":
    main()
