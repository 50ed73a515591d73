"""What a killed worker leaves in HOME/tmp is removed at the next start: every attempt folder
whose job no longer runs, and nothing a running job may still use."""

from __future__ import annotations

import uuid

from tests.queue.procs import Replica
from worker.pipeline.scratch import attempt_folder, sweep_orphans


async def _job(store, status: str) -> uuid.UUID:
    job_id, _ = await store.enqueue({})
    async with store.pool.connection() as conn:
        await conn.execute("update video_jobs set status = %s where id = %s", (status, job_id))
    return job_id


def _left_behind(home, job_id: uuid.UUID):
    folder = attempt_folder(home, job_id)
    (folder / "inputs").mkdir()
    (folder / "inputs" / "input-000").write_bytes(b"\0" * 1000)
    return folder


async def test_the_sweep_removes_only_folders_of_jobs_that_no_longer_run(store, tmp_path):
    home = tmp_path / "home"
    running = _left_behind(home, await _job(store, "processing"))
    finished = [_left_behind(home, await _job(store, s)) for s in ("completed", "failed")]
    waiting = _left_behind(home, await _job(store, "pending"))  # handed back after the crash
    deleted = _left_behind(home, uuid.uuid4())  # the row was cleaned up since
    other = home / "tmp" / "not-a-job-folder"
    other.mkdir()

    removed = await sweep_orphans(home, store.job_statuses)

    assert sorted(removed) == sorted([*finished, waiting, deleted])
    assert running.is_dir() and other.is_dir()
    assert not any(f.exists() for f in removed)


async def test_a_starting_worker_sweeps_what_a_killed_one_left(store, db_url, tmp_path):
    orphan = _left_behind(tmp_path / "home", await _job(store, "completed"))
    worker = Replica(db_url, "restarted", tmp_path)  # the same home as the killed one
    try:
        event = worker.wait_event("scratch_swept")
    finally:
        worker.stop()
    assert event["folders"] == 1 and not orphan.exists()
