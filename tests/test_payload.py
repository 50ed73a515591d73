"""parse_payload: the contract's examples parse, and every malformed field is named exactly."""

from __future__ import annotations

import copy
import json
import re
import uuid

import pytest

from worker.errors import PayloadError, PermanentError
from worker.payload import (
    Audio,
    Clip,
    Output,
    Payload,
    default_output_key,
    output_key,
    parse_payload,
)
from worker.settings import Settings

SETTINGS = Settings()

# The example in shared/spec/video-jobs.md, `payload (version 1)`, verbatim.
SPEC_EXAMPLE = json.loads("""
{
  "clips": [
    {"url": "https://cdn.example.com/a.mp4"},
    {"url": "https://cdn.example.com/b.mp4", "start": 1.5, "end": 6.0,
     "voice_url": "https://cdn.example.com/b-voice.mp3"}
  ],
  "audio": {"url": "https://cdn.example.com/music.mp3", "volume": 0.3, "duck": true},
  "output": {"width": 1080, "height": 1920, "fps": 30, "fit": "pad",
             "path": "user-123/campaign-9.mp4", "thumbnail": true}
}
""")

OK_CLIP = {"url": "https://x/a.mp4"}


def test_spec_example_parses_to_the_expected_values() -> None:
    assert parse_payload(SPEC_EXAMPLE, SETTINGS) == Payload(
        clips=(
            Clip(url="https://cdn.example.com/a.mp4"),
            Clip(
                url="https://cdn.example.com/b.mp4",
                start=1.5,
                end=6.0,
                voice_url="https://cdn.example.com/b-voice.mp3",
            ),
        ),
        audio=Audio(url="https://cdn.example.com/music.mp3", volume=0.3, duck=True),
        output=Output(
            width=1080,
            height=1920,
            fps=30.0,
            fit="pad",
            path="user-123/campaign-9.mp4",
            thumbnail=True,
        ),
    )


def test_minimal_payload_gets_the_defaults() -> None:
    payload = parse_payload({"clips": [{"url": "https://x/a.mp4"}]}, SETTINGS)
    assert payload.clips == (Clip(url="https://x/a.mp4", start=0.0, end=None, voice_url=None),)
    assert payload.audio is None
    assert payload.output == Output(
        width=None, height=None, fps=None, fit="pad", path=None, thumbnail=True
    )


def test_audio_defaults_and_nulls_count_as_absent() -> None:
    raw = {
        "clips": [{"url": "https://x/a.mp4", "start": None, "end": None, "voice_url": None}],
        "audio": {"url": "storage://media/music/bed.mp3"},
        "output": {"width": None, "height": None, "fit": None, "path": None},
    }
    payload = parse_payload(raw, SETTINGS)
    assert payload.clips == (Clip(url="https://x/a.mp4"),)
    assert payload.audio == Audio(url="storage://media/music/bed.mp3", volume=1.0, duck=False)
    assert payload.output == Output()
    assert parse_payload({"clips": [OK_CLIP], "audio": None}, SETTINGS).audio is None


def test_accepted_edge_values() -> None:
    raw = {
        "version": 1,
        "future_key": {"anything": True},
        "clips": [
            {"url": "storage://generated-videos/in/clip 1.mp4", "start": 0, "end": 0.04},
            {"url": "HTTP://[2001:db8::1]:8080/b.mp4?token=abc", "extra": 1},
        ],
        "audio": {"url": "https://x/m.mp3", "volume": 0, "duck": False},
        "output": {
            "width": 16.0,
            "height": 4096,
            "fps": 29.97,
            "fit": "crop",
            "path": "a/b/C.MP4",
            "thumbnail": False,
        },
    }
    payload = parse_payload(raw, SETTINGS)
    assert payload.clips[0] == Clip(url="storage://generated-videos/in/clip 1.mp4", end=0.04)
    assert payload.clips[1].url == "HTTP://[2001:db8::1]:8080/b.mp4?token=abc"
    assert payload.audio is not None and payload.audio.volume == 0.0
    assert payload.output == Output(16, 4096, 29.97, "crop", "a/b/C.MP4", False)
    assert isinstance(payload.output.width, int)


def test_payload_is_frozen_and_lists_its_inputs() -> None:
    payload = parse_payload(SPEC_EXAMPLE, SETTINGS)
    with pytest.raises(AttributeError):
        payload.clips[0].url = "https://evil/"  # type: ignore[misc]
    assert payload.inputs() == (
        ("clips[0]", "https://cdn.example.com/a.mp4"),
        ("clips[1]", "https://cdn.example.com/b.mp4"),
        ("clips[1].voice_url", "https://cdn.example.com/b-voice.mp3"),
        ("audio", "https://cdn.example.com/music.mp3"),
    )


def test_parsing_does_not_change_the_raw_value() -> None:
    raw = copy.deepcopy(SPEC_EXAMPLE)
    parse_payload(raw, SETTINGS)
    assert raw == SPEC_EXAMPLE


def _with(**changes: object) -> dict[str, object]:
    """The spec example with top-level sections replaced."""
    raw = copy.deepcopy(SPEC_EXAMPLE)
    raw.update(changes)
    return raw


def _clip(**fields: object) -> dict[str, object]:
    """A payload whose third clip (index 2) has `fields` on top of a valid URL."""
    return {"clips": [OK_CLIP, OK_CLIP, {**OK_CLIP, **fields}]}


def _output(**fields: object) -> dict[str, object]:
    return {"clips": [OK_CLIP], "output": fields}


def _audio(**fields: object) -> dict[str, object]:
    return {"clips": [OK_CLIP], "audio": fields}


MALFORMED: list[tuple[str, object, str]] = [
    # (case id, raw payload, exact field path the message must start with)
    ("payload-array", [OK_CLIP], "payload"),
    ("payload-string", '{"clips": []}', "payload"),
    ("payload-null", None, "payload"),
    ("version-2", {"version": 2, "clips": [OK_CLIP]}, "payload.version"),
    ("version-string", {"version": "1", "clips": [OK_CLIP]}, "payload.version"),
    ("version-true", {"version": True, "clips": [OK_CLIP]}, "payload.version"),
    ("clips-missing", {}, "payload.clips"),
    ("clips-null", {"clips": None}, "payload.clips"),
    ("clips-empty", {"clips": []}, "payload.clips"),
    ("clips-object", {"clips": OK_CLIP}, "payload.clips"),
    ("clip-string", {"clips": [OK_CLIP, "https://x/b.mp4"]}, "payload.clips[1]"),
    ("clip-url-missing", {"clips": [OK_CLIP, {"start": 1}]}, "payload.clips[1].url"),
    ("url-number", _clip(url=42), "payload.clips[2].url"),
    ("url-empty", _clip(url=""), "payload.clips[2].url"),
    ("url-ftp", _clip(url="ftp://x/a.mp4"), "payload.clips[2].url"),
    ("url-file", _clip(url="file:///etc/passwd"), "payload.clips[2].url"),
    ("url-no-scheme", _clip(url="cdn.example.com/a.mp4"), "payload.clips[2].url"),
    ("url-no-host", _clip(url="https:///a.mp4"), "payload.clips[2].url"),
    ("url-bad-port", _clip(url="https://x:99999/a.mp4"), "payload.clips[2].url"),
    ("url-bad-ipv6", _clip(url="http://[::1/a.mp4"), "payload.clips[2].url"),
    ("url-newline", _clip(url="https://x/a.mp4\n"), "payload.clips[2].url"),
    ("url-too-long", _clip(url="https://x/" + "a" * 5000), "payload.clips[2].url"),
    ("storage-no-bucket", _clip(url="storage:///a.mp4"), "payload.clips[2].url"),
    ("storage-no-path", _clip(url="storage://bucket"), "payload.clips[2].url"),
    ("storage-empty-path", _clip(url="storage://bucket/"), "payload.clips[2].url"),
    ("storage-dotdot", _clip(url="storage://bucket/a/../../b.mp4"), "payload.clips[2].url"),
    ("storage-bad-bucket", _clip(url="storage://../etc/passwd"), "payload.clips[2].url"),
    ("start-negative", _clip(start=-1), "payload.clips[2].start"),
    ("start-string", _clip(start="1.5"), "payload.clips[2].start"),
    ("start-bool", _clip(start=True), "payload.clips[2].start"),
    ("start-nan", _clip(start=float("nan")), "payload.clips[2].start"),
    ("end-inf", _clip(end=float("inf")), "payload.clips[2].end"),
    ("end-huge-int", _clip(end=10**400), "payload.clips[2].end"),
    ("end-before-start", _clip(start=3, end=2), "payload.clips[2].end"),
    ("end-equals-start", _clip(start=2, end=2), "payload.clips[2].end"),
    ("end-zero", _clip(end=0), "payload.clips[2].end"),
    ("voice-bad", _clip(voice_url="voice.mp3"), "payload.clips[2].voice_url"),
    ("voice-bool", _clip(voice_url=False), "payload.clips[2].voice_url"),
    ("audio-list", {"clips": [OK_CLIP], "audio": []}, "payload.audio"),
    ("audio-url-missing", _audio(volume=0.5), "payload.audio.url"),
    ("audio-url-bad", _audio(url="s3://b/k.mp3"), "payload.audio.url"),
    ("volume-high", _audio(url="https://x/m.mp3", volume=1.5), "payload.audio.volume"),
    ("volume-negative", _audio(url="https://x/m.mp3", volume=-0.1), "payload.audio.volume"),
    ("volume-string", _audio(url="https://x/m.mp3", volume="50%"), "payload.audio.volume"),
    ("duck-string", _audio(url="https://x/m.mp3", duck="true"), "payload.audio.duck"),
    ("duck-int", _audio(url="https://x/m.mp3", duck=1), "payload.audio.duck"),
    ("output-string", {"clips": [OK_CLIP], "output": "1080p"}, "payload.output"),
    ("width-alone", _output(width=1080), "payload.output.height"),
    ("height-alone", _output(height=1920), "payload.output.width"),
    ("width-odd", _output(width=1081, height=1920), "payload.output.width"),
    ("height-odd", _output(width=1080, height=1919), "payload.output.height"),
    ("width-small", _output(width=8, height=1920), "payload.output.width"),
    ("height-huge", _output(width=1080, height=8192), "payload.output.height"),
    ("width-fraction", _output(width=1080.5, height=1920), "payload.output.width"),
    ("width-string", _output(width="1080", height=1920), "payload.output.width"),
    ("width-bool", _output(width=True, height=1920), "payload.output.width"),
    ("fps-zero", _output(fps=0), "payload.output.fps"),
    ("fps-high", _output(fps=240), "payload.output.fps"),
    ("fps-string", _output(fps="30"), "payload.output.fps"),
    ("fit-fill", _output(fit="fill"), "payload.output.fit"),
    ("fit-case", _output(fit="PAD"), "payload.output.fit"),
    ("path-number", _output(path=7), "payload.output.path"),
    ("path-absolute", _output(path="/etc/x.mp4"), "payload.output.path"),
    ("path-dotdot", _output(path="a/../../b.mp4"), "payload.output.path"),
    ("path-backslash", _output(path="a\\b.mp4"), "payload.output.path"),
    ("path-control", _output(path="a/b\x00.mp4"), "payload.output.path"),
    ("path-empty", _output(path=""), "payload.output.path"),
    ("path-not-mp4", _output(path="a/b.mov"), "payload.output.path"),
    ("path-only-suffix", _output(path="a/.mp4"), "payload.output.path"),
    ("thumbnail-string", _output(thumbnail="yes"), "payload.output.thumbnail"),
    (
        "bad-section-in-full",
        _with(audio={"url": "https://x/m.mp3", "volume": 2}),
        "payload.audio.volume",
    ),
]


@pytest.mark.parametrize(
    ("raw", "field"),
    [(raw, field) for _, raw, field in MALFORMED],
    ids=[case for case, _, _ in MALFORMED],
)
def test_malformed_payload_names_the_field(raw: object, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_payload(raw, SETTINGS)
    error = caught.value
    assert isinstance(error, PermanentError)  # fails the job at once, never retried
    assert error.field == field
    message = str(error)
    assert message.startswith(f"{field}: ")
    # One sentence a developer can act on: says what is allowed, not a Python traceback.
    assert re.search(r"must|is required|has \d+|at least", error.problem), message
    assert "Traceback" not in message and "\n" not in message


def test_messages_say_what_is_allowed() -> None:
    with pytest.raises(
        PayloadError,
        match=r"^payload\.clips\[0\]\.url: must be an http\(s\) or "
        r"storage:// URL like .*\(its scheme is 'ftp'\)$",
    ):
        parse_payload({"clips": [{"url": "ftp://x/a.mp4"}]}, SETTINGS)
    with pytest.raises(PayloadError, match=r'"pad".*"crop".*got "fill"'):
        parse_payload(_output(fit="fill"), SETTINGS)
    with pytest.raises(PayloadError, match=r"greater than start \(3 s\), got 2 s"):
        parse_payload(_clip(start=3, end=2), SETTINGS)
    with pytest.raises(PayloadError, match=r"even number of pixels.*got 1081"):
        parse_payload(_output(width=1081, height=1920), SETTINGS)
    with pytest.raises(PayloadError, match=r"from 16 to 4096, got 8192"):
        parse_payload(_output(width=1080, height=8192), SETTINGS)


def test_messages_never_echo_a_url() -> None:
    secret_url = "ftp://media.acme.test/a.mp4?token=s3cr3t"
    with pytest.raises(PayloadError) as caught:
        parse_payload({"clips": [{"url": secret_url}]}, SETTINGS)
    assert "s3cr3t" not in str(caught.value)
    assert "media.acme.test" not in str(caught.value)


def test_clip_count_limit_comes_from_settings() -> None:
    settings = Settings(max_clips=3)
    assert len(parse_payload({"clips": [OK_CLIP] * 3}, settings).clips) == 3
    with pytest.raises(PayloadError) as caught:
        parse_payload({"clips": [OK_CLIP] * 4}, settings)
    assert str(caught.value) == ("payload.clips: has 4 clips; at most 3 are allowed in one job")


def test_default_clip_limit_is_the_contracts_100() -> None:
    assert len(parse_payload({"clips": [OK_CLIP] * 100}, SETTINGS).clips) == 100
    with pytest.raises(PayloadError, match=r"^payload\.clips: has 101 clips"):
        parse_payload({"clips": [OK_CLIP] * 101}, SETTINGS)


def test_first_bad_field_is_reported_in_document_order() -> None:
    raw = {"clips": [{"url": "nope"}, {"url": "also nope"}], "output": {"fit": "x"}}
    with pytest.raises(PayloadError) as caught:
        parse_payload(raw, SETTINGS)
    assert caught.value.field == "payload.clips[0].url"


def test_default_output_key() -> None:
    job = uuid.UUID("00000000-0000-4000-8000-000000000001")
    user = uuid.UUID("00000000-0000-4000-8000-00000000000a")
    assert default_output_key(job, user) == f"{user}/{job}.mp4"
    assert default_output_key(job, None) == f"anonymous/{job}.mp4"
    minimal = parse_payload({"clips": [OK_CLIP]}, SETTINGS)
    assert output_key(minimal, job, None) == f"anonymous/{job}.mp4"
    full = parse_payload(SPEC_EXAMPLE, SETTINGS)
    assert output_key(full, job, user) == "user-123/campaign-9.mp4"
