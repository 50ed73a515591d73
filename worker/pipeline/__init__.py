"""The job handler the daemon runs by default: payload → downloads → probe → FFmpeg → storage.

`build_pipeline(settings)` (root.py) makes the `Pipeline` that `video-worker run` runs, from
its parts: storage, download policy and probe limits. `Pipeline` takes those parts directly,
for tests and embedding; `handle_job(job, ctx)` builds one per job, for `--handler`.
"""

from worker.pipeline.handler import Pipeline
from worker.pipeline.inputs import InputId, Role
from worker.pipeline.root import build_pipeline, handle_job

__all__ = ["InputId", "Pipeline", "Role", "build_pipeline", "handle_job"]
