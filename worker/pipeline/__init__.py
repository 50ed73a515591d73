"""The job handler the daemon runs by default: payload → downloads → probe → FFmpeg → storage.

`handle_job(job, ctx)` is what `video-worker run` loads; `Pipeline` is the same with its storage
and download policy passed in, for tests and embedding.
"""

from worker.pipeline.handler import Pipeline, handle_job

__all__ = ["Pipeline", "handle_job"]
