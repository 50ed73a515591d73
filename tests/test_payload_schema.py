"""docs/payload.schema.json: generated from the payload models, committed, true to the parser."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from tests.test_payload import COMPOSITION_EXAMPLE, SPEC_EXAMPLE
from worker.cli import main
from worker.errors import PayloadError
from worker.payload import parse_payload
from worker.payload.schema import schema_json
from worker.settings import DEFAULT_MAX_OUTPUT_SECONDS, Settings

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "payload.schema.json"
SETTINGS = Settings()


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_what_the_models_generate() -> None:
    assert SCHEMA_FILE.read_text() == schema_json(), (
        "docs/payload.schema.json differs from the payload models; regenerate it with "
        "`video-worker schema > docs/payload.schema.json` and commit it"
    )


def test_the_schema_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == SCHEMA_FILE.read_text()


@pytest.mark.parametrize("example", [SPEC_EXAMPLE, COMPOSITION_EXAMPLE], ids=["v1", "composition"])
def test_the_contracts_examples_pass_the_schema_and_the_parser(validator, example) -> None:
    validator.validate(example)
    parse_payload(example, SETTINGS)


def test_null_counts_as_absent_in_the_schema_too(validator) -> None:
    raw = copy.deepcopy(COMPOSITION_EXAMPLE)
    raw.update(audio=None, version=None)
    raw["clips"][0].update(start=None, end=None, volume=None, motion=None, transition=None)
    raw["clips"][1].update(audio=None, duration=None, easing=None)
    raw["captions"].update(style=None, color=None, words=None)
    raw["output"].update(width=None, fit=None, fade_in=None)
    raw["overlays"][1].update(size=None, end=None)
    validator.validate(raw)
    parse_payload(raw, SETTINGS)


def _edit(path: str, value: object) -> dict[str, object]:
    """The composition example with one value replaced, `path` like "clips.0.volume"."""
    raw = copy.deepcopy(COMPOSITION_EXAMPLE)
    *parents, last = path.split(".")
    node: object = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value  # type: ignore[index]
    return raw


REFUSED_BY_BOTH = [
    ("clips", []),
    ("version", 2),
    ("clips.0.url", "ftp://x/a.mp4"),
    ("clips.0.volume", 1.5),
    ("clips.0.transition.type", "spin"),
    ("clips.0.transition.duration", 0),
    ("clips.0.transition.duration", 1e308),  # every time: at most MAX_OUTPUT_SECONDS' default
    ("clips.1.duration", 1801),
    ("clips.0.audio.0.fade_in", 1e308),
    ("clips.0.transcript", {"words": [{"word": "Hello", "start": 0.2, "end": 1801}]}),
    ("overlays.1.end", 1801),
    ("output.fade_out", 1801),
    ("clips.1.motion", "spin"),
    ("clips.1.easing", "bounce"),
    ("clips.0.audio.0.loop", "yes"),
    ("clips.0.transcript", "hello"),
    ("captions.style", "bold"),
    ("captions.color", "white"),
    ("captions.max_words", 2.5),
    ("overlays.0.opacity", -0.1),
    ("overlays.0.position", "middle"),
    ("overlays.1.text", ""),
    ("overlays.1", {"text": "x", "image": "https://x/l.png"}),
    ("output.fade_in", -1),
    ("output", {"width": 1081, "height": 1920}),
    ("output", {"fit": "fill"}),
    ("audio", {"url": "https://x/m.mp3", "volume": 2}),
]


@pytest.mark.parametrize(("path", "value"), REFUSED_BY_BOTH, ids=[p for p, _ in REFUSED_BY_BOTH])
def test_the_schema_refuses_what_the_parser_refuses(validator, path: str, value: object) -> None:
    """A web app validating with the schema learns of these mistakes before inserting the row.
    (The parser checks more than a schema can say: storage keys, end after start, one caption
    source, no transition on the last clip.)"""
    raw = _edit(path, value)
    with pytest.raises(PayloadError):
        parse_payload(raw, SETTINGS)
    assert not validator.is_valid(raw)


def _numbers(node: object, path: str = "") -> list[tuple[str, dict[str, object]]]:
    """Every number or integer schema in `node`, with its JSON pointer."""
    found = []
    if isinstance(node, dict):
        if node.get("type") in ("number", "integer"):
            found.append((path, node))
        for key, value in node.items():
            found += _numbers(value, f"{path}/{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            found += _numbers(value, f"{path}/{n}")
    return found


TIME_NAMES = ("start", "end", "duration", "fade_in", "fade_out", "animation_duration", "t", "from")


def _property(pointer: str) -> str:
    """The name of the innermost property a JSON pointer is in."""
    return pointer.rpartition("/properties/")[2].split("/")[0]


def test_every_number_in_the_schema_has_a_maximum() -> None:
    """A number without a bound is how 1e308 seconds reached planning: a field added
    without one fails here. Every time says MAX_OUTPUT_SECONDS' default (the worker's own
    check reads the operator's value)."""
    numbers = _numbers(json.loads(SCHEMA_FILE.read_text()))
    unbounded = [path for path, node in numbers if "maximum" not in node and "const" not in node]
    assert unbounded == []
    times = {p: n["maximum"] for p, n in numbers if _property(p) in TIME_NAMES}
    # 26 fields of the models (each of the 3 overlay kinds has 5, a video overlay its `from`, a
    # keyframe its t) and a transcript word's 2
    assert len(times) == 28, times
    assert set(times.values()) == {DEFAULT_MAX_OUTPUT_SECONDS}, times
