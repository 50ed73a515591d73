"""Shared fixtures: a real Postgres and a fresh database per test (see tests/pg.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.pg import Databases, postgres_server
from worker.db.connection import make_pool
from worker.queue.postgres import PostgresJobStore

_OWN_BASETEMP = pytest.StashKey[str]()
TESTS = Path(__file__).resolve().parent

# The fast tier, `pytest -m "not slow"`, is the loop to run after each change: 1,728 tests in
# 65 s on a shared two-core machine at a load average of about 1 (the full suite: 2,179 tests,
# the README's test command and CI's). It touches every package of worker/ (tests/test_tiers.py
# holds that, and that the lists below name real tests). These files are left to the full suite:
# they start worker processes, run whole jobs through FFmpeg end to end, or time out on purpose.
# A test elsewhere can say `@pytest.mark.slow` itself, or be named in SLOW_TESTS below.
SLOW_FILES = frozenset({
    "hostile/test_addresses.py", "hostile/test_bombs.py", "hostile/test_caption_bounds.py",
    "hostile/test_claim.py", "hostile/test_known.py", "hostile/test_stills.py",
    "hostile/test_surface.py", "hostile/test_tenants.py",
    "queue/test_chaos.py", "queue/test_processes.py", "queue/test_pooler.py",
    "queue/test_worker_role.py",
    "media/test_assemble.py", "media/test_compose.py", "media/test_sound.py",
    "media/test_audio.py", "media/test_probe_limits.py",
    "test_demo.py", "test_embedded_lifetime.py", "test_pipeline.py", "test_cli_mistakes.py",
    "test_dashboard_browser.py", "test_caption_strip.py", "test_cli.py", "test_cleanup_cli.py",
    "storage/test_cleanup_s3.py",
})  # fmt: skip


# Single tests left to the full suite, in files whose other tests stay in the fast tier.
SLOW_TESTS = frozenset({
    # each starts a worker process (about two seconds of CPU, most of it reading the fonts);
    # the password test does so once per form, each form also parsed and masked in-process
    "test_secrets.py::test_a_running_worker_never_logs_the_password",
    "queue/test_fair_share.py::test_the_worker_writes_its_limits_before_health_answers",
    "test_auto_cleanup.py::test_a_running_worker_cleans_up_when_told_to",
    "test_scratch.py::test_a_starting_worker_sweeps_what_a_killed_one_left",
    # a 1080p60 encode, long enough to cancel in its middle; a subtitle document written to 16 MB
    "media/test_caption_child.py::test_a_document_past_its_size_limit_is_refused_naming_the_captions",
    "media/test_ffmpeg.py::test_cancelled_assembly_leaves_no_process_and_no_output",
    # wait out a timeout, a silence, a throttle or a clock: a second or more each, idle
    "queue/test_runner.py::test_progress_writes_are_throttled_and_the_last_value_lands",
    "test_loop_lag.py::test_a_stall_in_several_pieces_warns_once_and_sums_it_up_when_over",
    "test_loop_lag.py::test_the_recent_lag_forgets_a_stall_after_its_window_and_the_max_does_not",
    "queue/test_store.py::test_triggers_notify_only_when_a_row_becomes_ready_or_is_cancelled",
    "queue/test_store.py::test_stale_statistics_are_refreshed_for_the_claim_plan",
    "queue/test_runner.py::test_a_handler_that_ignores_cancellation_keeps_its_slot_and_stops_the_worker",
    "fetch/test_fetch_download.py::test_stalled_server_times_out",
    "fetch/test_fetch_download.py::test_429_waits_for_retry_after",
    "test_errors.py::test_a_job_that_runs_too_long_gets_the_timeout_sentence",
    "test_webhooks.py::test_timeout_is_a_failed_attempt",
    # `migrate` as a process, twice (the settings check beside it keeps one in the fast tier)
    "queue/test_fair_share.py::test_migrate_writes_the_configured_limits",
    # a render with a mixed sound track (the picture-only overlay renders stay in the fast tier)
    "media/test_video_overlays.py::test_its_sound_is_mixed_only_with_a_volume",
})  # fmt: skip

# Parametrized tests whose every case costs a database or a process and takes the same path:
# one case (by its place in the list) runs in both tiers, the others in the full suite only.
ONE_CASE_FAST = {
    "test_supabase.py::test_a_user_cannot_insert_worker_columns": 0,
    "test_supabase.py::test_a_user_cannot_update_their_own_rows_worker_or_app_columns": 0,
    "test_supabase.py::test_enqueue_refuses_a_payload_without_clips": 0,
    "test_supabase.py::test_anon_gets_nothing": 0,
    "test_supabase.py::test_the_worker_claims_and_completes_jobs_with_rls_on": 1,  # the owner
    "test_secrets.py::test_a_malformed_url_is_refused_at_start_with_the_password_masked": 0,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).resolve().relative_to(TESTS).as_posix()
        test = f"{path}::{getattr(item, 'originalname', item.name)}"
        keep = ONE_CASE_FAST.get(test)
        if path in SLOW_FILES or test in SLOW_TESTS or keep not in (None, _case_index(item)):
            item.add_marker(pytest.mark.slow)


def _case_index(item: pytest.Item) -> int | None:
    """The place of a parametrized test's case in its list of cases."""
    callspec = getattr(item, "callspec", None)
    return max(callspec.indices.values()) if callspec else None


def pytest_configure(config: pytest.Config) -> None:
    """A temp folder of this session's own. Sessions running at once (two checkouts on one
    machine) otherwise share /tmp/pytest-of-USER, and each one's pruning of old numbered
    folders deletes folders the others are still using (seen as an embedded Postgres whose
    data folder vanished mid-test)."""
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="pytest-video-worker-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove that folder after a green run; keep it for reading after a red one."""
    own = session.config.stash.get(_OWN_BASETEMP, None)
    if own and exitstatus == 0:
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    with postgres_server() as (admin_url, source):
        print(f"\n[tests] Postgres from {source}")
        dbs = Databases(admin_url)
        dbs.build_template()
        try:
            yield dbs
        finally:
            dbs.drop_all()


@pytest.fixture
def db_url(databases: Databases) -> Iterator[str]:
    url = databases.create()
    yield url
    databases.drop(url, wait=False)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[PostgresJobStore]:
    pool = make_pool(db_url, max_size=8)
    await pool.open(wait=True)
    try:
        yield PostgresJobStore(pool)
    finally:
        await pool.close()
