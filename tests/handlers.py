"""Small real handlers for queue tests, driven by the job's payload.

`scripted` runs payload["script"], a list of steps:
    {"sleep": seconds}                      await asyncio.sleep
    {"progress": n, "stage": s, "message": m}
    {"fail": "why"}                         raise PermanentError (no retry)
    {"raise": "why"}                        raise RuntimeError (retryable)
    {"fail_until_attempt": n}               raise RuntimeError while attempt < n
    {"ignore_cancel": seconds}              keep running that long even when cancelled
It appends "<job id> <attempt> <worker id>" to the file in $VW_RUN_LOG (when set) as it starts,
so tests can count how often each job ran, across processes.
"""

from __future__ import annotations

import asyncio
import os
import time

from worker.errors import PermanentError
from worker.queue.context import JobContext
from worker.queue.models import Job, JobOutcome


def _log_run(job: Job, ctx: JobContext) -> None:
    path = os.environ.get("VW_RUN_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{job.id} {job.attempts} {ctx.settings.worker_id}\n")


async def scripted(job: Job, ctx: JobContext) -> JobOutcome:
    _log_run(job, ctx)
    for step in (job.payload or {}).get("script", []):
        if "sleep" in step:
            await asyncio.sleep(step["sleep"])
        if "progress" in step:
            await ctx.report(step["progress"], step.get("stage"), step.get("message"))
        if "fail" in step:
            raise PermanentError(step["fail"])
        if "raise" in step:
            raise RuntimeError(step["raise"])
        if "fail_until_attempt" in step and job.attempts < step["fail_until_attempt"]:
            raise RuntimeError(f"flaky on attempt {job.attempts}")
        if "ignore_cancel" in step:
            deadline = time.monotonic() + step["ignore_cancel"]
            while time.monotonic() < deadline:
                try:
                    await asyncio.sleep(deadline - time.monotonic())
                except asyncio.CancelledError:
                    continue
    return JobOutcome(video_url=f"file:///out/{job.id}.mp4", result={"attempt": job.attempts})


async def noop(job: Job, ctx: JobContext) -> JobOutcome:
    return JobOutcome()
