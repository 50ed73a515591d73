"""`enqueue` refuses what is certain to fail, with the worker's own messages, and `--wait`
says when no worker is there to take the job."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

from tests.cleanup_helpers import job_ids
from tests.handlers import scripted
from tests.queue.helpers import running
from tests.queue.procs import ROOT
from tests.test_cli import cli
from worker.cli.commands import checked_payload
from worker.cli.parser import build_parser
from worker.errors import PayloadError
from worker.payload import parse_payload
from worker.settings import Settings

URL = "https://cdn.example.com/a.mp4"


def parser_message(payload: object) -> str:
    try:
        parse_payload(payload, Settings())
    except PayloadError as exc:
        return str(exc)
    raise AssertionError("the parser accepted it")


@pytest.mark.parametrize(
    ("args", "payload"),
    [
        (["ftp://cdn.example.com/a.mp4"], {"clips": [{"url": "ftp://cdn.example.com/a.mp4"}]}),
        ([URL, "--fps", "0"], {"clips": [{"url": URL}], "output": {"fps": 0.0}}),
        (
            [URL, "--width", "1081", "--height", "1920"],
            {"clips": [{"url": URL}], "output": {"width": 1081, "height": 1920}},
        ),
        ([URL, "--width", "1080"], {"clips": [{"url": URL}], "output": {"width": 1080}}),
        (["--payload", '{"clips":[]}'], {"clips": []}),
        (
            [URL, "--audio", URL, "--volume", "5"],
            {"clips": [{"url": URL}], "audio": {"url": URL, "volume": 5.0}},
        ),
    ],
    ids=["ftp", "fps-0", "odd-width", "width-alone", "no-clips", "volume-5"],
)
def test_a_payload_the_worker_would_refuse_gets_the_workers_message(args, payload):
    parsed = build_parser().parse_args(["enqueue", *args])
    with pytest.raises(ValueError) as refused:
        checked_payload(parsed, Settings())
    assert str(refused.value) == parser_message(payload)


@pytest.mark.slow  # a real `video-worker` process
async def test_the_command_refuses_before_inserting_and_exits_non_zero(store, db_url):
    """As a real process: exit 2, the message on stderr, no row."""
    for args, payload in [
        (["ftp://cdn.example.com/a.mp4"], {"clips": [{"url": "ftp://cdn.example.com/a.mp4"}]}),
        (["--payload", '{"clips":[]}'], {"clips": []}),
    ]:
        proc = cli(db_url, "enqueue", *args, check=False, LOG_FORMAT="console")
        assert proc.returncode == 2 and proc.stdout == ""
        assert f"video-worker: {parser_message(payload)}" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert await job_ids(store) == set()


@pytest.mark.slow  # a real `video-worker` process
async def test_a_local_path_is_refused_with_a_hint(store, db_url, tmp_path: Path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not fetched")
    proc = cli(db_url, "enqueue", str(clip), check=False, LOG_FORMAT="console")
    assert proc.returncode == 2
    assert parser_message({"clips": [{"url": str(clip)}]}) in proc.stderr
    assert f"{clip} is a file on this machine" in proc.stderr
    assert await job_ids(store) == set()


def test_music_settings_without_music_are_refused_not_dropped():
    for flag in (["--volume", "0.5"], ["--duck"]):
        parsed = build_parser().parse_args(["enqueue", URL, *flag])
        with pytest.raises(ValueError, match="--volume and --duck set the music: give it with"):
            checked_payload(parsed, Settings())


def test_no_check_inserts_a_custom_handlers_payload_as_given():
    parsed = build_parser().parse_args(["enqueue", "--payload", '{"script": []}', "--no-check"])
    assert checked_payload(parsed, Settings()) == {"script": []}


@pytest.mark.slow  # a real `video-worker` process
async def test_a_valid_payload_is_still_enqueued(store, db_url):
    proc = cli(db_url, "enqueue", URL, "--fps", "29.97", "--width", "1080", "--height", "1920")
    assert proc.stdout.startswith("enqueued ")
    assert len(await job_ids(store)) == 1


@pytest.mark.slow  # a real `video-worker` process
async def test_a_typo_is_enqueued_with_a_warning_naming_the_key(store, db_url):
    payload = {
        "clips": [{"url": URL, "transtion": {"type": "fade"}}],
        "outptu": {"fps": 30},
        "captions": {"words": [{"word": "hi", "start": 0, "end": 1}], "stlye": "pop"},
    }
    proc = cli(db_url, "enqueue", "--payload", json.dumps(payload))
    assert proc.stdout.startswith("enqueued ")
    assert proc.stderr.count("video-worker: warning: ") == 3, proc.stderr
    for key in ("outptu", "clips[0].transtion", "captions.stlye"):
        assert f"warning: {key}: unknown key, ignored" in proc.stderr
    assert len(await job_ids(store)) == 1


async def read_until(stream: asyncio.StreamReader, needle: str, timeout: float = 30) -> str:
    seen = ""

    async def scan() -> str:
        nonlocal seen
        while needle not in seen:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"output ended before {needle!r}:\n{seen}")
            seen += line.decode()
        return seen

    return await asyncio.wait_for(scan(), timeout)


@pytest.mark.slow  # a real `video-worker` process
async def test_wait_says_once_that_no_worker_runs_then_follows_when_one_starts(store, db_url):
    payload = json.dumps({"script": [{"progress": 50, "stage": "processing", "message": "half"}]})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        *["enqueue", "--payload", payload, "--no-check", "--wait"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        first = await read_until(proc.stdout, "no worker seems to be running")
        assert "Start one with `video-worker run`" in first and "still waiting" in first
        async with running(store, scripted):
            out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = first + out.decode()
    assert proc.returncode == 0, text + err.decode()
    assert text.count("no worker seems to be running") == 1
    assert ": completed (attempt 1 of 3, progress 100%)" in text


def test_a_payload_that_is_not_json_says_so():
    parsed = build_parser().parse_args(["enqueue", "--payload", "{clips: []}"])
    with pytest.raises(ValueError, match=r"^--payload is not valid JSON: Expecting property"):
        checked_payload(parsed, Settings())


# --- the composition's flags: each builds its part of the payload ---------------------------------

IMG = "https://cdn.example.com/first-frame.png"
SOUND = "https://cdn.example.com/rain.mp3"
LOGO = "https://cdn.example.com/logo.png"


def built(*args: str) -> dict:
    """The payload `enqueue ARGS` inserts, after the worker's own parser accepted it."""
    parsed = build_parser().parse_args(["enqueue", *args])
    payload = checked_payload(parsed, Settings())
    parse_payload(payload, Settings())  # what checked_payload let through, the worker reads
    return payload


@pytest.mark.parametrize(
    ("args", "clips"),
    [
        ([IMG, "--duration", "3"], [{"url": IMG, "duration": 3.0}]),
        (
            [IMG, "--duration", "3", "--motion", "zoom_in", "--zoom", "0.2"],
            [{"url": IMG, "duration": 3.0, "motion": "zoom_in", "zoom": 0.2}],
        ),
        ([URL, "--start", "1.5", "--end", "4"], [{"url": URL, "start": 1.5, "end": 4.0}]),
        ([URL, "--clip-volume", "0"], [{"url": URL, "volume": 0.0}]),
        ([URL, "--voice", SOUND], [{"url": URL, "voice_url": SOUND}]),
        (
            [URL, "--transition", "fade:0.5", "--clip", IMG, "--duration", "2"],
            [
                {"url": URL, "transition": {"type": "fade", "duration": 0.5}},
                {"url": IMG, "duration": 2.0},
            ],
        ),
        (
            [URL, "--layer", SOUND, "volume=0.4", "loop", "start=1", "fade_in=0.5", "fade_out=1"],
            [
                {
                    "url": URL,
                    "audio": [
                        {"url": SOUND, "volume": 0.4, "loop": True, "start": 1,
                         "fade_in": 0.5, "fade_out": 1},
                    ],
                }
            ],
        ),
        (
            [URL, "--layer", SOUND, "--layer", LOGO.replace(".png", ".wav"), "loop=false"],
            [{"url": URL, "audio": [{"url": SOUND}, {"url": LOGO[:-4] + ".wav", "loop": False}]}],
        ),
    ],
    ids=["still", "still-motion", "trim", "clip-volume", "voice", "transition", "layer",
         "two-layers"],
)  # fmt: skip
def test_each_clip_flag_sets_its_field_on_the_clip_before_it(args, clips):
    assert built(*args) == {"clips": clips}


def test_clip_flags_follow_their_own_clip_however_the_clips_are_given():
    """Leading URLs, then --clip: each flag lands on the clip named last before it."""
    payload = built(
        URL, IMG, "--duration", "2", "--transition", "dissolve:0.25",
        "--clip", URL, "--clip-volume", "0.5",
        "--clip", IMG, "--duration", "4", "--motion", "pan_left",
    )  # fmt: skip
    assert payload["clips"] == [
        {"url": URL},
        {"url": IMG, "duration": 2.0, "transition": {"type": "dissolve", "duration": 0.25}},
        {"url": URL, "volume": 0.5},
        {"url": IMG, "duration": 4.0, "motion": "pan_left"},
    ]


def test_transcripts_are_read_from_json_files(tmp_path: Path):
    whisper = {"segments": [{"words": [{"word": "Hello", "start": 0.2, "end": 0.5}]}]}
    scribe = {"words": [{"text": "World", "start": 0.1, "end": 0.6, "type": "word"},
                        {"text": " ", "start": 0.6, "end": 0.7, "type": "spacing"}]}  # fmt: skip
    words = [{"word": "Hi", "start": 0, "end": 0.4}]
    for name, content in [("w.json", whisper), ("s.json", scribe), ("o.json", words)]:
        (tmp_path / name).write_text(json.dumps(content))
    payload = built(
        URL, "--transcript", str(tmp_path / "w.json"),
        "--clip", URL, "--voice", SOUND, "--voice-transcript", str(tmp_path / "s.json"),
        "--captions-words", str(tmp_path / "o.json"), "--caption-style", "highlight",
    )  # fmt: skip
    assert payload["clips"][0]["transcript"] == whisper
    assert payload["clips"][1]["voice_transcript"] == scribe
    assert payload["captions"] == {"words": words, "style": "highlight"}


def test_caption_flags_build_the_captions_object():
    assert built(
        URL, "--captions-srt", "https://cdn.example.com/a.srt",
        "--captions", "style=karaoke", "position=top", "size=0.08", "color=#00FF00",
        "highlight_color=#FF0000", "uppercase", "max_words=3", "outline=false", "box", "vtt",
    )["captions"] == {
        "srt_url": "https://cdn.example.com/a.srt", "style": "karaoke", "position": "top",
        "size": 0.08, "color": "#00FF00", "highlight_color": "#FF0000", "uppercase": True,
        "max_words": 3, "outline": False, "box": True, "vtt": True,
    }  # fmt: skip
    vtt = built(URL, "--captions-vtt", "https://cdn.example.com/a.vtt")
    assert vtt["captions"] == {"vtt_url": "https://cdn.example.com/a.vtt"}


def test_overlay_and_fade_flags_build_overlays_and_output():
    payload = built(
        URL,
        "--overlay-image", LOGO, "position=top_right", "width=0.15", "opacity=0.8",
        "margin=0.03", "start=0", "end=null",
        "--overlay-text", "Summer {sale} \\N", "position=center", "size=0.08",
        "color=#FFFFFF", "box", "start=0", "end=2",
        "--fade-in", "0.5", "--fade-out", "0.8",
    )  # fmt: skip
    assert payload["overlays"] == [
        {"image": LOGO, "position": "top_right", "width": 0.15, "opacity": 0.8, "margin": 0.03,
         "start": 0, "end": None},
        {"text": "Summer {sale} \\N", "position": "center", "size": 0.08, "color": "#FFFFFF",
         "box": True, "start": 0, "end": 2},
    ]  # fmt: skip
    assert payload["output"] == {"fade_in": 0.5, "fade_out": 0.8}


def test_no_thumbnail_is_a_flag_too():
    assert built(URL, "--no-thumbnail")["output"] == {"thumbnail": False}
    assert "output" not in built(URL)


def test_fit_takes_blur_and_refuses_what_the_payload_refuses(capsys):
    assert built(URL, "--width", "1080", "--height", "1920", "--fit", "blur")["output"] == {
        "width": 1080, "height": 1920, "fit": "blur"}  # fmt: skip
    with pytest.raises(SystemExit):
        built(URL, "--fit", "fill")
    assert "'blur'" in capsys.readouterr().err


def test_the_contracts_example_can_be_built_from_flags(tmp_path: Path):
    """Every field of the contract's composition example, from flags alone."""
    (tmp_path / "t1.json").write_text('{"words": [{"word": "Hello", "start": 0.2, "end": 0.5}]}')
    (tmp_path / "t2.json").write_text('{"words": [{"word": "World", "start": 0.1, "end": 0.6}]}')
    payload = built(
        "https://cdn.example.com/shot1.mp4", "--clip-volume", "0.8",
        "--layer", SOUND, "volume=0.5", "loop", "start=0", "fade_in=0.5", "fade_out=0.5",
        "--transcript", str(tmp_path / "t1.json"), "--transition", "fade:0.5",
        "--clip", IMG, "--duration", "3", "--motion", "zoom_in", "--zoom", "0.15",
        "--voice", "https://cdn.example.com/vo2.mp3",
        "--voice-transcript", str(tmp_path / "t2.json"),
        "--captions", "style=highlight", "position=bottom", "size=0.06", "color=#FFFFFF",
        "highlight_color=#FFD400", "uppercase=false", "max_words=4", "outline=true",
        "box=false", "vtt=true",
        "--overlay-image", LOGO, "position=top_right", "width=0.15", "opacity=0.8",
        "margin=0.03", "start=0", "end=null",
        "--overlay-text", "Summer sale", "position=center", "size=0.08", "color=#FFFFFF",
        "box=true", "start=0", "end=2",
        "--fade-in", "0.5", "--fade-out", "0.8",
    )  # fmt: skip
    parsed = parse_payload(payload, Settings())
    assert parsed.clips[0].transition is not None
    assert parsed.clips[1].motion == "zoom_in" and parsed.clips[1].duration == 3
    assert parsed.captions is not None and parsed.captions.style == "highlight"
    assert len(parsed.overlays) == 2 and parsed.output.fade_out == 0.8
    assert [w.text for w in parsed.clips[1].voice_transcript or ()] == ["World"]


@pytest.mark.parametrize(
    ("args", "payload"),
    [
        (
            [URL, "--transition", "spin:0.5", "--clip", URL],
            {"clips": [{"url": URL, "transition": {"type": "spin", "duration": 0.5}},
                       {"url": URL}]},
        ),
        (
            [URL, "--transition", "fade:0.5"],
            {"clips": [{"url": URL, "transition": {"type": "fade", "duration": 0.5}}]},
        ),
        ([IMG, "--motion", "zoom_in", "--zoom", "2"],
         {"clips": [{"url": IMG, "motion": "zoom_in", "zoom": 2.0}]}),
        ([URL, "--layer", SOUND, "volume=3"],
         {"clips": [{"url": URL, "audio": [{"url": SOUND, "volume": 3}]}]}),
        ([URL, "--overlay-image", LOGO, "position=middle"],
         {"clips": [{"url": URL}], "overlays": [{"image": LOGO, "position": "middle"}]}),
        ([URL, "--captions", "color=red"], {"clips": [{"url": URL}], "captions": {"color": "red"}}),
        ([URL, "--fade-in", "-1"], {"clips": [{"url": URL}], "output": {"fade_in": -1.0}}),
    ],
    ids=["transition-type", "transition-on-last", "zoom", "layer-volume", "overlay-position",
         "caption-colour", "fade-in"],
)  # fmt: skip
def test_a_composition_the_worker_would_refuse_gets_the_workers_message(args, payload):
    parsed = build_parser().parse_args(["enqueue", *args])
    with pytest.raises(ValueError) as refused:
        checked_payload(parsed, Settings())
    assert str(refused.value) == parser_message(payload)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "3", IMG], "--duration: applies to the clip named before it"),
        ([URL, "--transition", "fade"], "--transition: must be TYPE:SECONDS, like fade:0.5"),
        ([URL, "--transition", "fade:soon"], "--transition: must be TYPE:SECONDS"),
        ([URL, "--duration", "2", "--duration", "3"], "--duration: given twice for the clip"),
        ([URL, "--layer", SOUND, "volum=1"], "'volum=1' is not a setting here; use KEY=VALUE"),
        ([URL, "--captions", "fnt=Arial"], "KEY one of style, position"),
        ([URL, "--overlay-text", "Hi", "width=0.2"], "KEY one of position, size, color, box"),
    ],
    ids=["flag-before-clip", "transition-no-seconds", "transition-bad-seconds", "twice",
         "layer-key", "caption-key", "text-overlay-key"],
)  # fmt: skip
def test_flags_that_cannot_mean_a_payload_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as usage:
        build_parser().parse_args(["enqueue", *args])
    assert usage.value.code == 2
    assert message in capsys.readouterr().err


def test_files_named_by_flags_must_exist_and_be_json(tmp_path: Path):
    (tmp_path / "bad.json").write_text("{words: []}")
    for args, message in [
        ([URL, "--transcript", str(tmp_path / "none.json")],
         f"--transcript {tmp_path / 'none.json'}: No such file or directory"),
        ([URL, "--captions-words", str(tmp_path / "bad.json")],
         f"--captions-words {tmp_path / 'bad.json'} is not valid JSON: Expecting property"),
    ]:  # fmt: skip
        parsed = build_parser().parse_args(["enqueue", *args])
        with pytest.raises(ValueError) as refused:
            checked_payload(parsed, Settings())
        assert str(refused.value).startswith(message)


def test_payload_flags_beside_a_whole_payload_are_refused_not_dropped(tmp_path: Path):
    whole = tmp_path / "job.json"
    whole.write_text(json.dumps({"clips": [{"url": URL}], "output": {"fade_in": 1}}))
    for extra in ([URL], ["--audio", SOUND], ["--fade-out", "1"], ["--caption-style", "static"],
                  ["--overlay-text", "Hi"]):  # fmt: skip
        parsed = build_parser().parse_args(["enqueue", "--payload", f"@{whole}", *extra])
        with pytest.raises(ValueError, match=r"^--payload is the whole payload: leave out"):
            checked_payload(parsed, Settings())
    alone = build_parser().parse_args(["enqueue", "--payload", f"@{whole}", "--priority", "3"])
    assert checked_payload(alone, Settings()) == {"clips": [{"url": URL}], "output": {"fade_in": 1}}


@pytest.mark.slow  # a real `video-worker` process
async def test_a_composition_from_flags_is_inserted_as_built(store, db_url):
    """As a real process: the row holds exactly the payload the flags describe."""
    proc = cli(
        db_url, "enqueue", URL, "--transition", "fade:0.5", "--clip", IMG, "--duration", "3",
        "--motion", "zoom_in", "--caption-style", "highlight", "--overlay-text", "Hi", "end=2",
    )  # fmt: skip
    job_id = proc.stdout.split()[1]
    row = json.loads(cli(db_url, "status", job_id, "--json").stdout)
    assert row["payload"] == {
        "clips": [
            {"url": URL, "transition": {"type": "fade", "duration": 0.5}},
            {"url": IMG, "duration": 3.0, "motion": "zoom_in"},
        ],
        "captions": {"style": "highlight"},
        "overlays": [{"text": "Hi", "end": 2}],
    }
    assert await job_ids(store) == {uuid.UUID(job_id)}
