"""run_ffmpeg for real: progress, errors, cancellation that leaves no process and no output,
and the whitelists that keep crafted playlists from reading other files into a video."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.media.conftest import Media
from worker.errors import InputError
from worker.media.assemble import assemble
from worker.media.ffmpeg import FFmpegError, ffmpeg_exe, input_args, run_ffmpeg
from worker.media.probe.examine import probe
from worker.media.specs import OutputSpec

DEADLINE = 30.0


def processes_mentioning(marker: str) -> list[int]:
    """Pids of live processes whose command line contains `marker` (a unique tmp path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def test_binary_is_found_and_runs() -> None:
    done = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("ffmpeg version")


async def test_progress_is_monotonic_and_ends_at_one(tmp_path: Path) -> None:
    seen: list[float] = []
    args = ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=3", "-c:v", "libx264",
            "-preset", "ultrafast", str(tmp_path / "out.mp4")]  # fmt: skip
    await run_ffmpeg(args, expected_duration=3.0, on_progress=seen.append)
    assert seen[-1] == 1.0
    assert all(0 < a < b <= 1 for a, b in itertools.pairwise(seen))


async def test_failure_carries_the_stderr_tail(tmp_path: Path) -> None:
    args = ["-f", "lavfi", "-i", "testsrc2=d=1", "-vf", "no_such_filter", str(tmp_path / "x.mp4")]
    with pytest.raises(FFmpegError) as caught:
        await run_ffmpeg(args, expected_duration=1.0, on_progress=None)
    assert caught.value.returncode != 0
    assert "no_such_filter" in caught.value.stderr
    assert "no_such_filter" in str(caught.value)


async def test_cancellation_kills_ffmpeg(tmp_path: Path) -> None:
    output = tmp_path / "long.mp4"
    started = asyncio.Event()
    # read at its own pace (-re), small and fast to encode: a long run that costs little CPU,
    # reporting progress every 0.1 s instead of 0.5 s
    args = ["-stats_period", "0.1", "-re", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=600",
            "-c:v", "libx264", "-preset", "ultrafast", str(output)]  # fmt: skip
    task = asyncio.create_task(
        run_ffmpeg(args, expected_duration=600, on_progress=lambda _: started.set())
    )
    await asyncio.wait_for(started.wait(), DEADLINE)
    assert processes_mentioning(str(output))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, DEADLINE)
    assert processes_mentioning(str(output)) == []


KILLED_WORKER = """
import asyncio, sys
from worker.media.ffmpeg import run_ffmpeg

async def main() -> None:
    args = ["-stats_period", "0.1", "-re", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=600",
            "-c:v", "libx264", "-preset", "ultrafast", sys.argv[2]]
    await run_ffmpeg(args, expected_duration=600, on_progress=lambda _: print("on", flush=True))

if sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


def _gone(marker: str) -> bool:
    for _ in range(int(DEADLINE / 0.1)):
        if not processes_mentioning(marker):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_killed_worker_leaves_no_ffmpeg_behind(tmp_path: Path, loop: str) -> None:
    """SIGKILL (or the OOM killer) gives the worker no chance to stop its FFmpeg: the kernel
    must, or the encode runs on beside the replica that takes the job over."""
    output = tmp_path / "orphan.mp4"
    worker = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER, loop, str(output)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline() == "on\n"  # FFmpeg reports progress
        assert processes_mentioning(str(output))
        worker.kill()
        worker.wait()
        assert _gone(str(output)), "FFmpeg outlived the worker that started it"
    finally:
        worker.kill()
        for pid in processes_mentioning(str(output)):
            os.kill(pid, 9)


async def test_cancelled_assembly_leaves_no_process_and_no_output(
    media: Media, workdir: Path
) -> None:
    started = asyncio.Event()
    clips = [media.clip("h264_2s"), media.clip("hevc"), media.clip("h264_2s")]
    output = OutputSpec(width=1920, height=1080, fps=60, thumbnail=True)
    task = asyncio.create_task(
        assemble(
            clips,
            audio=None,
            output=output,
            workdir=workdir,
            on_progress=lambda value: started.set() if value > 0 else None,
        )
    )
    await asyncio.wait_for(started.wait(), DEADLINE)
    assert not task.done(), "the encode must still be running for this test to mean anything"
    assert processes_mentioning(str(workdir))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, DEADLINE)
    assert processes_mentioning(str(workdir)) == []
    assert list(workdir.iterdir()) == []


# --- crafted playlists -------------------------------------------------------------------------


@pytest.fixture
def secret(media: Media, tmp_path: Path) -> tuple[Path, bytes]:
    """A private local video, and a run of bytes from its first picture to look for in outputs."""
    path = tmp_path / "secret.mp4"
    path.write_bytes(media.path("h264_30_b").read_bytes())
    import av

    with av.open(str(path)) as container:
        packet = next(p for p in container.demux(video=0) if p.size > 400)
        marker = bytes(packet)[200:264]
    return path, marker


def _playlists(tmp_path: Path, secret: Path) -> dict[str, Path]:
    """An HLS playlist and an ffconcat list, both saved as `.mp4`, that point at `secret`."""
    segment = tmp_path / "secret.ts"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(secret), "-c", "copy",
                    str(segment)], check=True)  # fmt: skip
    playlist = ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
                f"#EXTINF:1.0,\n{segment.name}\n#EXT-X-ENDLIST\n")  # fmt: skip
    lists = {
        "hls.mp4": playlist,
        "hls.m3u8": playlist,
        "concat.mp4": f"ffconcat version 1.0\nfile {secret.name}\n",
    }
    for name, text in lists.items():
        (tmp_path / name).write_text(text)
    return {name: tmp_path / name for name in lists}


def _outputs_contain(folder: Path, marker: bytes) -> bool:
    return any(marker in p.read_bytes() for p in folder.rglob("*") if p.is_file())


# FFmpeg 9 no longer probes an HLS playlist named `.mp4` as HLS, so that attack only shows
# unguarded with the `.m3u8` name; the guarded run must refuse all three.
@pytest.mark.parametrize(
    ("kind", "works_unguarded"), [("hls.mp4", False), ("hls.m3u8", True), ("concat.mp4", True)]
)
async def test_crafted_playlist_never_leaks_a_local_file(
    secret: tuple[Path, bytes], tmp_path: Path, kind: str, works_unguarded: bool
) -> None:
    secret_path, marker = secret
    evil = _playlists(tmp_path, secret_path)[kind]
    out = tmp_path / "out"
    out.mkdir()

    # Without the whitelists FFmpeg would follow the list and copy the secret (the attack).
    unguarded = out / "unguarded.mp4"
    await asyncio.to_thread(subprocess.run, [ffmpeg_exe(), "-loglevel", "quiet", "-y", "-i",
                            str(evil), "-c", "copy", str(unguarded)], check=False)  # fmt: skip
    if works_unguarded:
        assert unguarded.exists() and marker in unguarded.read_bytes()
    unguarded.unlink(missing_ok=True)

    # Probe refuses it by name ...
    with pytest.raises(InputError, match=r"HLS playlist|concat list"):
        probe(evil, "clips[0]")
    # ... and FFmpeg itself, opened the way the worker opens inputs, refuses it too.
    with pytest.raises(FFmpegError, match=r"whitelist|Invalid argument|Invalid data"):
        await run_ffmpeg([*input_args(evil), "-c", "copy", str(out / "guarded.mp4")],
                         expected_duration=1.0, on_progress=None)  # fmt: skip
    assert not _outputs_contain(out, marker)


def test_input_paths_cannot_become_options_or_protocols(tmp_path: Path) -> None:
    weird = tmp_path / "-i http:"
    args = input_args(weird)
    assert args[-1].startswith("file:/") and args[args.index("-protocol_whitelist") + 1] == "file"
    assert os.path.isabs(args[-1].removeprefix("file:"))
