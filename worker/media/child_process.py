"""A confined child process, seen from the worker: start it, send it requests, kill it.

    worker (asyncio)                             child: python -m <module>
    confined_child(limits, n, module=…) ─spawn─▶ confine(config) (confine.py): RLIMIT_AS,
                                                 RLIMIT_CPU, RLIMIT_FSIZE, dies with its parent
      .exchange(request, source) ─ JSON line ──▶ the module's work on the request
      ◀── one JSON line within limits.timeout ── send(answered(…))
      timeout, death, cancellation or the end ─▶ SIGKILL the child's group, reap it

Three modules run this way, each with a worker side that asks and reads the answer: the probe
child (probe/child.py, asked by probe/process.py), the caption child (picture/caption_child.py,
by picture/caption_render.py) and the mix child (sound/mix_child.py, by sound/mix_process.py).
Their side of the line is confine.py (`confine`, `answered`, `send`); this module never runs in
a child.

Why a process: work whose cost grows with what an end user sent (PyAV decoding in C, parsing a
caption file, planning a mix from one measure per 100 ms of output) cannot be stopped in a
Python thread, and in the event loop it stalls every job. A child dies the moment its job is
cancelled, and the kernel enforces its limits even where our code cannot look. The child gets a
bare environment (no database URL, no storage keys) since it reads what an attacker may have
written. Any failure fails the job, so a child is never reused after one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict
from pathlib import Path

import worker
from worker.errors import InputError
from worker.log import get_logger
from worker.media.confine import ChildLimits
from worker.media.ffmpeg import read_tail

STDERR_TAIL_BYTES = 4096
REPLY_LIMIT_BYTES = 1024 * 1024
# glibc gives each thread a 64 MB malloc arena; under an address-space limit two are plenty.
CHILD_ENV = {"MALLOC_ARENA_MAX": "2", "LC_ALL": "C.UTF-8"}

log = get_logger("video-worker.child")


@contextlib.asynccontextmanager
async def confined_child(
    limits: ChildLimits, requests: int, *, module: str, file_bytes: int = 0,
    config: Mapping[str, object] | None = None,
) -> AsyncIterator[ConfinedChild]:  # fmt: skip
    """A child running `module` for `requests` requests; it is killed and reaped on the way
    out, whatever happens. See `ConfinedChild.start`."""
    child = await ConfinedChild.start(
        limits, requests, module=module, file_bytes=file_bytes, config=config
    )
    try:
        yield child
    finally:
        await child.close()


class ConfinedChild:
    """One child process and the line protocol to it: a JSON request per line, a JSON answer
    per line."""

    def __init__(self, proc: asyncio.subprocess.Process, limits: ChildLimits, module: str) -> None:
        self.proc = proc
        self.limits = limits
        self.module = module
        assert proc.stderr is not None
        self._stderr = asyncio.ensure_future(read_tail(proc.stderr, STDERR_TAIL_BYTES))

    @classmethod
    async def start(
        cls, limits: ChildLimits, requests: int, *, module: str, file_bytes: int = 0,
        config: Mapping[str, object] | None = None,
    ) -> ConfinedChild:  # fmt: skip
        """`python -m module`, confined to `limits` (CPU time for `requests` requests) and to
        files of at most `file_bytes`. The child receives `config` (what its own work needs,
        such as the probe's limits) with these, as one JSON argument."""
        sent = {**(config or {}), **asdict(limits), "inputs": max(1, requests),
                "parent": os.getpid(), "file_bytes": file_bytes}  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, json.dumps(sent),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_child_env(),
            start_new_session=True,  # its own group: a terminal's Ctrl-C is the worker's alone
            limit=REPLY_LIMIT_BYTES,
        )  # fmt: skip
        return cls(proc, limits, module)

    @property
    def pid(self) -> int:
        return self.proc.pid

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
            # The event names are the probe's, the first child; alerts match on them.
            log.warning("probe_timeout", source=source, seconds=self.limits.timeout,
                        child=self.module)  # fmt: skip
            raise InputError(source, f"could not be checked within {self.limits.timeout:g} s; "
                                     "the file is too complex or damaged") from None  # fmt: skip
        except (ConnectionError, ValueError):  # the child is gone, or sent an endless line
            line = b""
        if not line:
            raise InputError(source, await self._death(source))
        return line

    async def _death(self, source: str) -> str:
        """Why the child stopped answering, as a sentence for the row; details go to the log."""
        self.kill()
        code = await self._reap()
        tail = await self._stderr_tail()
        log.warning("probe_died", source=source, returncode=code, stderr=tail[-1000:],
                    child=self.module)  # fmt: skip
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
