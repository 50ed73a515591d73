"""Hostile inputs aimed at what the worker shows outside: a job whose input makes the server fail
underneath (a name the file system refuses, a folder where a file goes) must end with an error
that says what failed without showing the server's paths, errno reprs or a traceback, and the
worker then completes a good job.

Each row must fail at once (attempts 1: retrying cannot help), say which field or input is at
fault and why, and show none of the server's paths.
"""

from __future__ import annotations

import pytest

from tests.hostile.harness import Expect, corpus_settings, put_object, run_case

LONG = "x" * 300  # past NAME_MAX (255): the file system refuses the name with the full path


def leaks(tmp_path) -> tuple[str, ...]:
    """What no row may show: where the worker keeps files, and Python's error reprs."""
    return (str(tmp_path), "/tmp/", "[Errno", "Traceback", "OSError: [")


NAME_MAX_WORDS = ("payload.output.path: ", "longer than 255 bytes")

# (output.path, objects already in storage, words of the row's error): writes that would fail
# in the file system.
WRITES = [
    pytest.param(f"{LONG}.mp4", (), NAME_MAX_WORDS, id="a file name past NAME_MAX"),
    pytest.param(f"user/{LONG}/v.mp4", (), NAME_MAX_WORDS, id="a folder name past NAME_MAX"),
    pytest.param(f"a/{'y' * 256}/v.mp4", (), NAME_MAX_WORDS, id="a folder name one past NAME_MAX"),
    pytest.param(
        "taken/v.mp4",
        ("taken/v.mp4/inner.bin",),
        (
            "payload.output.path: ",
            "'taken/v.mp4' cannot be written",
            "a folder of that name holds other objects",
        ),
        id="a folder where the file goes",
    ),
    pytest.param(
        "file.mp4/v.mp4",
        ("file.mp4",),
        ("payload.output.path: ", "'file.mp4' is an object, not a folder"),
        id="a file where a folder goes",
    ),
]


@pytest.mark.parametrize(("path", "existing", "words"), WRITES)
async def test_an_output_the_file_system_refuses_shows_no_server_path(
    store, tmp_path, good_clip, path, existing, words
):
    settings = corpus_settings(tmp_path)
    for key in existing:
        put_object(settings, key, b"someone else's bytes")
    payload = {
        "clips": [{"url": f"storage://{settings.storage_bucket}/corpus/good.mp4"}],
        "output": {"path": path},
    }
    expect = Expect(attempts=1, error=words, not_in_error=leaks(tmp_path))
    row = await run_case(store, settings, good_clip, payload, expect)
    assert len(row["error"]) < 2000
    assert all(e["error"] and str(tmp_path) not in e["error"] for e in row["errors"] or [])


URL_NAME_MAX = ("payload.clips[0].url: ", "longer than 255 bytes")

# storage:// reads with keys the file system refuses, and the words of the row's error.
READS = [
    pytest.param(f"{LONG}.mp4", URL_NAME_MAX, id="a key past NAME_MAX"),
    pytest.param(f"user/{LONG}/clip.mp4", URL_NAME_MAX, id="a folder past NAME_MAX"),
    pytest.param(
        "corpus/good.mp4/inside.mp4",
        ("clips[0]: storage://", "/corpus/good.mp4/inside.mp4 does not exist"),
        id="a key under a file",
    ),
]


@pytest.mark.parametrize(("key", "words"), READS)
async def test_a_read_the_file_system_refuses_shows_no_server_path(
    store, tmp_path, good_clip, key, words
):
    settings = corpus_settings(tmp_path)
    payload = {"clips": [{"url": f"storage://{settings.storage_bucket}/{key}"}]}
    expect = Expect(attempts=1, error=words, not_in_error=leaks(tmp_path))
    await run_case(store, settings, good_clip, payload, expect)
