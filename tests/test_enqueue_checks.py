"""`enqueue` refuses what is certain to fail, with the worker's own messages, and `--wait`
says when no worker is there to take the job."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.cleanup_helpers import job_ids
from tests.handlers import scripted
from tests.queue.helpers import running
from tests.queue.procs import ROOT
from tests.test_cli import cli
from worker.cli import build_parser
from worker.commands import checked_payload
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


async def test_the_command_refuses_before_inserting_and_exits_non_zero(store, db_url):
    """As a real process: exit 2, the message on stderr, no row."""
    for args, payload in [
        (["ftp://cdn.example.com/a.mp4"], {"clips": [{"url": "ftp://cdn.example.com/a.mp4"}]}),
        (["--payload", '{"clips":[]}'], {"clips": []}),
    ]:
        proc = cli(db_url, "enqueue", *args, check=False)
        assert proc.returncode == 2 and proc.stdout == ""
        assert f"video-worker: {parser_message(payload)}" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert await job_ids(store) == set()


async def test_a_local_path_is_refused_with_a_hint(store, db_url, tmp_path: Path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not fetched")
    proc = cli(db_url, "enqueue", str(clip), check=False)
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


async def test_a_valid_payload_is_still_enqueued(store, db_url):
    proc = cli(db_url, "enqueue", URL, "--fps", "29.97", "--width", "1080", "--height", "1920")
    assert proc.stdout.startswith("enqueued ")
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
