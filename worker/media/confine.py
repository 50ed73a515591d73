"""What confines FFmpeg and the worker's child processes, in a module light enough for a child
to import.

The formats an input may be read through, the pixel ceiling every decoder gets, and dying with
the worker (Linux's PR_SET_PDEATHSIG): ffmpeg.py applies them to every FFmpeg command line.

The child's side of a confined child (child_process.py starts it, with `ChildLimits`): `confine`
sets its kernel limits from the JSON config it is started with, `child_only` marks the functions
that may run only after that, and `answered` and `send` write its one-line replies. The probe
child (probe/child.py), the caption child (picture/caption_child.py) and the mix child
(sound/mix_child.py) start once or twice per job each, and should not pay for asyncio, logging
and the rest of ffmpeg.py to import a few constants and a prctl; so this module imports none.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

# Demuxers a downloaded clip, voice-over or music track may use. The mov demuxer's external
# references (`enable_drefs`) stay at their default, off.
MEDIA_FORMATS: tuple[str, ...] = (
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2",
    "matroska", "webm",
    "mp3", "wav", "aac", "ogg", "flac",
)  # fmt: skip
# Our own concat lists, read only where we join files that we wrote or probed ourselves.
CONCAT_FORMATS: tuple[str, ...] = ("concat", *MEDIA_FORMATS)

# MAX_INPUT_PIXELS' default (every 4K size and 8K UHD, 7680x4320, in either orientation) and
# the most it may be set to (8192x8192), which every FFmpeg input gets as `-max_pixels`.
DEFAULT_MAX_PIXELS = 4096 * 4096 * 2
PIXEL_CEILING = 8192 * 8192

MIB = 1024 * 1024
# Extra CPU seconds a child may use past its per-request budget (start-up, imports).
CPU_SLACK_SECONDS = 5


# prctl(2) from the C library, looked up once here: a child between fork and exec must do no
# more than call it (no imports, no lookups) while another thread may hold a lock.
PR_SET_PDEATHSIG = 1
_PRCTL: Callable[..., int] | None = None
if sys.platform == "linux":
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        _PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent(parent: int) -> None:
    """In a child of the worker: ask the kernel for SIGKILL when the worker dies (Linux's
    PR_SET_PDEATHSIG; elsewhere nothing), and exit at once if it already has died."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the worker died before prctl took effect
        os._exit(1)


def dying_with_this_process() -> Callable[[], None] | None:
    """A preexec_fn for FFmpeg: `die_with_parent` of this process (None where prctl is not)."""
    return functools.partial(die_with_parent, os.getpid()) if _PRCTL is not None else None


# ---- a confined child's limits, and how it sets them on itself ----------------------------------


@dataclass(frozen=True)
class ChildLimits:
    """What one request to a confined child may cost: `timeout` seconds of wall clock (the
    worker kills the child past it) and `memory_bytes` of address space (the kernel's limit).
    The probe and caption children get the operator's PROBE_TIMEOUT and PROBE_MEMORY_MB
    (`ProbeLimits.child`); the mix child these defaults, which are also the probe's."""

    timeout: float = 20.0
    memory_bytes: int = 1024 * MIB


def confine(config: dict[str, Any]) -> None:
    """Limits the kernel enforces on this process, set before any input is opened.

    Address space bounds memory (allocations fail, and the child replies that it hit the limit);
    CPU time, `timeout` per request of `inputs` plus CPU_SLACK_SECONDS, is a backstop for a
    child that outlives its parent's deadline; the child writes no file larger than `file_bytes`
    (the probe none at all) and leaves no core dumps; and it dies with the worker (`parent`), so
    no child is ever orphaned. From here on, `child_only` functions may run.
    """
    import resource

    memory = int(config["memory_bytes"])
    cpu = math.ceil(float(config["timeout"])) * int(config["inputs"]) + CPU_SLACK_SECONDS
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    file_bytes = int(config.get("file_bytes", 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    die_with_parent(int(config["parent"]))
    enter_confinement()


def answered(answer: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`answer()`, or the reply that says why there is none: the memory limit, or a bug or an
    unforeseen file (its trace goes to stderr, which the worker logs)."""
    try:
        return answer()
    except MemoryError:
        return {"limit": "memory"}
    except Exception as exc:
        import traceback

        traceback.print_exc()
        return {"failed": f"{type(exc).__name__}: {exc}"[:500]}


def send(reply: dict[str, Any]) -> None:
    """One JSON line to the worker."""
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


# ---- user bytes are parsed only in a confined child --------------------------------------------

_confined = False  # True only in a child that `confine()`d itself


def enter_confinement() -> None:
    """Mark this process as a confined child: the only place `child_only` functions may run."""
    global _confined
    _confined = True


@contextlib.contextmanager
def confined_here() -> Iterator[None]:
    """For tests that call a `child_only` function directly: as if this process were the child."""
    global _confined
    before, _confined = _confined, True
    try:
        yield
    finally:
        _confined = before


def child_only(fn: Callable[P, R]) -> Callable[P, R]:
    """Marks a function whose cost grows with bytes an end user sent (a caption file, a
    subtitle document): it runs only in a confined child (rlimited, killable), never in the
    worker's event loop or its threads, where the GIL would let it stall every job. Calling it
    anywhere else raises at once, so a new call from the worker's side fails every test that
    reaches it instead of waiting for an attacker to find it."""

    @functools.wraps(fn)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        if not _confined:
            raise RuntimeError(
                f"{fn.__module__}.{fn.__qualname__} parses an end user's bytes: call it only in "
                "a confined child (worker.media.picture.caption_child), never in the worker"
            )
        return fn(*args, **kwargs)

    return guarded
