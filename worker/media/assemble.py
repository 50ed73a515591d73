"""Assembling probed clips into one MP4: the copy path, the re-encode path, and the poster.

    plan (plan.py) ──copy──▶ concat demuxer, -c copy, +faststart
                   └reencode▶ pictures: each clip → identical H.264 intermediate, 2 at a time
                              sound, meanwhile: each clip → WAV, then one soundtrack pass
                                (music, ducking, loudnorm, AAC; audio.py)
                              → mux: concat pictures + soundtrack, both copied, +faststart
    then: poster JPEG (optional), and the result read back by probing the output.

Everything is written inside `workdir`; the output appears under its final name only when it
is complete, and a failed or cancelled assembly removes what it wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable, Iterator, Sequence
from pathlib import Path

from worker.media.ffmpeg import (
    CONCAT_FORMATS,
    ProgressCallback,
    input_args,
    run_ffmpeg,
)
from worker.media.filters import ClipJob, video_job
from worker.media.info import MediaInfo
from worker.media.plan import Plan, make_plan
from worker.media.probe_process import describe_async
from worker.media.progress import WeightedProgress
from worker.media.sound import make_soundtrack
from worker.media.specs import AssemblyResult, ClipSpec, MusicSpec, OutputSpec

OUTPUT_NAME = "output.mp4"
THUMBNAIL_NAME = "thumbnail.jpg"
MAX_PARALLEL_ENCODES = 2
# Relative cost of the stages per second of video, for a progress bar that moves evenly.
SOUNDTRACK_WEIGHT = 0.12
MUX_WEIGHT = 0.02
THUMBNAIL_WEIGHT = 0.02
POSTER_AT = 0.10  # poster frame: 10% in ...
POSTER_MIN_DURATION = 2.0  # ... or the first frame of videos shorter than this


async def assemble(
    clips: list[ClipSpec],
    *,
    audio: MusicSpec | None,
    output: OutputSpec,
    workdir: Path,
    on_progress: ProgressCallback | None = None,
) -> AssemblyResult:
    """Join `clips` (with trims, voice-overs and music) into `workdir/output.mp4`.

    Raises `PayloadError` before any encoding for a bad trim or a result over
    `output.max_duration`; `FFmpegError` if FFmpeg fails. On any failure or cancellation the
    output, poster and intermediates are removed.
    """
    timings: dict[str, float] = {}
    with _timed(timings, "plan"):
        plan = make_plan(clips, audio, output)
    final, poster, scratch = _prepare(workdir)
    progress = WeightedProgress(_weights(plan, output), on_progress)
    try:
        partial = scratch / "output.mp4"
        if plan.join == "copy":
            with _timed(timings, "join"):
                await _copy_join(clips, plan, scratch, partial, progress)
        else:
            await _reencode(clips, audio, output, plan, scratch, partial, progress, timings)
        partial.replace(final)
        thumbnail = None
        if output.thumbnail:
            with _timed(timings, "thumbnail"):
                thumbnail = await make_poster(final, poster, plan.duration, scratch)
            progress.finish("thumbnail")
        with _timed(timings, "probe_output"):
            info = await describe_async(final, "output")
    except BaseException:
        final.unlink(missing_ok=True)
        poster.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _result(final, thumbnail, info, plan, timings)


def _prepare(workdir: Path) -> tuple[Path, Path, Path]:
    """Output and poster paths, and a fresh scratch folder for intermediates and lists."""
    workdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="assemble-", dir=workdir))
    return workdir / OUTPUT_NAME, workdir / THUMBNAIL_NAME, scratch


def _result(final: Path, thumbnail: Path | None, info: MediaInfo, plan: Plan,
            timings: dict[str, float]) -> AssemblyResult:  # fmt: skip
    """The contract's `result` facts, read from the finished file rather than assumed."""
    video, sound = info.video, info.audio
    assert video is not None, "probe refuses an output without video"
    width, height = video.display_size
    return AssemblyResult(
        output=final,
        thumbnail=thumbnail,
        bytes=info.size,
        duration=info.duration,
        width=width,
        height=height,
        fps=round(float(video.frame_rate), 3),
        video_codec=video.codec,
        audio_codec=sound.codec if sound is not None else "",
        join=plan.join,
        timings={name: round(seconds, 3) for name, seconds in timings.items()},
    )


def _weights(plan: Plan, output: OutputSpec) -> dict[str, float]:
    """Expected work per stage, in seconds of video times a relative cost."""
    weights: dict[str, float] = {}
    if plan.join == "copy":
        weights["join"] = plan.duration
    else:
        for i, window in enumerate(plan.windows):
            weights[f"clip{i}"] = float(window.frames / plan.geometry.fps)
        weights["soundtrack"] = plan.duration * SOUNDTRACK_WEIGHT
        weights["join"] = plan.duration * MUX_WEIGHT
    if output.thumbnail:
        weights["thumbnail"] = max(plan.duration * THUMBNAIL_WEIGHT, 0.01)
    return weights


@contextlib.contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - started


async def _copy_join(clips: list[ClipSpec], plan: Plan, scratch: Path, partial: Path,
                     progress: WeightedProgress) -> None:  # fmt: skip
    """Stream-copy the clips one after another: only safe because the plan found them equal."""
    listing = write_concat_list(scratch, [clip.path for clip in clips])
    args = [
        *input_args(listing, formats=CONCAT_FORMATS, before=["-f", "concat", "-safe", "1"]),
        "-map", "0:v:0", "-map", "0:a:0", "-c", "copy",
        "-map_metadata", "-1", "-movflags", "+faststart", str(partial),
    ]  # fmt: skip
    await run_ffmpeg(args, expected_duration=plan.duration, on_progress=progress.stage("join"))
    progress.finish("join")


def write_concat_list(directory: Path, files: Sequence[Path]) -> Path:
    """An ffconcat list of plain relative names inside `directory`, for the demuxer's safe mode.

    Safe mode (`-safe 1`) accepts only relative names of portable characters, so every entry
    is a link we make next to the list: the list can name nothing but files we chose.
    """
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["ffconcat version 1.0"]
    for i, source in enumerate(files):
        name = f"input{i:03d}{_safe_suffix(source)}"
        (directory / name).symlink_to(Path(source).resolve())
        lines.append(f"file {name}")
    listing = directory / "inputs.ffconcat"
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return listing


def _safe_suffix(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".bin"


async def _reencode(clips: list[ClipSpec], audio: MusicSpec | None, output: OutputSpec,
                    plan: Plan, scratch: Path, partial: Path, progress: WeightedProgress,
                    timings: dict[str, float]) -> None:  # fmt: skip
    """Normalize every clip's picture and sound, mix the soundtrack meanwhile, then mux.

    Picture encodes run `parallel` at a time; the soundtrack (sound intermediates, music,
    ducking, loudnorm, AAC) runs beside them, since it needs only the clips' sound.
    """
    parallel, threads = _parallelism(len(clips))
    geometry, fit = plan.geometry, output.fit
    windows = list(zip(clips, plan.windows, strict=True))
    videos = [video_job(clip, window, geometry, fit, scratch / f"video{i:03d}.mp4", threads)
              for i, (clip, window) in enumerate(windows)]  # fmt: skip
    soundtrack = scratch / "soundtrack.m4a"
    with _timed(timings, "encode"):
        await _gather_or_cancel(
            _timed_async(timings, "encode_pictures", _encode_pictures(videos, parallel, progress)),
            _timed_async(timings, "soundtrack",
                         _soundtrack(clips, audio, output, plan, scratch, soundtrack, progress)),
        )  # fmt: skip
    with _timed(timings, "mux"):
        await _mux(videos, soundtrack, plan, scratch, partial, progress)


async def _timed_async(timings: dict[str, float], name: str, work: Awaitable[None]) -> None:
    with _timed(timings, name):
        await work


def _parallelism(clip_count: int) -> tuple[int, int]:
    """(encodes at once, threads each): two x264 runs share the cores rather than fight."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = max(1, cores or 1)
    parallel = max(1, min(MAX_PARALLEL_ENCODES, clip_count, cores))
    return parallel, max(1, cores // parallel)


async def _gather_or_cancel(*work: Awaitable[None]) -> None:
    """Await all; the first failure cancels the rest (killing their FFmpeg) and is re-raised."""
    tasks = [asyncio.ensure_future(item) for item in work]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            # a task gather already cancelled (this one was cancelled from outside) must not get
            # a second cancel: it would cut short the FFmpeg stop and reap it is running
            if not task.done() and not task.cancelling():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _encode_pictures(jobs: list[ClipJob], parallel: int, progress: WeightedProgress) -> None:
    """Run the picture encodes `parallel` at a time, each reporting its own progress stage."""
    gate = asyncio.Semaphore(parallel)

    async def run(index: int, job: ClipJob) -> None:
        async with gate:
            stage = f"clip{index}"
            await run_ffmpeg(job.args, expected_duration=job.duration,
                             on_progress=progress.stage(stage))  # fmt: skip
            progress.finish(stage)

    await _gather_or_cancel(*(run(i, job) for i, job in enumerate(jobs)))


async def _soundtrack(clips: list[ClipSpec], audio: MusicSpec | None, output: OutputSpec,
                      plan: Plan, scratch: Path, soundtrack: Path,
                      progress: WeightedProgress) -> None:  # fmt: skip
    """The clips' sound and the music as one AAC file exactly as long as the plan (sound.py)."""
    await make_soundtrack(clips, plan, audio, output, scratch, soundtrack,
                          progress.stage("soundtrack"))  # fmt: skip
    progress.finish("soundtrack")


async def _mux(videos: list[ClipJob], soundtrack: Path, plan: Plan, scratch: Path, partial: Path,
               progress: WeightedProgress) -> None:  # fmt: skip
    """Join the picture intermediates and add the soundtrack, all by stream copy, +faststart."""
    listing = write_concat_list(scratch / "pictures", [job.output for job in videos])
    args = [
        *input_args(listing, formats=CONCAT_FORMATS, before=["-f", "concat", "-safe", "1"]),
        *input_args(soundtrack),
        "-map", "0:v:0", "-map", "1:a:0", "-c", "copy",
        "-map_metadata", "-1", "-movflags", "+faststart", str(partial),
    ]  # fmt: skip
    await run_ffmpeg(args, expected_duration=plan.duration, on_progress=progress.stage("join"))
    progress.finish("join")


async def make_poster(video: Path, poster: Path, duration: float, scratch: Path) -> Path:
    """A JPEG poster: the frame 10% in (past fades from black), or the first of a short video."""
    at = duration * POSTER_AT if duration >= POSTER_MIN_DURATION else 0.0
    partial = scratch / "poster.jpg"
    args = [
        *input_args(video, formats=("mov",), before=["-ss", f"{at:.3f}"]),
        "-map", "0:v:0", "-frames:v", "1", "-q:v", "3", "-update", "1", str(partial),
    ]  # fmt: skip
    await run_ffmpeg(args, expected_duration=None, on_progress=None)
    if not partial.exists() or partial.stat().st_size == 0:
        raise RuntimeError(f"ffmpeg wrote no poster frame at {at:.3f} s")
    partial.replace(poster)
    return poster
