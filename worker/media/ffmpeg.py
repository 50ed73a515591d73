"""Running the FFmpeg binary: finding it, locking down what it may open, progress, cancellation.

Every FFmpeg call in the worker goes through `run_ffmpeg`, so three guarantees hold everywhere:

- FFmpeg decodes no picture over `-max_pixels`, given on every input: the operator's
  MAX_INPUT_PIXELS on a user's file (the caller passes it), `PIXEL_CEILING` on our own
  intermediates, and never more than that ceiling. The probe refuses larger inputs from their
  headers first; this is the second line, for a file whose container declares one size and
  whose stream holds another.
- FFmpeg reads local files only (`-protocol_whitelist file`) through real media demuxers
  (`-format_whitelist`), so a crafted HLS playlist or ffconcat list saved as `.mp4` cannot make
  it read another file (or a URL) into the output video.
- Progress comes from `-progress pipe:1` (`out_time_us`), as a fraction that never goes back.
- A cancelled task leaves no FFmpeg behind: the whole process group gets SIGTERM, then SIGKILL,
  and is reaped before `CancelledError` propagates. A worker that is killed outright (SIGKILL,
  the OOM killer) leaves none either: on Linux the kernel kills FFmpeg when the worker dies
  (`die_with_parent`, confine.py), where it would otherwise encode on for minutes beside the
  replica that takes the job over.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from worker.errors import RetryableError
from worker.media.confine import MEDIA_FORMATS, PIXEL_CEILING, dying_with_this_process

ProgressCallback = Callable[[float], None]

KILL_AFTER_SECONDS = 2.0
STDERR_TAIL_BYTES = 4096


class FFmpegError(RetryableError):
    """FFmpeg exited non-zero; `stderr` holds the end of what it printed.

    Retryable, not permanent: inputs are probed before FFmpeg sees them, so a failure here is a
    bug or a passing condition (disk full, OOM kill), which the queue retries a bounded number
    of times.

    Its text (for the operator's log, with the traceback) quotes the last lines of stderr,
    which name server paths; `public_message` is what the job's row shows instead.
    """

    log_traceback = True

    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        summary = " | ".join(lines[-3:])[-600:] or "no error output"
        super().__init__(f"ffmpeg exited with status {returncode}: {summary}")

    @property
    def public_message(self) -> str:
        """What failed, in a sentence with nothing of the server in it."""
        if self.returncode < 0:
            what = f"FFmpeg was stopped by signal {-self.returncode} while making the video"
            if -self.returncode == signal.SIGKILL:
                what += " (the worker may have run out of memory)"
        elif "No space left on device" in self.stderr:
            what = "FFmpeg ran out of disk space while making the video"
        else:
            what = f"FFmpeg failed while making the video (exit status {self.returncode})"
        return f"{what}; the operator's log has FFmpeg's output"

    def row_sentence(self) -> str:
        return self.public_message


@functools.cache
def ffmpeg_exe() -> str:
    """The FFmpeg binary: one on PATH wins (the container's), else the imageio-ffmpeg wheel's."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # imported lazily: only needed where no system FFmpeg exists

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def input_args(
    path: Path | str,
    *,
    formats: Iterable[str] = MEDIA_FORMATS,
    before: Sequence[str] = (),
    max_pixels: int = PIXEL_CEILING,
) -> list[str]:
    """`-i` arguments for one local input, restricted to the file protocol and `formats`.

    The path is given as `file:` + absolute path, so a name that starts with `-` or contains a
    `:` can never be read as an option or another protocol. `before` holds per-input options
    such as `-ss`, which must precede `-i`. Every decoder of the input refuses pictures over
    `max_pixels` (a user's file: MAX_INPUT_PIXELS), which is held to `PIXEL_CEILING`.
    """
    location = "file:" + str(Path(path).resolve())
    return [
        "-protocol_whitelist", "file",
        "-format_whitelist", ",".join(formats),
        "-max_pixels", str(min(max_pixels, PIXEL_CEILING)),
        *before,
        "-i", location,
    ]  # fmt: skip


def base_argv() -> list[str]:
    """The fixed head of every command line: quiet, machine-readable progress, no stdin."""
    return [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", "-loglevel", "error",
        "-progress", "pipe:1", "-nostats",
    ]  # fmt: skip


async def run_ffmpeg(
    args: Sequence[str],
    *,
    expected_duration: float | None,
    on_progress: ProgressCallback | None,
    cwd: Path | str | None = None,
    on_line: Callable[[str, str], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run FFmpeg with `args` after the fixed head; raise `FFmpegError` if it fails.

    `env` replaces the worker's environment (the compose mode's picture pass gets FONTCONFIG_FILE:
    picture/fonts.py).
    `expected_duration` (seconds of output) turns `out_time_us` into a 0..1 fraction for
    `on_progress`. `on_line` sees every `key=value` line on FFmpeg's stdout (progress, and
    what a filter prints there, such as `ametadata=mode=print:file=-`). On cancellation the
    process group is stopped and reaped first, so no FFmpeg outlives the job that started it.
    """
    proc = await asyncio.create_subprocess_exec(
        *base_argv(),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,  # its own process group, so we can signal all of it
        preexec_fn=dying_with_this_process(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    stderr_task = asyncio.ensure_future(read_tail(proc.stderr, STDERR_TAIL_BYTES))
    try:
        await _follow_progress(proc.stdout, _Progress(expected_duration, on_progress), on_line)
        returncode = await proc.wait()
        tail = await stderr_task
    except BaseException:
        await _stop_group(proc)
        stderr_task.cancel()
        raise
    if returncode != 0:
        raise FFmpegError(returncode, tail)


class _Progress:
    """Turns FFmpeg's `out_time_us` into a clamped fraction that never goes backwards."""

    def __init__(self, expected: float | None, callback: ProgressCallback | None) -> None:
        self._expected = expected if expected and expected > 0 else None
        self._callback = callback
        self._last = 0.0

    def report(self, fraction: float) -> None:
        fraction = min(1.0, max(self._last, fraction))
        if self._callback is not None and fraction > self._last:
            self._last = fraction
            self._callback(fraction)

    def line(self, key: str, value: str) -> None:
        if key == "out_time_us" and self._expected and value.lstrip("-").isdigit():
            self.report(int(value) / 1_000_000 / self._expected)
        elif key == "progress" and value == "end":
            self.report(1.0)


async def _follow_progress(
    stream: asyncio.StreamReader,
    progress: _Progress,
    on_line: Callable[[str, str], None] | None = None,
) -> None:
    """Read `key=value` lines from `-progress pipe:1` until FFmpeg closes its stdout."""
    async for raw in stream:
        key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
        progress.line(key, value)
        if on_line is not None:
            on_line(key, value)


async def read_tail(stream: asyncio.StreamReader, limit: int) -> str:
    """Drain a child's stderr (so it never blocks on a full pipe), keeping its last `limit`
    bytes; FFmpeg's and every confined child's."""
    tail = bytearray()
    while chunk := await stream.read(65536):
        tail += chunk
        del tail[:-limit]
    return tail.decode("utf-8", "replace")


def _signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Signal FFmpeg's whole process group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def _stop_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the group, SIGKILL it after KILL_AFTER_SECONDS, and reap FFmpeg.

    SIGTERM first lets FFmpeg close its files; SIGKILL bounds how long a stuck one can take.
    The group is killed even if FFmpeg itself already exited, in case it left children.
    """
    if proc.returncode is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), KILL_AFTER_SECONDS)
        except (TimeoutError, asyncio.CancelledError):
            pass
    _signal_group(proc, signal.SIGKILL)
    while proc.returncode is None:  # reaped before we return, however often we are cancelled
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(proc.wait())
