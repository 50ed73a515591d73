"""A claimed job parses its own payload text, within limits on size, depth and numbers."""

from __future__ import annotations

import json
import uuid

import pytest

from worker.errors import PayloadError
from worker.queue.models import MAX_DEPTH, MAX_NUMBER_CHARS, Job, parse_json


def job(text: str | None, size: int | None = None, limit: int = 1000) -> Job:
    return Job.from_row(
        {
            "id": uuid.uuid4(),
            "payload": text,
            "payload_bytes": len(text.encode()) if size is None else size,
            "attempts": 1,
            "max_attempts": 3,
            "lease_token": uuid.uuid4(),
        },
        limit,
    )


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


def deep_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def refused(text: str) -> str:
    with pytest.raises(PayloadError) as caught:
        parse_json(text)
    assert caught.value.field == "payload"
    return str(caught.value)


def test_an_ordinary_payload_parses_as_json_does():
    words = [{"word": f"w{i}", "start": i * 0.25, "end": i * 0.25 + 0.2} for i in range(2000)]
    payload = {
        "clips": [{"url": "https://cdn.example.com/a.mp4", "start": 1.5, "transcript": words}],
        "output": {"width": 1080, "height": 1920, "fps": 29.97},
        "note": "[[[[ {{{{ brackets inside a string are text" * 50,
    }
    text = json.dumps(payload)
    assert parse_json(text) == json.loads(text)


@pytest.mark.parametrize("depth", [3000, 100_000])
def test_deep_arrays_are_refused(depth):
    assert refused(nested(depth)) == f"payload: is nested more than {MAX_DEPTH} levels deep"


def test_deep_objects_are_refused():
    assert refused(deep_objects(3000)) == f"payload: is nested more than {MAX_DEPTH} levels deep"


def test_depth_is_counted_exactly_at_the_limit():
    assert parse_json(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    assert parse_json(deep_objects(MAX_DEPTH)) is not None
    assert "nested more than" in refused(nested(MAX_DEPTH + 1))
    assert "nested more than" in refused(deep_objects(MAX_DEPTH + 1))
    # deep inside an ordinary payload, next to wide parts
    inner = '{"clips": [{"url": "x", "transcript": ' + nested(MAX_DEPTH) + "}]}"
    assert "nested more than" in refused(inner)


@pytest.mark.parametrize(
    "literal",
    ["1" * 5000, "-" + "9" * 5000, "1" + "0" * 5000, "0." + "0" * 5000 + "1", "1." + "5" * 400],
    ids=["5000-digit", "negative", "1e5000 as Postgres writes it", "1e-5000", "long fraction"],
)
def test_long_numbers_are_refused_before_conversion(literal):
    message = refused('{"clips": [{"start": ' + literal + "}]}")
    assert message == (
        f"payload: has a number {len(literal)} characters long; "
        f"at most {MAX_NUMBER_CHARS} are allowed"
    )


def test_numbers_up_to_the_limit_parse():
    big = "9" * MAX_NUMBER_CHARS
    assert parse_json(f"[{big}]") == [int(big)]
    tiny = "0." + "0" * 320 + "5"  # 5e-321, a subnormal double written out in full
    assert parse_json(f"[{tiny}]") == [float(tiny)]


def test_a_number_too_large_for_a_float_is_refused():
    assert refused("[" + "9" * 350 + ".5]") == "payload: has a number too large to use"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused(constant):
    assert refused(f"[{constant}]") == f"payload: has {constant}, which is not a JSON number"


def test_the_payload_property_parses_once_and_raises_payload_errors():
    j = job('{"clips": [1]}')
    assert j.payload == {"clips": [1]}
    assert j.payload is j.payload  # parsed once
    with pytest.raises(PayloadError, match="nested more than"):
        _ = job(nested(3000)).payload


def test_a_withheld_payload_reports_its_size_and_the_limit():
    j = job(None, size=52_428_800, limit=1_048_576)
    with pytest.raises(PayloadError) as caught:
        _ = j.payload
    assert str(caught.value) == "payload: is 52428800 bytes; at most 1048576 are allowed"
    with pytest.raises(PayloadError):
        j.check_payload_size()
    job("{}").check_payload_size()  # within the limit: nothing to say
