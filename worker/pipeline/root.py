"""The one place a `Pipeline` is built from its parts.

The settings decide the parts (the storage backend, the probe's limits); the download policy
is the default one unless a caller (a test, an embedding app) passes its own. `video-worker
run` calls `build_pipeline` once at start, so bad storage settings fail before any job.
"""

from __future__ import annotations

from worker.fetch import DEFAULT_POLICY, FetchPolicy
from worker.pipeline.handler import Pipeline, settings_probe_limits
from worker.queue.context import JobContext
from worker.queue.models import Job, JobOutcome
from worker.settings import Settings
from worker.storage import Storage, make_storage


def build_pipeline(
    settings: Settings,
    *,
    storage: Storage | None = None,
    fetch_policy: FetchPolicy = DEFAULT_POLICY,
) -> Pipeline:
    """A Pipeline over `settings`' storage (or `storage`), with their probe limits."""
    return Pipeline(
        settings,
        storage if storage is not None else make_storage(settings),
        fetch_policy=fetch_policy,
        probe_limits=settings_probe_limits(settings),
    )


async def handle_job(job: Job, ctx: JobContext) -> JobOutcome:
    """A handler to name with `--handler worker.pipeline:handle_job`: builds the pipeline from
    the job's settings for each job (`video-worker run` builds one at start instead)."""
    return await build_pipeline(ctx.settings)(job, ctx)
