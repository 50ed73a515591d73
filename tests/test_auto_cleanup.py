"""AUTO_CLEANUP: the worker itself removes old finished jobs with their stored files, about
once an hour; off by default."""

from __future__ import annotations

from tests.cleanup_helpers import finished_job, job_ids, stored
from tests.queue.helpers import fast_settings
from tests.queue.procs import Replica
from tests.test_cleanup_cli import write
from worker.cleanup import AutoCleanup


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_worker_deletes_old_jobs_and_their_files_once_an_hour(store, tmp_path):
    root = tmp_path / "storage" / "generated-videos"
    video, poster = write(root / "u1/old.mp4", 1000), write(root / "u1/old.jpg", 100)
    await finished_job(
        store, days_ago=10, result=stored("u1/old.mp4", 1000, "generated-videos", "u1/old.jpg")
    )
    recent = await finished_job(store, days_ago=1)
    clock = Clock()
    settings = fast_settings(home=tmp_path, storage_backend="local", auto_cleanup=True)
    cleanup = AutoCleanup(settings, store, clock=clock)

    freed = await cleanup.maybe_run()
    assert freed is not None and (freed.rows, freed.objects) == (1, 2)
    assert not video.exists() and not poster.exists() and await job_ids(store) == {recent}

    await finished_job(store, days_ago=8)
    clock.now += 60
    assert await cleanup.maybe_run() is None  # not again within the hour
    clock.now += 3600
    again = await cleanup.maybe_run()
    assert again is not None and again.rows == 1


async def test_it_is_off_unless_the_operator_turns_it_on(store, tmp_path):
    await finished_job(store, days_ago=30)
    settings = fast_settings(home=tmp_path, storage_backend="local")
    assert await AutoCleanup(settings, store).maybe_run() is None
    assert len(await job_ids(store)) == 1


async def test_a_running_worker_cleans_up_when_told_to(store, db_url, tmp_path):
    video = write(tmp_path / "home" / "storage" / "generated-videos" / "u1/old.mp4", 1000)
    await finished_job(store, days_ago=10, result=stored("u1/old.mp4", 1000, "generated-videos"))
    worker = Replica(db_url, "tidy", tmp_path, AUTO_CLEANUP="true", STORAGE_BACKEND="local")
    try:
        event = worker.wait_event("auto_cleanup")
    finally:
        worker.stop()
    assert event["summary"].startswith("removed 1 finished job(s) older than 7 day(s)")
    assert not video.exists() and await job_ids(store) == set()
