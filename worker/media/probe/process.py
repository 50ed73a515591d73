"""Probing in a child process the worker can kill, with a time limit and a memory limit.

    worker (asyncio)                           child: python -m worker.media.probe.child
    ProbeSession.start(limits, inputs) ─spawn─▶ RLIMIT_AS, RLIMIT_CPU, dies with its parent
      .ask(source, path, mode) ── JSON line ──▶ probe() / describe() (examine.py)
      ◀── JSON line: {"info": …} | {"refused": "…"} | {"limit": "memory"} | {"failed": "…"}
      per-input deadline; cancel, timeout, failure or end ──▶ SIGKILL the child, reap it

Why a process: PyAV decodes in C, and a Python thread running it cannot be stopped. A probe in
`asyncio.to_thread` kept burning cores for 15 minutes after its job had timed out, with the
job's slot already given to the next job. A child process dies the moment its job is
cancelled, and the kernel enforces its limits even where our code cannot look.

One child serves all inputs of a job (starting Python and PyAV costs ~0.1 s), one input at a
time. Any failure fails the job, so a child is never reused after one. The child gets a bare
environment (no database URL, no storage keys) since it parses files an attacker wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import worker
from worker.errors import InputError
from worker.log import get_logger
from worker.media.ffmpeg import read_tail
from worker.media.probe.info import (
    MIB,
    Kind,
    MediaInfo,
    ProbeLimits,
    info_from_json,
)

Mode = Literal["clip", "audio", "image", "visual", "describe"]

CHILD_MODULE = "worker.media.probe.child"  # a module of its own: it imports only what it needs
STDERR_TAIL_BYTES = 4096
REPLY_LIMIT_BYTES = 1024 * 1024
# glibc gives each thread a 64 MB malloc arena; under an address-space limit two are plenty.
CHILD_ENV = {"MALLOC_ARENA_MAX": "2", "LC_ALL": "C.UTF-8"}

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
async def probe_session(
    limits: ProbeLimits, inputs: int, *, module: str = CHILD_MODULE, file_bytes: int = 0
) -> AsyncIterator[ProbeSession]:
    """A child for `inputs` probes (or `inputs` requests to another confined `module`); it is
    killed and reaped on the way out, whatever happens."""
    session = await ProbeSession.start(limits, inputs, module=module, file_bytes=file_bytes)
    try:
        yield session
    finally:
        await session.close()


class ProbeSession:
    """One child process and the line protocol to it."""

    def __init__(self, proc: asyncio.subprocess.Process, limits: ProbeLimits) -> None:
        self.proc = proc
        self.limits = limits
        assert proc.stderr is not None
        self._stderr = asyncio.ensure_future(read_tail(proc.stderr, STDERR_TAIL_BYTES))

    @classmethod
    async def start(
        cls, limits: ProbeLimits, inputs: int, *, module: str = CHILD_MODULE, file_bytes: int = 0
    ) -> ProbeSession:
        """A confined child running `module` (the probe's, unless another child reuses this
        protocol), allowed to write files of at most `file_bytes`."""
        config = {**asdict(limits), "inputs": max(1, inputs), "parent": os.getpid(),
                  "file_bytes": file_bytes}  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_child_env(),
            start_new_session=True,  # its own group: a terminal's Ctrl-C is the worker's alone
            limit=REPLY_LIMIT_BYTES,
        )  # fmt: skip
        return cls(proc, limits)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def ask(self, source: str, path: Path, mode: Mode) -> MediaInfo:
        """Probe one file; raise `InputError(source, …)` for a refusal or a limit."""
        line = await self.exchange({"source": source, "path": str(path), "mode": mode}, source)
        return self._reply(source, path, line)

    async def exchange(self, request: dict[str, object], source: str) -> bytes:
        """Send one request, return the child's one-line answer within the time limit; raise
        `InputError(source, …)` when it takes too long or dies."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), self.limits.timeout)
        except TimeoutError:
            self.kill()
            log.warning("probe_timeout", source=source, seconds=self.limits.timeout)
            raise InputError(source, f"could not be checked within {self.limits.timeout:g} s; "
                                     "the file is too complex or damaged") from None  # fmt: skip
        except (ConnectionError, ValueError):  # the child is gone, or sent an endless line
            line = b""
        if not line:
            raise InputError(source, await self._death(source))
        return line

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

    async def _death(self, source: str) -> str:
        """Why the child stopped answering, as a sentence for the row; details go to the log."""
        self.kill()
        code = await self._reap()
        tail = await self._stderr_tail()
        log.warning("probe_died", source=source, returncode=code, stderr=tail[-1000:])
        if code == -signal.SIGXCPU:
            return "could not be checked within its CPU time limit; the file is too complex"
        if code == -signal.SIGXFSZ:
            return "could not be made within its file size limit; it is too large"
        return "could not be checked: reading it stopped the checker; the file is damaged"

    def kill(self) -> None:
        """SIGKILL the child's group now (no await: this must happen even while cancelled)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    async def close(self) -> None:
        self.kill()
        await self._reap()
        self._stderr.cancel()

    async def _reap(self) -> int:
        """Wait for the killed child (a matter of milliseconds). Shielded, so a second
        cancellation goes on at once while the event loop still reaps the child."""
        await asyncio.shield(self.proc.wait())
        return self.proc.returncode if self.proc.returncode is not None else -signal.SIGKILL

    async def _stderr_tail(self) -> str:
        with contextlib.suppress(Exception):
            return await asyncio.wait_for(asyncio.shield(self._stderr), 1.0)
        return ""


def _child_env() -> dict[str, str]:
    """A bare environment: the child reads hostile files and needs none of the worker's secrets."""
    root = str(Path(worker.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**CHILD_ENV, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": path}
