"""parse_payload: the contract's examples parse, and every malformed field is named exactly."""

from __future__ import annotations

import copy
import json
import re
import uuid

import pytest
from pydantic import ValidationError

from worker.errors import PayloadError, PermanentError
from worker.media.picture.captions import Word
from worker.payload import (
    MAX_AUDIO_LAYERS,
    MAX_CAPTION_WORDS,
    MAX_OVERLAYS,
    MAX_TEXT_CHARS,
    MAX_VIDEO_OVERLAYS,
    Audio,
    AudioLayer,
    Captions,
    Clip,
    ImageOverlay,
    Output,
    Payload,
    TextOverlay,
    Transition,
    VideoOverlay,
    default_output_key,
    output_key,
    parse_payload,
)
from worker.settings import Settings

SETTINGS = Settings()

# The example in docs/contract.md, `payload (version 1)`, verbatim.
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


@pytest.mark.parametrize("fit", ["pad", "crop", "blur"])
def test_every_fit_is_accepted(fit: str) -> None:
    assert parse_payload(_output(fit=fit), SETTINGS).output.fit == fit


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
    with pytest.raises(PayloadError, match=r'"pad".*"crop".*"blur".*got "fill"'):
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


# --- composition (docs/composition.md) ------------------------------------------------------------

# The composition example in the contract, verbatim.
COMPOSITION_EXAMPLE = json.loads("""
{
  "clips": [
    {"url": "https://cdn.example.com/shot1.mp4", "volume": 0.8,
     "audio": [{"url": "https://cdn.example.com/rain.mp3", "volume": 0.5, "loop": true,
                "start": 0, "fade_in": 0.5, "fade_out": 0.5}],
     "transcript": {"words": [{"word": "Hello", "start": 0.2, "end": 0.5}]},
     "transition": {"type": "fade", "duration": 0.5}},
    {"url": "https://cdn.example.com/first-frame.png", "duration": 3, "motion": "zoom_in",
     "zoom": 0.15,
     "voice_url": "https://cdn.example.com/vo2.mp3",
     "voice_transcript": {"words": [{"word": "World", "start": 0.1, "end": 0.6}]}}
  ],
  "captions": {"style": "highlight", "position": "bottom", "size": 0.06, "color": "#FFFFFF",
               "highlight_color": "#FFD400", "uppercase": false, "max_words": 4,
               "outline": true, "box": false, "vtt": true},
  "overlays": [
    {"image": "https://cdn.example.com/logo.png", "position": "top_right", "width": 0.15,
     "opacity": 0.8, "margin": 0.03, "start": 0, "end": null},
    {"text": "Summer sale", "position": "center", "size": 0.08, "color": "#FFFFFF",
     "box": true, "start": 0, "end": 2}
  ],
  "output": {"fade_in": 0.5, "fade_out": 0.8}
}
""")

WORD = {"word": "hi", "start": 0.0, "end": 0.5}
TWO = [OK_CLIP, OK_CLIP]


def test_composition_example_parses_to_the_expected_values() -> None:
    payload = parse_payload(COMPOSITION_EXAMPLE, SETTINGS)
    first, second = payload.clips
    assert first.volume == 0.8 and first.start == 0.0 and first.end is None
    assert first.audio == (
        AudioLayer(
            url="https://cdn.example.com/rain.mp3",
            volume=0.5,
            loop=True,
            start=0.0,
            fade_in=0.5,
            fade_out=0.5,
        ),
    )
    assert first.transcript == (Word("Hello", 0.2, 0.5),)
    assert first.transition == Transition(type="fade", duration=0.5)
    assert (second.duration, second.motion, second.zoom) == (3.0, "zoom_in", 0.15)
    assert second.easing == "linear"
    assert second.voice_transcript == (Word("World", 0.1, 0.6),)
    assert second.transition is None and second.audio == () and second.volume == 1.0
    assert payload.captions == Captions(
        style="highlight", highlight_color="#FFD400", size=0.06, vtt=True
    )
    assert payload.overlays == (
        ImageOverlay(image="https://cdn.example.com/logo.png", opacity=0.8),
        TextOverlay(text="Summer sale", size=0.08, box=True, end=2.0),
    )
    assert (payload.output.fade_in, payload.output.fade_out) == (0.5, 0.8)
    assert payload.inputs() == (
        ("clips[0]", "https://cdn.example.com/shot1.mp4"),
        ("clips[0].audio[0]", "https://cdn.example.com/rain.mp3"),
        ("clips[1]", "https://cdn.example.com/first-frame.png"),
        ("clips[1].voice_url", "https://cdn.example.com/vo2.mp3"),
        ("overlays[0].image", "https://cdn.example.com/logo.png"),
    )


def test_a_version_1_payload_means_what_it_meant_before() -> None:
    payload = parse_payload(SPEC_EXAMPLE, SETTINGS)
    assert payload.captions is None and payload.overlays == ()
    assert (payload.output.fade_in, payload.output.fade_out) == (0.0, 0.0)
    for clip in payload.clips:
        assert (clip.duration, clip.motion, clip.volume, clip.audio) == (None, "none", 1.0, ())
        assert (clip.transcript, clip.voice_transcript, clip.transition) == (None, None, None)


def test_composition_nulls_count_as_absent() -> None:
    raw = {
        "clips": [
            {**OK_CLIP, "duration": None, "motion": None, "zoom": None, "easing": None,
             "volume": None, "audio": None, "transcript": None, "transition": None},
        ],
        "captions": {"style": None, "color": None, "words": None},
        "overlays": None,
        "output": {"fade_in": None},
    }  # fmt: skip
    payload = parse_payload(raw, SETTINGS)
    assert payload.clips == (Clip(url=OK_CLIP["url"]),)
    assert payload.captions == Captions()
    assert payload.overlays == () and payload.output == Output()


def test_a_stills_motion_takes_every_easing_of_the_contract() -> None:
    for easing in ("linear", "ease_in", "ease_out", "ease_in_out"):
        payload = parse_payload(_clip(motion="zoom_in", easing=easing), SETTINGS)
        assert payload.clips[2].easing == easing


def test_transcripts_in_every_shape_the_contract_names() -> None:
    openai = {"text": "Hello world", "words": [WORD, {"word": "you", "start": 0.5, "end": 1}]}
    whisper = {
        "segments": [{"words": [WORD]}, {"words": [{"word": "you", "start": 0.5, "end": 1}]}]
    }
    elevenlabs = {
        "words": [
            {"text": "hi", "start": 0, "end": 0.5, "type": "word"},
            {"text": " ", "start": 0.5, "end": 0.5, "type": "spacing"},
            {"text": "you", "start": 0.5, "end": 1, "type": "word"},
        ]
    }
    bare = [WORD, {"text": "you", "start": 0.5, "end": 1.0}]
    expected = (Word("hi", 0.0, 0.5), Word("you", 0.5, 1.0))
    for transcript in (openai, whisper, elevenlabs, bare):
        clip = {**OK_CLIP, "transcript": transcript, "voice_url": "https://x/v.mp3",
                "voice_transcript": transcript}  # fmt: skip
        parsed = parse_payload({"clips": [clip], "captions": {"words": transcript}}, SETTINGS)
        assert parsed.clips[0].transcript == expected
        assert parsed.clips[0].voice_transcript == expected
        assert parsed.captions is not None and parsed.captions.words == expected


def test_caption_words_are_limited_per_transcript_and_per_job() -> None:
    many = [WORD] * MAX_CAPTION_WORDS
    assert len(parse_payload(_clip(transcript=many), SETTINGS).clips[2].transcript or ()) == len(
        many
    )
    with pytest.raises(PayloadError) as caught:
        parse_payload(_clip(transcript=[*many, WORD]), SETTINGS)
    assert str(caught.value).startswith(
        f"payload.clips[2].transcript: has {MAX_CAPTION_WORDS + 1} words; at most"
    )
    half = [WORD] * (MAX_CAPTION_WORDS // 2)
    raw = {
        "clips": [{**OK_CLIP, "transcript": half}, {**OK_CLIP, "transcript": half}],
        "captions": {"words": [WORD]},
    }
    with pytest.raises(PayloadError) as caught:
        parse_payload(raw, SETTINGS)
    assert str(caught.value) == (
        f"payload.captions.words: has 1 words, which brings the job's caption words to "
        f"{MAX_CAPTION_WORDS + 1}; at most {MAX_CAPTION_WORDS} are allowed in one job "
        "(all transcripts and captions.words together)"
    )
    # each parse has its own budget: the same payload without the extra word parses twice
    del raw["captions"]
    for _ in range(2):
        parse_payload(raw, SETTINGS)


def _overlay(**fields: object) -> dict[str, object]:
    return {"clips": [OK_CLIP], "overlays": [{"text": "ok"}, fields]}


def _layer(**fields: object) -> dict[str, object]:
    return _clip(audio=[{"url": "https://x/rain.mp3"}, fields])


def _captions(**fields: object) -> dict[str, object]:
    return {"clips": [OK_CLIP], "captions": fields}


MALFORMED_COMPOSITION: list[tuple[str, object, str, str]] = [
    # (case id, raw payload, exact field path, a part of the sentence)
    ("duration-zero", _clip(duration=0), "payload.clips[2].duration", "greater than 0"),
    ("duration-string", _clip(duration="3s"), "payload.clips[2].duration", "number of seconds"),
    ("motion-unknown", _clip(motion="spin"), "payload.clips[2].motion", '"zoom_in"'),
    ("zoom-high", _clip(zoom=2), "payload.clips[2].zoom", "from 0 to 1, got 2"),
    ("easing-unknown", _clip(easing="bounce"), "payload.clips[2].easing",
     '"linear", "ease_in", "ease_out", "ease_in_out", got "bounce"'),
    ("clip-volume-neg", _clip(volume=-1), "payload.clips[2].volume", "from 0 to 1"),
    ("audio-object", _clip(audio={"url": "https://x/a.mp3"}), "payload.clips[2].audio",
     "must be a list of audio layers"),
    ("audio-too-many", _clip(audio=[{"url": "https://x/a.mp3"}] * (MAX_AUDIO_LAYERS + 1)),
     "payload.clips[2].audio", f"at most {MAX_AUDIO_LAYERS} are allowed per clip"),
    ("layer-string", _clip(audio=["https://x/a.mp3"]), "payload.clips[2].audio[0]",
     "JSON object"),
    ("layer-url-missing", _layer(volume=1), "payload.clips[2].audio[1].url", "is required"),
    ("layer-url-ftp", _layer(url="ftp://x/a.mp3"), "payload.clips[2].audio[1].url", "'ftp'"),
    ("layer-loop-string", _layer(url="https://x/a", loop="yes"),
     "payload.clips[2].audio[1].loop", "true or false"),
    ("layer-start-neg", _layer(url="https://x/a", start=-2), "payload.clips[2].audio[1].start",
     "0 or more"),
    ("layer-fade-nan", _layer(url="https://x/a", fade_out=float("nan")),
     "payload.clips[2].audio[1].fade_out", "got NaN"),
    ("transcript-string", _clip(transcript="hello"), "payload.clips[2].transcript",
     "transcript object"),
    ("transcript-word-missing", _clip(transcript={"words": [WORD, {"start": 0, "end": 1}]}),
     "payload.clips[2].transcript.words[1].word", "is required"),
    ("transcript-end-first", _clip(transcript=[{"word": "a", "start": 2, "end": 1}]),
     "payload.clips[2].transcript[0].end", "must not be before start"),
    ("segments-words-null", _clip(transcript={"segments": [{"words": None}]}),
     "payload.clips[2].transcript.segments[0].words", "must be a list"),
    ("voice-transcript-alone", _clip(voice_transcript=[WORD]),
     "payload.clips[2].voice_transcript", "voice_url"),
    ("transition-string", {"clips": [{**OK_CLIP, "transition": "fade"}, OK_CLIP]},
     "payload.clips[0].transition", "JSON object"),
    ("transition-type-unknown",
     {"clips": [{**OK_CLIP, "transition": {"type": "spin", "duration": 1}}, OK_CLIP]},
     "payload.clips[0].transition.type", '"fade", "fadeblack"'),
    ("transition-type-missing",
     {"clips": [{**OK_CLIP, "transition": {"duration": 1}}, OK_CLIP]},
     "payload.clips[0].transition.type", "is required"),
    ("transition-duration-zero",
     {"clips": [{**OK_CLIP, "transition": {"type": "fade", "duration": 0}}, OK_CLIP]},
     "payload.clips[0].transition.duration", "greater than 0"),
    ("transition-duration-missing",
     {"clips": [{**OK_CLIP, "transition": {"type": "fade"}}, OK_CLIP]},
     "payload.clips[0].transition.duration", "is required"),
    ("transition-on-last",
     {"clips": [OK_CLIP, {**OK_CLIP, "transition": {"type": "fade", "duration": 1}}]},
     "payload.clips[1].transition", "left out on the last clip"),
    ("captions-array", {"clips": [OK_CLIP], "captions": []}, "payload.captions", "JSON object"),
    ("captions-two-sources", _captions(words=[WORD], srt_url="https://x/a.srt"),
     "payload.captions.srt_url", "give one of words, srt_url and vtt_url"),
    ("captions-srt-bad", _captions(srt_url="a.srt"), "payload.captions.srt_url", "URL"),
    ("captions-vtt-bad", _captions(vtt_url="storage://b/../x.vtt"), "payload.captions.vtt_url",
     "URL"),
    ("captions-words-bad", _captions(words={"words": 5}), "payload.captions.words.words",
     "must be a list"),
    ("captions-style", _captions(style="bold"), "payload.captions.style",
     '"static", "highlight", "karaoke", "pop", "word_box", got "bold"'),
    ("captions-position", _captions(position="left"), "payload.captions.position",
     '"bottom", "center", "top"'),
    ("captions-size", _captions(size=0.9), "payload.captions.size", "from 0.01 to 0.5"),
    ("captions-color-name", _captions(color="white"), "payload.captions.color", "#RRGGBB"),
    ("captions-color-newline", _captions(color="#FFFFFF\n"), "payload.captions.color",
     "#RRGGBB"),
    ("captions-color-short", _captions(highlight_color="#FFF"),
     "payload.captions.highlight_color", "#RRGGBB"),
    ("captions-max-words", _captions(max_words=0), "payload.captions.max_words", "from 1 to 20"),
    ("captions-max-words-frac", _captions(max_words=2.5), "payload.captions.max_words",
     "whole number"),
    ("captions-vtt-string", _captions(vtt="yes"), "payload.captions.vtt", "true or false"),
    ("overlays-object", {"clips": [OK_CLIP], "overlays": {"text": "x"}}, "payload.overlays",
     "must be a list of overlays"),
    ("overlays-too-many", {"clips": [OK_CLIP], "overlays": [{"text": "x"}] * (MAX_OVERLAYS + 1)},
     "payload.overlays", f"at most {MAX_OVERLAYS} are allowed in one job"),
    ("overlay-neither", _overlay(position="top"), "payload.overlays[1]", "has neither"),
    ("overlay-both", _overlay(image="https://x/l.png", text="hi"), "payload.overlays[1]",
     "not both"),
    ("overlay-number", {"clips": [OK_CLIP], "overlays": [3]}, "payload.overlays[0]",
     "JSON object"),
    ("overlay-image-bad", _overlay(image="javascript:alert(1)"), "payload.overlays[1].image",
     "URL"),
    ("overlay-position", _overlay(image="https://x/l.png", position="middle"),
     "payload.overlays[1].position", '"top_left"'),
    ("overlay-width", _overlay(image="https://x/l.png", width=0), "payload.overlays[1].width",
     "from 0.01 to 1"),
    ("overlay-opacity", _overlay(image="https://x/l.png", opacity=1.5),
     "payload.overlays[1].opacity", "from 0 to 1"),
    ("overlay-margin", _overlay(image="https://x/l.png", margin=0.6),
     "payload.overlays[1].margin", "from 0 to 0.5"),
    ("overlay-end-first", _overlay(image="https://x/l.png", start=3, end=1),
     "payload.overlays[1].end", "greater than start (3 s)"),
    ("overlay-text-number", _overlay(text=5), "payload.overlays[1].text", "string"),
    ("overlay-text-blank", _overlay(text="  \n "), "payload.overlays[1].text", "not blank"),
    ("overlay-text-long", _overlay(text="x" * (MAX_TEXT_CHARS + 1)), "payload.overlays[1].text",
     f"at most {MAX_TEXT_CHARS} characters"),
    ("overlay-text-color", _overlay(text="hi", color="#GGGGGG"), "payload.overlays[1].color",
     "#RRGGBB"),
    ("overlay-text-size", _overlay(text="hi", size=-1), "payload.overlays[1].size", "from 0.01"),
    ("overlay-text-box", _overlay(text="hi", box=1), "payload.overlays[1].box", "true or false"),
    ("overlay-x", _overlay(image="https://x/l.png", x=2.5), "payload.overlays[1].x",
     "from -1 to 2"),
    ("overlay-y-string", _overlay(text="hi", y="top"), "payload.overlays[1].y", "a number"),
    ("overlay-fade-in", _overlay(text="hi", fade_in=-1), "payload.overlays[1].fade_in",
     "0 or more"),
    ("overlay-fade-out-long", _overlay(image="https://x/l.png", fade_out=1e9),
     "payload.overlays[1].fade_out", "MAX_OUTPUT_SECONDS"),
    ("overlay-animation", _overlay(text="hi", animation="spin"), "payload.overlays[1].animation",
     '"slide_up", "slide_down", "slide_left", "slide_right", "pop", "zoom", got "spin"'),
    ("overlay-animation-third", _overlay(image="https://x/l.png", start=1, end=2.5,
                                         animation="fade", animation_duration=0.6),
     "payload.overlays[1].animation_duration", "at most a third of the overlay's window (1.5 s)"),
    ("overlay-animation-zero", _overlay(text="hi", animation_duration=0),
     "payload.overlays[1].animation_duration", "greater than 0"),
    ("keyframes-object", _overlay(text="hi", keyframes={"t": 0}), "payload.overlays[1].keyframes",
     "must be a list of keyframes"),
    ("keyframes-too-many", _overlay(text="hi", keyframes=[{"t": n} for n in range(21)]),
     "payload.overlays[1].keyframes", "has 21 keyframes; at most 20 are allowed per overlay"),
    ("keyframe-t-missing", _overlay(text="hi", keyframes=[{"x": 0.5}]),
     "payload.overlays[1].keyframes[0].t", "is required"),
    ("keyframe-t-order", _overlay(image="https://x/l.png",
                                  keyframes=[{"t": 0}, {"t": 1}, {"t": 2}, {"t": 2}]),
     "payload.overlays[1].keyframes[3].t", "must be greater than keyframes[2].t (2 s)"),
    ("keyframe-t-past-window", _overlay(text="hi", start=2, end=4, keyframes=[{"t": 2.5}]),
     "payload.overlays[1].keyframes[0].t", "within the overlay's window (end - start = 2 s)"),
    ("keyframe-t-huge", _overlay(text="hi", keyframes=[{"t": 1e308}]),
     "payload.overlays[1].keyframes[0].t", "MAX_OUTPUT_SECONDS"),
    ("keyframe-scale", _overlay(text="hi", keyframes=[{"t": 0, "scale": 5}]),
     "payload.overlays[1].keyframes[0].scale", "from 0 to 4"),
    ("keyframe-opacity", _overlay(text="hi", keyframes=[{"t": 0, "opacity": -0.1}]),
     "payload.overlays[1].keyframes[0].opacity", "from 0 to 1"),
    ("keyframe-string", _overlay(text="hi", keyframes=["t=0"]),
     "payload.overlays[1].keyframes[0]", "JSON object"),
    ("overlay-easing", _overlay(text="hi", easing="bounce"), "payload.overlays[1].easing",
     '"linear", "ease_in", "ease_out", "ease_in_out", got "bounce"'),
    ("overlay-max-width", _overlay(text="hi", max_width=0), "payload.overlays[1].max_width",
     "from 0.05 to 1"),
    ("overlay-video-bad", _overlay(video="file:///etc/passwd"), "payload.overlays[1].video",
     "URL"),
    ("overlay-video-and-image", _overlay(video="https://x/v.mp4", image="https://x/l.png"),
     "payload.overlays[1]", "not both image and video"),
    ("overlay-video-from", _overlay(video="https://x/v.mp4", **{"from": -1}),
     "payload.overlays[1].from", "0 or more"),
    ("overlay-video-volume", _overlay(video="https://x/v.mp4", volume=2),
     "payload.overlays[1].volume", "from 0 to 1"),
    ("overlay-video-loop", _overlay(video="https://x/v.mp4", loop="yes"),
     "payload.overlays[1].loop", "true or false"),
    ("overlay-video-radius", _overlay(video="https://x/v.mp4", radius=0.6),
     "payload.overlays[1].radius", "from 0 to 0.5"),
    ("overlay-video-keyframe", _overlay(video="https://x/v.mp4", keyframes=[{"t": 1}, {"t": 0}]),
     "payload.overlays[1].keyframes[1].t", "greater than keyframes[0].t"),
    ("overlays-too-many-videos",
     {"clips": [OK_CLIP], "overlays": [{"video": "https://x/v.mp4"}] * (MAX_VIDEO_OVERLAYS + 1)},
     "payload.overlays", f"has 21 video overlays; at most {MAX_VIDEO_OVERLAYS} are allowed"),
    ("fade-in-neg", _output(fade_in=-1), "payload.output.fade_in", "0 or more"),
    ("fade-out-string", _output(fade_out="1"), "payload.output.fade_out", "number of seconds"),
    ("duck-db-low", _audio(url="https://x/m.mp3", duck_db=2), "payload.audio.duck_db",
     "from 3 to 30"),
    ("duck-db-string", _audio(url="https://x/m.mp3", duck_db="12"), "payload.audio.duck_db",
     "from 3 to 30"),
    ("loudness-loud", _output(loudness=-8), "payload.output.loudness", "from -24 to -9"),
    ("loudness-positive", _output(loudness=16), "payload.output.loudness", "from -24 to -9"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "field", "sentence"),
    [(raw, field, sentence) for _, raw, field, sentence in MALFORMED_COMPOSITION],
    ids=[case for case, _, _, _ in MALFORMED_COMPOSITION],
)
def test_malformed_composition_names_the_field(raw: object, field: str, sentence: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_payload(raw, SETTINGS)
    error = caught.value
    assert error.field == field, str(error)
    assert sentence in error.problem, str(error)
    assert re.search(r"must|is required|has \d+", error.problem), str(error)
    assert "\n" not in str(error) and "Input should" not in str(error)


BAD_URLS = [
    "ftp://x/a", "file:///etc/passwd", "", "https:///a", "storage://b/../../k",
    "https://x/a\x01b", 7,
]  # fmt: skip
URL_FIELDS: list[tuple[str, object, str]] = [
    ("layer", lambda url: _clip(audio=[{"url": url}]), "payload.clips[2].audio[0].url"),
    ("srt", lambda url: _captions(srt_url=url), "payload.captions.srt_url"),
    ("vtt", lambda url: _captions(vtt_url=url), "payload.captions.vtt_url"),
    ("overlay", lambda url: _overlay(image=url), "payload.overlays[1].image"),
]


@pytest.mark.parametrize(("build", "field"), [(b, f) for _, b, f in URL_FIELDS],
                         ids=[n for n, _, _ in URL_FIELDS])  # fmt: skip
def test_new_urls_follow_the_clip_url_rules(build, field) -> None:
    for url in BAD_URLS:
        with pytest.raises(PayloadError) as new:
            parse_payload(build(url), SETTINGS)
        with pytest.raises(PayloadError) as clip:
            parse_payload(_clip(url=url), SETTINGS)
        assert new.value.field == field
        assert new.value.problem == clip.value.problem  # the same rule, the same sentence
    for url in ("https://cdn.example.com/a?token=1", "storage://media/u/a.png"):
        parse_payload(build(url), SETTINGS)


def test_first_error_is_the_one_the_sequential_checks_reported() -> None:
    """With several errors, the first in document order is named, as before the models:
    version, clips (each clip: url, start, end against start, voice_url, then the composition
    fields), audio, output (the width/height pair first), captions, overlays."""
    cases: list[tuple[object, str]] = [
        ({"version": 2}, "payload.version"),
        ({"version": 2, "clips": []}, "payload.version"),
        ({"clips": [], "audio": "x", "output": 1}, "payload.clips"),
        ({"clips": [{"start": -1}]}, "payload.clips[0].url"),
        ({"clips": [{**OK_CLIP, "start": "a", "end": "b"}]}, "payload.clips[0].start"),
        ({"clips": [{**OK_CLIP, "start": 3, "end": 1, "voice_url": 5}]}, "payload.clips[0].end"),
        ({"clips": [{**OK_CLIP, "end": 1, "voice_url": 5, "zoom": 9}]},
         "payload.clips[0].voice_url"),
        ({"clips": [{**OK_CLIP, "zoom": 9, "transition": 1}, {"url": 1}]}, "payload.clips[0].zoom"),
        ({"clips": [OK_CLIP, {"url": 1}], "audio": {"volume": 3}}, "payload.clips[1].url"),
        ({"clips": [OK_CLIP], "audio": {"volume": 3}, "output": {"fit": "x"}},
         "payload.audio.url"),
        ({"clips": [OK_CLIP], "output": {"width": 10, "fps": 0}}, "payload.output.height"),
        ({"clips": [OK_CLIP], "output": {"width": 11, "height": 10, "fps": 0}},
         "payload.output.width"),
        ({"clips": [OK_CLIP], "output": {"fps": 0, "path": 1}}, "payload.output.fps"),
        ({"clips": [OK_CLIP], "output": {"fade_in": -1}, "captions": {"size": 9}},
         "payload.output.fade_in"),
        ({"clips": [OK_CLIP], "captions": {"size": 9}, "overlays": 1}, "payload.captions.size"),
        ({"clips": [OK_CLIP], "overlays": [{"text": ""}, 1]}, "payload.overlays[0].text"),
    ]  # fmt: skip
    for raw, field in cases:
        with pytest.raises(PayloadError) as caught:
            parse_payload(raw, SETTINGS)
        assert caught.value.field == field, (raw, str(caught.value))


JUNK: list[object] = [
    None, "", "x", "#FFFFFF", -1, 0, 0.5, 3, 1e6, float("nan"), float("inf"), 10**400, True,
    [], [1], {}, {"url": 1},
]  # fmt: skip


def _every_field() -> list[tuple[str, object]]:
    """(path, payload builder) for every field of every model, on a payload valid without it."""
    places: list[tuple[str, type, object]] = [
        ("payload", Payload, lambda f, v: {"clips": [OK_CLIP], f: v}),
        ("payload.clips[0]", Clip, lambda f, v: {"clips": [{**OK_CLIP, f: v}, OK_CLIP]}),
        ("payload.clips[0].audio[0]", AudioLayer,
         lambda f, v: {"clips": [{**OK_CLIP, "audio": [{"url": "https://x/a", f: v}]}]}),
        ("payload.clips[0].transition", Transition,
         lambda f, v: {"clips": [{**OK_CLIP, "transition": {"type": "fade", "duration": 1, f: v}},
                                 OK_CLIP]}),
        ("payload.audio", Audio, lambda f, v: {"clips": [OK_CLIP], "audio": {**OK_CLIP, f: v}}),
        ("payload.output", Output, lambda f, v: {"clips": [OK_CLIP], "output": {f: v}}),
        ("payload.captions", Captions, lambda f, v: {"clips": [OK_CLIP], "captions": {f: v}}),
        ("payload.overlays[0]", ImageOverlay,
         lambda f, v: {"clips": [OK_CLIP], "overlays": [{"image": "https://x/l.png", f: v}]}),
        ("payload.overlays[0]", TextOverlay,
         lambda f, v: {"clips": [OK_CLIP], "overlays": [{"text": "hi", f: v}]}),
    ]  # fmt: skip
    return [
        (f"{where}.{name}", lambda v, build=build, name=name: build(name, v))
        for where, model, build in places
        for name in model.model_fields
    ]


@pytest.mark.parametrize(("field", "build"), _every_field(), ids=[f for f, _ in _every_field()])
def test_every_field_answers_junk_with_a_sentence_of_ours(field: str, build) -> None:
    """No junk value gets past the checks or reaches the user as pydantic's own wording."""
    for value in JUNK:
        try:
            parse_payload(build(value), SETTINGS)
        except PayloadError as error:
            if field.endswith((".image", ".text")) and value in (None, {}):
                pass  # an overlay without its image/text is named by the overlay itself
            elif field in ("payload.output.width", "payload.output.height"):
                assert error.field in ("payload.output.width", "payload.output.height")  # a pair
            else:
                assert error.field.startswith(field), (value, str(error))
            assert not error.problem.startswith("must be valid ("), (value, str(error))
            # transcripts are read by worker.media.picture.captions, whose sentences may say "needs"
            assert re.search(r"must|is required|has \d+|needs", error.problem), (value, str(error))


def test_models_built_in_python_are_checked_too() -> None:
    """Code that builds a payload itself (the CLI, tests) gets the same checks."""
    assert Clip(url="https://x/a", transcript=(Word("a", 0, 1),)).transcript == (Word("a", 0, 1),)
    for fields in ({"url": "ftp://x/a"}, {"url": "https://x/a", "transcript": ("x",)}):
        with pytest.raises(ValidationError):
            Clip(**fields)


def test_an_echoed_value_stays_on_one_line() -> None:
    """Enum values are echoed to help; a newline or quote in one must not break the message."""
    for raw in (_output(fit='pad"\n'), _captions(style="bold\r\nX: y"), _clip(motion="\x1b[2J")):
        with pytest.raises(PayloadError) as caught:
            parse_payload(raw, SETTINGS)
        message = str(caught.value)
        assert "\n" not in message and "\r" not in message and "\x1b" not in message, message
    with pytest.raises(PayloadError, match=r'got "pad\\"\\n"$'):
        parse_payload(_output(fit='pad"\n'), SETTINGS)


# --- every time in seconds is at most MAX_OUTPUT_SECONDS ------------------------------------------

_TRANSITION_INTO_NEXT = {"type": "fade", "duration": 1}


def _words_at(end: object) -> list[dict[str, object]]:
    """Four timed words, the last ending at `end` (a second long, when `end` is a time)."""
    start = end - 1 if isinstance(end, int | float) and 1 <= end < 1e6 else 0
    return [WORD, WORD, WORD, {"word": "late", "start": start, "end": end}]


# (case id, payload with the value in one seconds field, the field's exact path)
SECONDS_FIELDS: list[tuple[str, object, str]] = [
    ("clip-start", lambda v: _clip(start=v), "payload.clips[2].start"),
    ("clip-end", lambda v: _clip(end=v), "payload.clips[2].end"),
    ("clip-duration", lambda v: _clip(duration=v), "payload.clips[2].duration"),
    ("transition-duration",
     lambda v: {"clips": [{**OK_CLIP, "transition": {"type": "fade", "duration": v}}, OK_CLIP]},
     "payload.clips[0].transition.duration"),
    ("layer-start", lambda v: _layer(url="https://x/a", start=v),
     "payload.clips[2].audio[1].start"),
    ("layer-fade-in", lambda v: _layer(url="https://x/a", fade_in=v),
     "payload.clips[2].audio[1].fade_in"),
    ("layer-fade-out", lambda v: _layer(url="https://x/a", fade_out=v),
     "payload.clips[2].audio[1].fade_out"),
    ("output-fade-in", lambda v: _output(fade_in=v), "payload.output.fade_in"),
    ("output-fade-out", lambda v: _output(fade_out=v), "payload.output.fade_out"),
    ("image-overlay-start", lambda v: _overlay(image="https://x/l.png", start=v),
     "payload.overlays[1].start"),
    ("image-overlay-end", lambda v: _overlay(image="https://x/l.png", end=v),
     "payload.overlays[1].end"),
    ("text-overlay-start", lambda v: _overlay(text="hi", start=v), "payload.overlays[1].start"),
    ("text-overlay-end", lambda v: _overlay(text="hi", end=v), "payload.overlays[1].end"),
    ("transcript-word", lambda v: _clip(transcript={"words": _words_at(v)}),
     "payload.clips[2].transcript.words[3].end"),
    ("bare-transcript-word", lambda v: _clip(transcript=_words_at(v)),
     "payload.clips[2].transcript[3].end"),
    ("voice-transcript-word",
     lambda v: _clip(voice_url="https://x/v.mp3", voice_transcript={"words": _words_at(v)}),
     "payload.clips[2].voice_transcript.words[3].end"),
    ("captions-word", lambda v: _captions(words={"words": _words_at(v)}),
     "payload.captions.words.words[3].end"),
]  # fmt: skip
_SECONDS_IDS = [case for case, _, _ in SECONDS_FIELDS]


@pytest.mark.parametrize(("build", "field"), [(b, f) for _, b, f in SECONDS_FIELDS],
                         ids=_SECONDS_IDS)  # fmt: skip
def test_a_time_over_the_longest_video_names_its_field(build, field: str) -> None:
    """1e308 seconds once reached planning and overflowed there (retried, naming nothing)."""
    with pytest.raises(PayloadError) as caught:
        parse_payload(build(1e308), SETTINGS)
    assert str(caught.value) == (
        f"{field}: must be at most 1800 seconds (MAX_OUTPUT_SECONDS), got 1e+308"
    )
    with pytest.raises(PayloadError) as caught:
        parse_payload(build(1800.5), SETTINGS)
    assert caught.value.field == field and caught.value.problem.endswith("got 1800.5")
    for huge in (10**400, float("inf")):  # no float holds them: still a sentence of ours
        with pytest.raises(PayloadError) as caught:
            parse_payload(build(huge), SETTINGS)
        assert caught.value.field == field, str(caught.value)
    parse_payload(build(1800), SETTINGS)  # the limit itself is allowed


@pytest.mark.parametrize(("build", "field"), [(b, f) for _, b, f in SECONDS_FIELDS],
                         ids=_SECONDS_IDS)  # fmt: skip
def test_the_time_limit_is_the_operators_max_output_seconds(build, field: str) -> None:
    longer = Settings(max_output_seconds=7200)
    parse_payload(build(7200), longer)
    with pytest.raises(PayloadError) as caught:
        parse_payload(build(7201), longer)
    assert str(caught.value) == (
        f"{field}: must be at most 7200 seconds (MAX_OUTPUT_SECONDS), got 7201"
    )
    with pytest.raises(PayloadError, match=r"at most 60 seconds \(MAX_OUTPUT_SECONDS\), got 61$"):
        parse_payload(build(61), Settings(max_output_seconds=60))


def test_models_built_in_python_get_the_default_time_limit() -> None:
    assert Transition(type="fade", duration=1800).duration == 1800.0
    for build in (
        lambda: Transition(type="fade", duration=1801),
        lambda: Clip(url="https://x/a", start=1e308),
        lambda: Output(fade_in=1801),
        lambda: TextOverlay(text="hi", end=1801),
        lambda: Clip(url="https://x/a", transcript=[{"word": "a", "start": 0, "end": 1801}]),
    ):
        with pytest.raises(ValidationError, match=r"at most 1800 seconds \(MAX_OUTPUT_SECONDS\)"):
            build()


def test_duck_db_sets_the_depth_and_alone_turns_ducking_on() -> None:
    def audio(**fields: object) -> Audio:
        payload = parse_payload(
            {"clips": [OK_CLIP], "audio": {"url": "https://x/m.mp3", **fields}}, SETTINGS
        )
        assert payload.audio is not None
        return payload.audio

    assert (audio().ducks, audio().duck_db) == (False, 12.0)
    assert (audio(duck=True).ducks, audio(duck=True).duck_db) == (True, 12.0)
    assert (audio(duck_db=24).ducks, audio(duck_db=24).duck_db) == (True, 24.0)
    assert audio(duck=False, duck_db=24).ducks is False  # an explicit false wins
    assert audio(duck=None, duck_db=6).ducks is True  # null is absent


def test_output_loudness_defaults_to_minus_16() -> None:
    payload = parse_payload({"clips": [OK_CLIP]}, SETTINGS)
    assert payload.output.loudness == -16.0
    louder = parse_payload({"clips": [OK_CLIP], "output": {"loudness": -14}}, SETTINGS)
    assert louder.output.loudness == -14.0


def test_overlay_motion_parses_and_a_default_entrance_fits_any_window() -> None:
    """The motion fields as the contract's example gives them; the default entrance (0.4 s)
    is not refused on a short window (the drawing keeps it to a third of the window)."""
    raw = _overlay(
        text="Chapter 1",
        position="top",
        max_width=0.8,
        animation="slide_up",
        start=0,
        end=0.6,
        easing="ease_out",
        keyframes=[{"t": 0, "scale": 1.0}, {"t": 0.6, "scale": 1.2, "x": 0.4}],
    )
    overlay = parse_payload(raw, SETTINGS).overlays[1]
    assert isinstance(overlay, TextOverlay)
    assert overlay.animation == "slide_up" and overlay.animation_duration == 0.4
    assert [k.t for k in overlay.keyframes] == [0.0, 0.6]
    assert overlay.keyframes[1].x == 0.4 and overlay.keyframes[0].x is None
    assert overlay.max_width == 0.8 and overlay.easing == "ease_out"


def test_a_video_overlay_parses_with_its_from_and_names_its_input() -> None:
    raw = {"clips": [OK_CLIP], "overlays": [
        {"text": "hi"},
        {"video": "https://cdn.example.com/reaction.mp4", "x": 0.78, "y": 0.22, "width": 0.3,
         "start": 2, "end": 9, "from": 1.5, "volume": 0.4, "loop": True, "radius": 0.04,
         "fade_in": 0.3},
    ]}  # fmt: skip
    payload = parse_payload(raw, SETTINGS)
    video = payload.overlays[1]
    assert isinstance(video, VideoOverlay)
    assert (video.from_, video.volume, video.loop, video.radius) == (1.5, 0.4, True, 0.04)
    assert (video.x, video.y, video.width, video.fade_in) == (0.78, 0.22, 0.3, 0.3)
    assert payload.inputs()[-1] == ("overlays[1].video", "https://cdn.example.com/reaction.mp4")
    assert VideoOverlay(video="https://x/v.mp4", from_=2.0).from_ == 2.0  # by name in Python
