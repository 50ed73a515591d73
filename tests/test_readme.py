"""The composition reference (docs/composition.md) says what the worker does: every example is a
payload the worker accepts, the `enqueue` line under it builds the same job, and the TypeScript
interfaces of docs/video-jobs.d.ts list exactly the fields of the payload's JSON Schema."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.queue.procs import ROOT
from worker.cli.enqueue_args import payload_from_args
from worker.cli.parser import build_parser
from worker.payload import parse_payload
from worker.settings import Settings

SECTION = (ROOT / "docs" / "composition.md").read_text()
EXAMPLES = re.findall(r"```json\n(.*?)```\n`enqueue ([^`]+)`", SECTION, re.DOTALL)
SCHEMA = json.loads((ROOT / "docs" / "payload.schema.json").read_text())


def test_the_section_has_one_example_per_feature():
    text = " ".join(example for example, _ in EXAMPLES)
    for feature in ('"motion"', '"transition"', '"transcript"', '"srt_url"', '"audio": [',
                    '"image"', '"text"', '"fade_in"', '"duck"', '"keyframes"',
                    '"animation"', '"video"'):  # fmt: skip
        assert feature in text, feature


@pytest.mark.parametrize(("example", "line"), EXAMPLES, ids=[str(n) for n in range(len(EXAMPLES))])
def test_each_example_is_accepted_and_its_enqueue_line_builds_the_same_job(
    example, line, tmp_path: Path, monkeypatch
):
    payload = json.loads(example)
    for clip in payload["clips"]:  # the transcript the line names as a file
        if "transcript" in clip:
            (tmp_path / "whisper.json").write_text(json.dumps(clip["transcript"]))
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["enqueue", *shlex.split(line)])
    settings = Settings()
    assert parse_payload(payload_from_args(args), settings) == parse_payload(payload, settings)


def interfaces(block: str) -> dict[str, set[str]]:
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", block, flags=re.DOTALL)
    return {
        name: set(re.findall(r"(\w+)\??:", body))
        for name, body in re.findall(r"interface (\w+) \{(.*?)\}[ \t]*\n", code, re.DOTALL)
    }


def test_the_typescript_interfaces_have_the_schemas_fields():
    found = interfaces((ROOT / "docs" / "video-jobs.d.ts").read_text())
    defs = SCHEMA["$defs"]
    expected = {name: set(defs[name]["properties"]) for name in
                ("Clip", "AudioLayer", "Audio", "Output", "Captions", "ImageOverlay",
                 "TextOverlay", "TranscriptWord", "Transition", "Keyframe",
                 "VideoOverlay")}  # fmt: skip
    expected["Payload"] = set(SCHEMA["properties"])
    assert {name: found[name] for name in expected} == expected
