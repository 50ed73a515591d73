"""The pipeline's scratch space: one folder per attempt under `HOME/tmp`, named after its job,
and the sweep that removes what a killed worker left there.

A worker removes its attempt's folder in a `finally`; SIGKILL, the OOM killer or a power cut
skip that, and on a machine whose disk outlives the process (a VM, a persistent volume) the
downloads and half-made videos stayed for good. At start the worker removes every folder whose
job is no longer running anywhere: folders of jobs still `processing` are left alone, since
another replica sharing this home may be working in them (after a crash, the lease sends the job
back to `pending` and the next start removes the folder).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

PREFIX = "job-"
_UUID_CHARS = 36

Statuses = Callable[[list[uuid.UUID]], Awaitable[dict[uuid.UUID, str]]]


def scratch_root(home: Path) -> Path:
    root = home / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def attempt_folder(home: Path, job_id: uuid.UUID) -> Path:
    """A new, empty folder for one attempt of `job_id`."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{job_id}-", dir=scratch_root(home)))


def _job_of(folder: Path) -> uuid.UUID | None:
    name = folder.name
    if not name.startswith(PREFIX):
        return None
    try:
        return uuid.UUID(name[len(PREFIX) : len(PREFIX) + _UUID_CHARS])
    except ValueError:
        return None


async def sweep_orphans(home: Path, statuses: Statuses) -> list[Path]:
    """Remove the attempt folders of jobs that are not `processing`; return what was removed.

    `statuses(ids)` gives each job's status (a job missing from the answer was deleted)."""
    root = home / "tmp"
    if not root.is_dir():
        return []
    folders = [(f, job) for f in root.iterdir() if f.is_dir() and (job := _job_of(f)) is not None]
    if not folders:
        return []
    known = await statuses(sorted({job for _, job in folders}))
    orphans = [f for f, job in folders if known.get(job) != "processing"]
    _remove(orphans)
    return orphans


def _remove(folders: Iterable[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
