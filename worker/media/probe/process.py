"""Probing in a confined child process the worker can kill, with a time limit and a memory limit.

    worker (asyncio)                             child: python -m worker.media.probe.child
    probe_session(limits, inputs)
      confined_child (child_process.py) ─spawn─▶ confine(config) (confine.py): RLIMIT_AS,
                                                 RLIMIT_CPU, RLIMIT_FSIZE 0, dies with its parent
      ProbeSession.ask(source, path, mode)
        ConfinedChild.exchange ── JSON line ───▶ probe() / describe() (examine.py)
        ◀── JSON line: {"info": …} | {"refused": "…"} | {"limit": "memory"} | {"failed": "…"}
      the reply read into a MediaInfo, or an InputError
      per-input deadline; cancel, timeout, failure or end ──▶ SIGKILL the child, reap it

The process, its limits and the line protocol are child_process.py's, shared with the caption
and mix children; this module owns what is the probe's: the question (`ask`), the child it
runs (CHILD_MODULE) with the probe's limits in its config, and the reply's reading.

Why a process: PyAV decodes in C, and a Python thread running it cannot be stopped. A probe in
`asyncio.to_thread` kept burning cores for 15 minutes after its job had timed out, with the
job's slot already given to the next job. A child process dies the moment its job is
cancelled, and the kernel enforces its limits even where our code cannot look.

One child serves all inputs of a job (starting Python and PyAV costs ~0.1 s), one input at a
time. Any failure fails the job, so a child is never reused after one.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from worker.errors import InputError
from worker.log import get_logger
from worker.media.child_process import ConfinedChild, confined_child
from worker.media.confine import MIB
from worker.media.probe.info import Kind, MediaInfo, ProbeLimits, info_from_json

Mode = Literal["clip", "audio", "image", "visual", "describe"]

CHILD_MODULE = "worker.media.probe.child"  # a module of its own: it imports only what it needs

log = get_logger("video-worker.probe")


async def probe_async(
    path: Path, source: str, kind: Kind = "clip", limits: ProbeLimits | None = None
) -> MediaInfo:
    """`probe` one input in a child process; see `probe_all`."""
    infos = await probe_all([(source, Path(path), kind)], limits)
    return infos[source]


async def probe_all(
    inputs: Sequence[tuple[str, Path, Kind]], limits: ProbeLimits | None = None
) -> dict[str, MediaInfo]:
    """Probe every input, one at a time, in one child: {source: MediaInfo}.

    Raises the first input's `InputError` (a refusal, or a limit it went over); cancelling the
    caller kills the child before the cancellation goes on.
    """
    limits = limits or ProbeLimits()
    infos: dict[str, MediaInfo] = {}
    async with probe_session(limits, len(inputs)) as session:
        for source, path, kind in inputs:
            infos[source] = await session.ask(source, Path(path), kind)
    return infos


async def describe_async(path: Path, source: str, limits: ProbeLimits | None = None) -> MediaInfo:
    """`describe` (headers and first frame, for files we wrote) in a child process."""
    async with probe_session(limits or ProbeLimits(), 1) as session:
        return await session.ask(source, Path(path), "describe")


@contextlib.asynccontextmanager
async def probe_session(limits: ProbeLimits, inputs: int) -> AsyncIterator[ProbeSession]:
    """A probe child for `inputs` probes, with the probe's `limits`; it is killed and reaped on
    the way out, whatever happens."""
    async with confined_child(
        limits.child, inputs, module=CHILD_MODULE, config=asdict(limits)
    ) as child:
        yield ProbeSession(child, limits)


class ProbeSession:
    """The probe's questions to one confined child, and its replies read as `MediaInfo`."""

    def __init__(self, child: ConfinedChild, limits: ProbeLimits) -> None:
        self.child = child
        self.limits = limits

    @property
    def pid(self) -> int:
        return self.child.pid

    async def ask(self, source: str, path: Path, mode: Mode) -> MediaInfo:
        """Probe one file; raise `InputError(source, …)` for a refusal or a limit."""
        request: dict[str, object] = {"source": source, "path": str(path), "mode": mode}
        line = await self.child.exchange(request, source)
        return self._reply(source, path, line)

    def _reply(self, source: str, path: Path, line: bytes) -> MediaInfo:
        try:
            reply = json.loads(line)
            if "info" in reply:
                return info_from_json(reply["info"], path)
            if "refused" in reply and isinstance(reply["refused"], str):
                raise InputError(source, reply["refused"][:1000])
            if reply.get("limit") == "memory":
                mb = self.limits.memory_bytes // MIB
                raise InputError(
                    source, f"could not be checked within the memory limit of {mb} MB; "
                    "the file is too complex or damaged"
                )  # fmt: skip
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("probe_bad_reply", source=source, error=str(exc)[:300])
        else:
            log.warning("probe_failed", source=source, reply=line[:300].decode("utf-8", "replace"))
        raise InputError(source, "could not be checked: the file is damaged or not supported")
