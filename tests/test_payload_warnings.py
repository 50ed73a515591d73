"""Unknown payload keys are ignored and named: `result.warnings`, and `enqueue`'s warnings."""

from __future__ import annotations

from typing import Any

from worker.payload import parse_payload
from worker.payload.warnings import MAX_WARNINGS, ignored_keys
from worker.settings import Settings

URL = "https://cdn.example.com/a.mp4"


def warnings_of(raw: Any) -> list[str]:
    return ignored_keys(raw, parse_payload(raw, Settings()))


def test_each_unknown_key_is_named_by_its_path_as_errors_name_fields() -> None:
    fade = {"type": "fade", "duration": 0.5, "easing": "x"}
    raw = {
        "clips": [{"url": URL, "transition": fade}, {"url": URL}],
        "overlays": [{"image": URL, "fade_inn": 0.3}, {"text": "Hi", "colour": "#FFFFFF"}],
        "audio": {"url": URL, "duck_dbb": 12},
        "outptu": {},
    }
    assert warnings_of(raw) == [
        "outptu: unknown key, ignored",
        "clips[0].transition.easing: unknown key, ignored",
        "audio.duck_dbb: unknown key, ignored",
        "overlays[0].fade_inn: unknown key, ignored",
        "overlays[1].colour: unknown key, ignored",
    ]


def test_a_payload_with_only_known_keys_has_no_warnings() -> None:
    raw = {"version": 1, "clips": [{"url": URL, "start": 1, "end": None}], "audio": None,
           "output": {"width": 640, "height": 360, "fade_in": 0.5}}  # fmt: skip
    assert warnings_of(raw) == []


def test_the_speech_services_keys_inside_transcripts_are_not_warnings() -> None:
    words = [{"word": "hi", "start": 0, "end": 0.5, "probability": 0.98}]
    transcript = {"text": "hi", "language": "en", "words": words, "segments": [{"id": 0}]}
    raw = {"clips": [{"url": URL, "transcript": transcript}]}
    assert warnings_of(raw) == []


def test_a_payload_of_many_unknown_keys_names_the_first_and_counts_the_rest() -> None:
    raw = {"clips": [{"url": URL}], **{f"key{n}": n for n in range(1000)}}
    found = warnings_of(raw)
    assert len(found) == MAX_WARNINGS + 1
    assert found[0] == "key0: unknown key, ignored"
    assert found[-1] == f"… and {1000 - MAX_WARNINGS} more unknown keys, ignored"
