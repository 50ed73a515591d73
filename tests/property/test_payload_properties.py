"""Properties of every payload an end user can write: parsing names a field, planning refuses
by name, and neither ever raises anything else (issue 15: `duration: 1e308` overflowed in
planning, was retried as unexpected and named nothing).

Payloads come from the payload's JSON Schema and from hostile changes to them (payloads.py);
the inputs' probe results are fabricated (files.py), so planning runs without FFmpeg.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from hypothesis import event, given
from hypothesis import strategies as st

from tests.property.files import files_for
from tests.property.payloads import hostile, hostile_payloads, plausible_payloads, schema_payloads
from worker.errors import InputError, PayloadError
from worker.media.plan import make_plan
from worker.payload import Payload, parse_payload
from worker.pipeline.compose import compose
from worker.settings import Settings

SETTINGS = Settings()
SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "payload.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def parsed(raw: object) -> Payload | None:
    """The payload, or None when it is refused: with a PayloadError naming a field of it."""
    try:
        return parse_payload(raw, SETTINGS)
    except PayloadError as exc:
        assert exc.field.startswith("payload"), str(exc)
        assert exc.problem and "\n" not in str(exc), str(exc)
        return None


@given(schema_payloads)
def test_what_the_schema_allows_is_valid_against_the_committed_schema(raw: object) -> None:
    """The generator is true to the schema web apps validate with (payloads.py walks it)."""
    assert VALIDATOR.is_valid(raw)
    parsed(raw)


@given(hostile_payloads)
def test_parsing_raises_only_a_payload_error_naming_a_field(raw: object) -> None:
    parsed(raw)  # anything but a PayloadError (OverflowError, RecursionError, ...) fails here


@given(st.data())
def test_planning_raises_only_payload_or_input_errors(data: st.DataObject) -> None:
    """payload → specs (pipeline/compose.py) → plan (media/plan.py), on fabricated probes."""
    raw = data.draw(st.one_of(plausible_payloads, plausible_payloads.flatmap(hostile)), "payload")
    payload = parsed(raw)
    if payload is None:
        event("payload refused")
        return
    files = data.draw(files_for(payload), label="files")
    max_duration = float(SETTINGS.max_output_seconds)
    try:
        made = compose(payload, files, max_duration=max_duration)
        plan = make_plan(list(made.clips), made.music, made.output, captions=made.captions,
                         overlays=made.overlays)  # fmt: skip
    except (PayloadError, InputError) as exc:
        assert str(exc).startswith(("payload", "clips", "audio", "captions", "overlays")), exc
        event(f"refused in planning: {type(exc).__name__}")
        return
    event(f"planned: {plan.join}")
    assert 0 < plan.duration <= max_duration
    assert plan.frames >= 1 and plan.geometry.width >= 2 and plan.geometry.height >= 2
