"""`video-worker cleanup`: the age it is given, and the files it can delete (local storage).

The S3 half runs against the moto server in tests/storage/test_cleanup_s3.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cleanup_helpers import finished_job, job_ids, stored
from tests.test_cli import cli


@pytest.mark.parametrize("days", ["0", "-1"])
async def test_an_age_below_one_day_is_refused_and_nothing_is_deleted(store, db_url, days):
    """-1 used to delete jobs that had just finished; 0 silently meant 7."""
    just_now = await finished_job(store, days_ago=0.0001)
    old = await finished_job(store, days_ago=30)
    proc = cli(db_url, "cleanup", "--days", days, check=False)
    assert proc.returncode == 2
    assert "--days: must be at least 1" in proc.stderr and f"got {days}" in proc.stderr
    assert await job_ids(store) == {just_now, old}


@pytest.mark.parametrize("days", ["36501", "99999999999"])
async def test_an_age_past_a_century_is_refused_without_a_traceback(store, db_url, days):
    """99999999999 days used to reach Postgres and print its overflow as a traceback."""
    old = await finished_job(store, days_ago=30)
    proc = cli(db_url, "cleanup", "--days", days, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"--days: must be at most 36500 (a century), got {days}" in proc.stderr
    assert await job_ids(store) == {old}


def write(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"v" * size)
    return path


async def test_delete_files_removes_old_videos_and_posters_and_counts_them(store, db_url, tmp_path):
    root = tmp_path / "storage"
    old_video = write(root / "generated-videos" / "u1/old.mp4", 1000)
    old_poster = write(root / "generated-videos" / "u1/old.jpg", 200)
    moved = write(root / "archive" / "u2/moved.mp4", 50)  # written when the bucket was another
    new_video = write(root / "generated-videos" / "u1/new.mp4", 300)
    new_poster = write(root / "generated-videos" / "u1/new.jpg", 30)
    await finished_job(
        store, days_ago=10, result=stored("u1/old.mp4", 1000, "generated-videos", "u1/old.jpg")
    )
    await finished_job(store, days_ago=9, result=stored("u2/moved.mp4", 50, "archive"))
    await finished_job(store, days_ago=12, status="failed")  # stored nothing
    recent = await finished_job(
        store, days_ago=1, result=stored("u1/new.mp4", 300, "generated-videos", "u1/new.jpg")
    )
    home = {"VIDEO_WORKER_HOME": str(tmp_path), "STORAGE_BACKEND": "local"}

    plain = cli(db_url, "cleanup", "--days", "30", **home)
    assert plain.stdout.startswith("removed 0 finished job(s)") and len(await job_ids(store)) == 4

    proc = cli(db_url, "cleanup", "--days", "7", "--delete-files", **home)
    assert proc.stdout.strip() == (
        "removed 3 finished job(s) older than 7 day(s) and 3 stored object(s), freeing 1250 bytes"
    )
    assert not old_video.exists() and not old_poster.exists() and not moved.exists()
    assert new_video.exists() and new_poster.exists()
    assert await job_ids(store) == {recent}


async def test_delete_files_removes_the_captions_file_beside_the_video(store, db_url, tmp_path):
    bucket = tmp_path / "storage" / "generated-videos"
    files = [write(bucket / name, size) for name, size in (("u1/a.mp4", 500), ("u1/a.vtt", 70))]
    kept = write(bucket / "u1/b.vtt", 20)  # a newer job's captions
    await finished_job(store, days_ago=10, result=stored("u1/a.mp4", 500, "generated-videos",
                                                         captions="u1/a.vtt"))  # fmt: skip
    recent = await finished_job(store, days_ago=1, result=stored(
        "u1/b.mp4", 9, "generated-videos", captions="u1/b.vtt"))  # fmt: skip
    home = {"VIDEO_WORKER_HOME": str(tmp_path), "STORAGE_BACKEND": "local"}

    proc = cli(db_url, "cleanup", "--days", "7", "--delete-files", **home)
    assert proc.stdout.strip() == (
        "removed 1 finished job(s) older than 7 day(s) and 2 stored object(s), freeing 570 bytes"
    )
    assert not any(f.exists() for f in files) and kept.exists()
    assert await job_ids(store) == {recent}


async def test_a_job_whose_files_cannot_be_deleted_keeps_its_row(store, db_url, tmp_path):
    """Files first, rows after: a row is never removed while its files may remain."""
    bad = await finished_job(store, days_ago=10, result=stored("../escape.mp4", 10, "videos"))
    good_file = write(tmp_path / "storage" / "videos" / "ok.mp4", 10)
    await finished_job(store, days_ago=10, result=stored("ok.mp4", 10, "videos"))
    proc = cli(
        db_url,
        "cleanup",
        "--delete-files",
        check=False,
        VIDEO_WORKER_HOME=str(tmp_path),
        STORAGE_BACKEND="local",
    )
    assert proc.returncode == 1
    assert "removed 1 finished job(s) older than 7 day(s)" in proc.stdout
    assert f"kept 1 job(s) whose files could not be deleted: {bad}: " in proc.stdout
    assert not good_file.exists() and await job_ids(store) == {bad}


async def test_an_object_a_newer_job_rewrote_is_left_to_that_job(store, db_url, tmp_path):
    """An app that renders to the same output.path again: the old job's row goes, the
    object (now the new job's video) stays."""
    video = write(tmp_path / "storage" / "videos" / "u/profile.mp4", 10)
    old = await finished_job(store, days_ago=10, result=stored("u/profile.mp4", 10, "videos"))
    new = await finished_job(store, days_ago=0.1, result=stored("u/profile.mp4", 10, "videos"))
    proc = cli(
        db_url,
        "cleanup",
        "--delete-files",
        VIDEO_WORKER_HOME=str(tmp_path),
        STORAGE_BACKEND="local",
    )
    assert proc.stdout.strip() == (
        "removed 1 finished job(s) older than 7 day(s) and 0 stored object(s), freeing 0 "
        "bytes; left 1 object(s) that newer jobs still use"
    )
    assert video.exists() and await job_ids(store) == {new} and old != new
