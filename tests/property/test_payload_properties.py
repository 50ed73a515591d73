"""Properties of every payload an end user can write: parsing names a field, planning refuses
by name, and neither ever raises anything else (`duration: 1e308` once overflowed in
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
from worker.media import cost
from worker.media.confine import confined_here
from worker.media.picture import caption_child
from worker.media.picture.captions import CaptionStyle, Word, ass_lines, group_lines
from worker.media.plan import Plan, make_plan
from worker.payload import Payload, parse_payload
from worker.pipeline.assembly_specs import AssemblySpecs, assembly_specs
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
    """payload → specs (pipeline/assembly_specs.py) → plan (media/plan.py), on fabricated probes."""
    raw = data.draw(st.one_of(plausible_payloads, plausible_payloads.flatmap(hostile)), "payload")
    payload = parsed(raw)
    if payload is None:
        event("payload refused")
        return
    files = data.draw(files_for(payload), label="files")
    max_duration = float(SETTINGS.max_output_seconds)
    try:
        made = assembly_specs(payload, files, max_duration=max_duration)
        plan = make_plan(list(made.clips), made.music, made.output, captions=made.captions,
                         overlays=made.overlays)  # fmt: skip
    except (PayloadError, InputError) as exc:
        assert str(exc).startswith(("payload", "clips", "audio", "captions", "overlays")), exc
        event(f"refused in planning: {type(exc).__name__}")
        return
    event(f"planned: {plan.join}")
    assert 0 < plan.duration <= max_duration
    assert plan.frames >= 1 and plan.geometry.width >= 2 and plan.geometry.height >= 2
    _cost_within_bounds(plan, made, max_duration)


def _cost_within_bounds(plan: Plan, made: AssemblySpecs, max_duration: float) -> None:
    """Every accepted plan's cost estimate is within the bounds: frames times things drawn
    (a caption block is one, by the caption child's construction: see the property below)."""
    spent = cost.estimate(plan, made.clips, made.overlays, 1 if made.captions else 0)
    try:
        cost.check(spent, max_seconds=max_duration, max_pixels=SETTINGS.max_input_pixels)
    except InputError as exc:  # a fabricated input over MAX_INPUT_PIXELS: named, not spent
        assert "MAX_INPUT_PIXELS" in str(exc), exc
        return
    assert spent.layers <= cost.MAX_LAYERS
    assert spent.work <= (max_duration * spent.fps + 1) * cost.MAX_LAYERS


WORDS = st.lists(
    st.tuples(st.floats(0, 30), st.floats(0, 60)).map(lambda t: Word("w", t[0], t[0] + t[1])),
    max_size=60,
)


@given(WORDS, st.integers(1, 20), st.sampled_from(["static", "highlight", "karaoke"]))
def test_captions_show_one_block_at_a_time_however_the_words_overlap(
    words: list[Word], max_words: int, style: str
) -> None:
    """The caption child's document never has two events on screen at once: the bound the
    cost check holds (a block per frame, not one per overlapping word)."""
    look = CaptionStyle(style=style, max_words=max_words)  # type: ignore[arg-type]
    with confined_here():
        dialogues = [line for line in ass_lines(group_lines(words, max_words), look, 320, 180)
                     if line.startswith("Dialogue:")]  # fmt: skip
    spans = [caption_child.event_span(line) for line in dialogues]
    assert caption_child.most_at_once(spans) <= cost.MAX_CAPTION_LAYERS
