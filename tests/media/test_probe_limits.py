"""Probing hostile files costs what the limits say, in a child the worker kills.

The bombs are small (tests/media/bombs.py); where a limit is what is tested, the limit is
lowered rather than the file made big.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.media.bombs import endless_mkv, lying_mkv, png_in_mov
from tests.media.conftest import Media
from worker.errors import InputError
from worker.media.probe.info import info_from_json, info_to_json
from worker.media.probe.process import (
    CHILD_MODULE,
    MIB,
    ProbeLimits,
    probe_all,
    probe_async,
    probe_session,
)

PIXEL_CEILING = 8192 * 8192


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bombs")


async def test_a_pixel_bomb_is_refused_from_its_headers(bombs: Path) -> None:
    bomb = png_in_mov(bombs, 2000)  # 4 Mpx in 5 KB; the limit is lowered to 1 Mpx
    with pytest.raises(InputError) as caught:
        await probe_async(bomb, "clips[0]", limits=ProbeLimits(max_pixels=1_000_000))
    assert str(caught.value) == (
        "clips[0]: its picture is 2000x2000 (4.0 megapixels), over the limit of 1.0 megapixels "
        "(MAX_INPUT_PIXELS); use a video of at most 8K"
    )


async def test_an_ordinary_video_over_the_pixel_limit_is_refused(media: Media) -> None:
    limits = ProbeLimits(max_pixels=320 * 240 - 1)
    with pytest.raises(InputError, match=r"^clips\[1\]: its picture is 320x240 "):
        await probe_async(media.path("h264_30"), "clips[1]", limits=limits)
    info = await probe_async(media.path("h264_30"), "clips[1]", limits=ProbeLimits())
    assert info.video is not None and info.video.width == 320


async def test_a_file_without_a_duration_is_measured_by_its_packets(bombs: Path) -> None:
    # 20 minutes of 1080p that declare no length: decoding it all took minutes, which the
    # default 20 s limit would refuse; demuxing it measures it well within the limit.
    bomb = endless_mkv(bombs, 1200, "1920x1080")
    info = await probe_async(bomb, "clips[0]", limits=ProbeLimits(timeout=20))
    assert info.video is not None
    assert info.duration == pytest.approx(1200, abs=0.1)
    assert info.video.duration == pytest.approx(1200, abs=0.1)


async def test_a_file_that_holds_more_than_it_declares_shows_its_real_length(bombs: Path) -> None:
    bomb = lying_mkv(bombs, 300, declared=1.0)
    info = await probe_async(bomb, "clips[0]")
    assert info.duration == pytest.approx(300, abs=0.1)
    assert info.video is not None and info.video.duration == pytest.approx(300, abs=0.1)


async def test_too_many_streams_are_refused(media: Media) -> None:
    limits = ProbeLimits(max_streams=1)  # h264_30 has picture and sound
    with pytest.raises(InputError, match=r"^clips\[0\]: has 2 streams; at most 1 are allowed"):
        await probe_async(media.path("h264_30"), "clips[0]", limits=limits)


async def test_a_probe_over_its_memory_limit_fails_the_input(bombs: Path) -> None:
    bomb = png_in_mov(bombs, 8000)  # 64 Mpx: under the pixel limit given, over the memory one
    limits = ProbeLimits(max_pixels=PIXEL_CEILING, memory_bytes=200 * MIB)
    with pytest.raises(InputError) as caught:
        await probe_async(bomb, "clips[0]", limits=limits)
    assert str(caught.value) == (
        "clips[0]: could not be checked within the memory limit of 200 MB; "
        "the file is too complex or damaged"
    )


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_a_probe_over_its_time_limit_is_killed(media: Media) -> None:
    limits = ProbeLimits(timeout=1)
    async with probe_session(limits, 1) as session:
        os.kill(session.pid, signal.SIGSTOP)  # a probe that never answers
        with pytest.raises(InputError) as caught:
            await session.ask("clips[3]", media.path("h264_30"), "clip")
        assert str(caught.value) == (
            "clips[3]: could not be checked within 1 s; the file is too complex or damaged"
        )
        pid = session.pid
    assert not _alive(pid)


async def _probe_child(deadline: float = 10.0) -> psutil.Process:
    """The probe child of this test process, once it exists."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while loop.time() < end:
        for child in psutil.Process().children():
            try:
                if CHILD_MODULE in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        await asyncio.sleep(0.01)
    raise AssertionError("no probe child appeared")


async def test_cancelling_the_job_kills_the_probe_at_once(media: Media) -> None:
    task = asyncio.ensure_future(probe_all([("clips[0]", media.path("h264_30"), "clip")]))
    child = await _probe_child()
    child.suspend()  # still working when the job is cancelled
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(child.pid)  # killed and reaped before the cancellation went on


async def test_the_child_has_no_secrets_and_its_limits(
    media: Media, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://worker:hunter22@db/video")
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", "service-key-secret")
    async with probe_session(ProbeLimits(memory_bytes=512 * MIB), 1) as session:
        await session.ask("clips[0]", media.path("h264_30"), "clip")  # it is confined by now
        child = psutil.Process(session.pid)
        environ = child.environ()
        assert "DATABASE_URL" not in environ and "SUPABASE_SERVICE_KEY" not in environ
        assert child.rlimit(psutil.RLIMIT_AS) == (512 * MIB, 512 * MIB)
        assert child.rlimit(psutil.RLIMIT_FSIZE) == (0, 0)


@pytest.mark.parametrize("name", ["h264_2997", "rotated", "hdr", "interlaced", "vp9", "voice"])
def test_a_probe_result_crosses_the_process_line_unchanged(media: Media, name: str) -> None:
    kind = "audio" if name == "voice" else "clip"
    info = media.info(name, kind)
    assert info_from_json(info_to_json(info), info.path) == info


def test_the_worker_refuses_a_reply_that_would_reach_a_filter_graph(media: Media) -> None:
    info = media.info("hdr")
    assert info.video is not None
    data = info_to_json(info)
    data["video"]["color_primaries"] = "bt2020:movie=/etc/passwd"
    with pytest.raises(ValueError, match="not one of the known values"):
        info_from_json(data, info.path)
    sneaky = info_to_json(dataclasses.replace(info, format="mov\nX"))
    with pytest.raises(ValueError, match="not a plain name"):
        info_from_json(sneaky, info.path)


def test_the_worker_process_never_loads_the_decoder():
    """Decoding happens in the probe's child only: the worker, its pipeline and its commands
    import no PyAV (which would also cost ~20 MB of the worker's memory for nothing)."""
    import subprocess
    import sys

    code = (
        "import sys, worker.app, worker.cli, worker.cli.commands, worker.pipeline.handler; "
        "print(sorted(m for m in sys.modules if m == 'av' or m.startswith('av.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
