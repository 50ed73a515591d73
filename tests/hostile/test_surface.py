"""Hostile inputs aimed at what the worker shows outside: a job whose input makes the server fail
underneath (a name the file system refuses, a folder where a file goes) must end with an error
that says what failed without showing the server's paths, errno reprs or a traceback, and the
worker then completes a good job.

These go through storage, whose wording another change may refine; what holds whatever the
wording is what the row must *not* contain, and that it says something.
"""

from __future__ import annotations

import pytest

from tests.hostile.harness import Expect, corpus_settings, put_object, run_case

LONG = "x" * 300  # past NAME_MAX (255): the file system refuses the name with the full path


def leaks(tmp_path) -> tuple[str, ...]:
    """What no row may show: where the worker keeps files, and Python's error reprs."""
    return (str(tmp_path), "/tmp/", "[Errno", "Traceback", "OSError: [")


# (output.path, objects already in storage): writes that fail in the file system.
WRITES = [
    pytest.param(f"{LONG}.mp4", (), id="a file name past NAME_MAX"),
    pytest.param(f"user/{LONG}/v.mp4", (), id="a folder name past NAME_MAX"),
    pytest.param(f"a/{'y' * 256}/v.mp4", (), id="a folder name one past NAME_MAX"),
    pytest.param("taken/v.mp4", ("taken/v.mp4/inner.bin",), id="a folder where the file goes"),
    pytest.param("file.mp4/v.mp4", ("file.mp4",), id="a file where a folder goes"),
]


@pytest.mark.parametrize(("path", "existing"), WRITES)
async def test_an_output_the_file_system_refuses_shows_no_server_path(
    store, tmp_path, good_clip, path, existing
):
    settings = corpus_settings(tmp_path)
    for key in existing:
        put_object(settings, key, b"someone else's bytes")
    payload = {
        "clips": [{"url": f"storage://{settings.storage_bucket}/corpus/good.mp4"}],
        "output": {"path": path},
    }
    row = await run_case(
        store, settings, good_clip, payload, Expect(attempts=None, not_in_error=leaks(tmp_path))
    )
    assert row["error"] and len(row["error"]) < 2000
    assert all(e["error"] and str(tmp_path) not in e["error"] for e in row["errors"] or [])


# storage:// reads with keys the file system refuses.
READS = [
    pytest.param(f"{LONG}.mp4", id="a key past NAME_MAX"),
    pytest.param(f"user/{LONG}/clip.mp4", id="a folder past NAME_MAX"),
    pytest.param("corpus/good.mp4/inside.mp4", id="a key under a file"),
]


@pytest.mark.parametrize("key", READS)
async def test_a_read_the_file_system_refuses_shows_no_server_path(store, tmp_path, good_clip, key):
    settings = corpus_settings(tmp_path)
    payload = {"clips": [{"url": f"storage://{settings.storage_bucket}/{key}"}]}
    row = await run_case(
        store, settings, good_clip, payload, Expect(attempts=None, not_in_error=leaks(tmp_path))
    )
    assert row["error"]
