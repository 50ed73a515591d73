"""Assembling probed clips into one MP4 by the plan's join mode (copy, re-encode or compose),
and the poster.

    plan (plan.py) ──copy──▶ concat demuxer, -c copy, +faststart
                   ├reencode▶ pictures: each clip → identical H.264 intermediate, 2 at a time
                   │          sound, meanwhile: each clip → WAV in its window, crossfaded
                   │            at transitions, then music, loudness, fades, AAC
                   │            (sound/soundtrack.py)
                   │          → mux: concat pictures + soundtrack, both copied, +faststart
                   └compose─▶ picture: one FFmpeg pass per piece of up to 6 clips
                              (picture/one_pass.py: stills, transitions, captions, overlays,
                              fades); sound meanwhile, as above → mux: the pieces (joined by
                              stream copy) + soundtrack, both copied, +faststart
    then: poster JPEG (optional), and the result read back by probing the output.

One `Assembly` carries what every step shares (the specs, the plan, the scratch folder,
progress, timings, how many encodes and threads), so each step is a short method.

Everything is written inside `workdir`; the output (and the captions' WebVTT sidecar) appear
under their final names only when complete, and a failed or cancelled assembly removes what it
wrote.

Over 300 lines on purpose: the three join modes share the `Assembly` object, its cleanup and
its progress weights; each mode is a short method of it.
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
from dataclasses import dataclass, field
from pathlib import Path

from worker.media import cost
from worker.media.confine import CONCAT_FORMATS, ChildLimits
from worker.media.ffmpeg import ProgressCallback, input_args, run_ffmpeg
from worker.media.picture.caption_child import VTT_NAME
from worker.media.picture.caption_render import render_captions
from worker.media.picture.captions import CaptionStyle
from worker.media.picture.filters import ClipJob, video_job
from worker.media.picture.fonts import FontSet, ffmpeg_env, installed
from worker.media.picture.one_pass import MAX_CLIPS_PER_PASS, Piece, picture_args, split_timeline
from worker.media.picture.overlays import write_texts
from worker.media.plan import ClipWindow, Geometry, Plan, make_plan
from worker.media.probe.info import MediaInfo, ProbeLimits
from worker.media.probe.process import describe_async
from worker.media.progress import WeightedProgress
from worker.media.sound.soundtrack import make_soundtrack
from worker.media.specs import (
    AssemblyResult,
    CaptionSpec,
    ClipSpec,
    MusicSpec,
    OutputSpec,
    OverlaySpec,
    TextOverlaySpec,
    VideoOverlaySpec,
    any_transcript,
)

OUTPUT_NAME = "output.mp4"
THUMBNAIL_NAME = "thumbnail.jpg"
CAPTIONS_VTT_NAME = VTT_NAME  # the caption child writes it in scratch; it ends beside the output
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
    captions: CaptionSpec | None = None,
    overlays: Sequence[OverlaySpec] = (),
    limits: ProbeLimits | None = None,
    fonts: FontSet | None = None,
) -> AssemblyResult:
    """Join `clips` (with trims, voice-overs and music) into `workdir/output.mp4`; in the
    compose join mode when there are stills, transitions, `captions`, `overlays` or output
    fades.

    Raises `PayloadError` before any encoding for a bad trim, image clip or transition, or a
    result over `output.max_duration` or past the cost bounds (cost.py); `InputError` for a
    caption file the caption child refuses (it runs under `limits`, the probe's) or whose
    text none of `fonts` (default: the fonts installed, picture/fonts.py) covers; `FFmpegError`
    if FFmpeg fails. On any failure or cancellation the output, poster, sidecar and
    intermediates are removed.
    """
    timings: dict[str, float] = {}
    with _timed(timings, "plan"):
        plan = make_plan(clips, audio, output, captions=captions, overlays=overlays)
    final, poster, scratch = _prepare(workdir)
    sidecar = workdir / CAPTIONS_VTT_NAME
    # one compose pass uses every core; re-encodes share them, two at a time
    parallel, threads = _parallelism(1 if plan.join == "compose" else len(clips))
    job = Assembly(
        clips=clips, audio=audio, output=output, captions=_caption_spec(clips, captions),
        overlays=tuple(overlays), plan=plan, scratch=scratch, timings=timings,
        progress=WeightedProgress(_weights(plan, output), on_progress),
        parallel=parallel, threads=threads, limits=(limits or ProbeLimits()).child,
        fonts=fonts or installed(),
    )  # fmt: skip
    try:
        partial = scratch / OUTPUT_NAME
        await job.build(partial)
        partial.replace(final)
        vtt = job.place_sidecar(sidecar)
        thumbnail = None
        if output.thumbnail:
            with job.timed("thumbnail"):
                thumbnail = await make_poster(final, poster, plan.duration, scratch)
            job.progress.finish("thumbnail")
        with job.timed("probe_output"):
            info = await describe_async(final, "output")
    except BaseException:
        for path in (final, poster, sidecar):
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _result(final, thumbnail, info, plan, timings, vtt)


def _caption_spec(clips: Sequence[ClipSpec], captions: CaptionSpec | None) -> CaptionSpec | None:
    """The captions to burn: as asked, or in the default style when only clips' transcripts
    are given (`any_transcript`)."""
    if captions is None and any_transcript(clips):
        return CaptionSpec(style=CaptionStyle())
    return captions


@dataclass
class Assembly:
    """One assembly in progress: its inputs, its plan, and what every step shares."""

    clips: list[ClipSpec]
    audio: MusicSpec | None
    output: OutputSpec
    captions: CaptionSpec | None
    overlays: tuple[OverlaySpec, ...]
    plan: Plan
    scratch: Path
    progress: WeightedProgress
    timings: dict[str, float] = field(default_factory=dict)
    parallel: int = 1  # FFmpeg encodes at once
    threads: int = 1  # threads each
    limits: ChildLimits = field(default_factory=ChildLimits)  # the caption and mix children's
    fonts: FontSet = field(default_factory=installed)  # what libass may draw with
    env: dict[str, str] | None = None  # FFmpeg's, once the fonts configuration is written

    @property
    def geometry(self) -> Geometry:
        return self.plan.geometry

    def timed(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Time a step into `timings` (the job's row shows them as `ffmpeg_<name>`)."""
        return _timed(self.timings, name)

    async def build(self, partial: Path) -> None:
        """Write the finished MP4 (not yet under its final name) in the plan's join mode."""
        if self.plan.join == "copy":
            with self.timed("join"):
                await self.copy_join(partial)
        elif self.plan.join == "compose":
            await self.compose(partial)
        else:
            await self.reencode(partial)

    async def copy_join(self, partial: Path) -> None:
        """The copy join mode: stream-copy the clips one after another, only safe because the
        plan found them equal."""
        listing = write_concat_list(self.scratch, [clip.path for clip in self.clips])
        args = [
            *input_args(listing, formats=CONCAT_FORMATS, before=["-f", "concat", "-safe", "1"]),
            "-map", "0:v:0", "-map", "0:a:0", "-c", "copy",
            "-map_metadata", "-1", "-movflags", "+faststart", str(partial),
        ]  # fmt: skip
        await self.run(args, "join", self.plan.duration)

    async def reencode(self, partial: Path) -> None:
        """The re-encode join mode: normalize every clip's picture and sound (the soundtrack
        made meanwhile), then mux.

        Picture encodes run `parallel` at a time; the soundtrack (sound intermediates, music,
        ducking, loudnorm, AAC) runs beside them, since it needs only the clips' sound.
        """
        videos = [
            video_job(clip, window, self.geometry, self.output.fit,
                      self.scratch / f"video{i:03d}.mp4", self.threads,
                      max_pixels=self.output.max_input_pixels)
            for i, (clip, window) in enumerate(self.windows())
        ]  # fmt: skip
        soundtrack = self.scratch / "soundtrack.m4a"
        with self.timed("encode"):
            await _gather_or_cancel(
                _timed_async(self.timings, "encode_pictures",
                             _encode_pictures(videos, self.parallel, self.progress)),
                _timed_async(self.timings, "soundtrack", self.soundtrack(soundtrack)),
            )  # fmt: skip
        listing = write_concat_list(self.scratch / "pictures", [job.output for job in videos])
        with self.timed("mux"):
            await self.mux(
                input_args(listing, formats=CONCAT_FORMATS, before=["-f", "concat", "-safe", "1"]),
                soundtrack, partial,
            )  # fmt: skip

    async def compose(self, partial: Path) -> None:
        """The compose join mode: the picture in one pass per piece of the timeline
        (picture/one_pass.py; one piece unless there are many clips), the soundtrack beside it,
        then mux."""
        with self.timed("decorations"):
            captions, texts = await self.write_decorations()
        pieces = split_timeline(self.clips, self.plan, MAX_CLIPS_PER_PASS)
        files = [self.scratch / f"picture{k:03d}.mp4" for k in range(len(pieces))]
        soundtrack = self.scratch / "soundtrack.m4a"
        with self.timed("encode"):
            await _gather_or_cancel(
                _timed_async(self.timings, "compose",
                             self.pictures(pieces, files, captions, texts)),
                _timed_async(self.timings, "soundtrack", self.soundtrack(soundtrack)),
            )  # fmt: skip
        if len(files) == 1:
            picture = input_args(files[0], formats=("mov",))
        else:
            listing = write_concat_list(self.scratch / "pictures", files)
            picture = input_args(listing, formats=CONCAT_FORMATS,
                                 before=["-f", "concat", "-safe", "1"])  # fmt: skip
        with self.timed("mux"):
            await self.mux(picture, soundtrack, partial)

    async def pictures(self, pieces: list[Piece], files: list[Path], captions: str | None,
                       texts: list[str]) -> None:  # fmt: skip
        """Encode the pieces one after another (one at a time bounds the memory), each
        reporting its share of the "compose" stage."""
        stage, done = self.progress.stage("compose"), 0.0
        for piece, destination in zip(pieces, files, strict=True):
            args = picture_args(
                piece, self.plan, self.output, overlays=self.overlays, captions=captions,
                texts=texts, destination=destination, threads=self.threads,
            )  # fmt: skip
            share = piece.plan.frames / self.plan.frames
            await run_ffmpeg(args, expected_duration=piece.plan.duration, cwd=self.scratch,
                             on_progress=_share(stage, done, share), env=self.env)  # fmt: skip
            done += share
        self.progress.finish("compose")

    async def write_decorations(self) -> tuple[str | None, list[str]]:
        """Write what the picture passes read (the captions' ASS, by the caption child; the
        overlay texts' ASS; the fonts configuration) and check the job's cost before anything
        is encoded: the ASS file's name (None without captions) and the text files' names. The
        captions' WebVTT waits in scratch for `place_sidecar`."""
        caption_file, caption_layers = None, 0
        self.env = ffmpeg_env(self.fonts.write_config(self.scratch))
        if self.captions is not None:
            made = await render_captions(
                self.captions, self.clips, self.plan, self.scratch, self.limits,
                self.output.max_duration, self.fonts,
            )  # fmt: skip
            caption_file, caption_layers = made.ass, made.most_at_once
        spent = cost.estimate(self.plan, self.clips, self.overlays, caption_layers)
        cost.check(spent, max_seconds=self.output.max_duration,
                   max_pixels=self.output.max_input_pixels)  # fmt: skip
        texts = write_texts([o for o in self.overlays if isinstance(o, TextOverlaySpec)],
                            self.scratch, self.geometry, self.plan.duration)  # fmt: skip
        return caption_file, texts

    def place_sidecar(self, sidecar: Path) -> Path | None:
        """Move the captions' WebVTT beside the output, if one was asked for and written."""
        made = self.scratch / CAPTIONS_VTT_NAME
        if not made.exists():
            return None
        made.replace(sidecar)
        return sidecar

    async def soundtrack(self, destination: Path) -> None:
        """The whole sound as AAC, as long as the picture (sound/soundtrack.py): each clip's sound
        in its window, crossfaded over the transitions, with music, loudness and fades."""
        videos = [o for o in self.overlays if isinstance(o, VideoOverlaySpec)]
        await _soundtrack(self.clips, self.audio, self.output, self.plan, self.scratch,
                          destination, self.progress, videos, self.limits)  # fmt: skip

    async def mux(self, picture: list[str], soundtrack: Path, partial: Path) -> None:
        """The picture and the soundtrack (as long as each other), both copied, +faststart."""
        args = [
            *picture,
            *input_args(soundtrack),
            "-map", "0:v:0", "-map", "1:a:0", "-c", "copy",
            "-map_metadata", "-1", "-movflags", "+faststart", str(partial),
        ]  # fmt: skip
        await self.run(args, "join", self.plan.duration)

    async def run(self, args: list[str], stage: str, seconds: float,
                  cwd: Path | None = None) -> None:  # fmt: skip
        """One FFmpeg run reporting to one progress stage, which it completes."""
        await run_ffmpeg(args, expected_duration=seconds, on_progress=self.progress.stage(stage),
                         cwd=cwd)  # fmt: skip
        self.progress.finish(stage)

    def windows(self) -> list[tuple[ClipSpec, ClipWindow]]:
        return list(zip(self.clips, self.plan.windows, strict=True))


def _share(stage: ProgressCallback, before: float, share: float) -> ProgressCallback:
    """A piece's own 0..1 as its share of a stage that earlier pieces took `before` of."""
    return lambda fraction: stage(before + fraction * share)


def _prepare(workdir: Path) -> tuple[Path, Path, Path]:
    """Output and poster paths, and a fresh scratch folder for intermediates and lists."""
    workdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="assemble-", dir=workdir))
    return workdir / OUTPUT_NAME, workdir / THUMBNAIL_NAME, scratch


def _result(final: Path, thumbnail: Path | None, info: MediaInfo, plan: Plan,
            timings: dict[str, float], captions_vtt: Path | None) -> AssemblyResult:  # fmt: skip
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
        captions_vtt=captions_vtt,
    )


def _weights(plan: Plan, output: OutputSpec) -> dict[str, float]:
    """Expected work per stage, in seconds of video times a relative cost."""
    weights: dict[str, float] = {}
    if plan.join == "copy":
        weights["join"] = plan.duration
    else:
        if plan.join == "compose":
            weights["compose"] = plan.duration
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
                      plan: Plan, scratch: Path, soundtrack: Path, progress: WeightedProgress,
                      overlays: Sequence[VideoOverlaySpec] = (),
                      limits: ChildLimits | None = None) -> None:  # fmt: skip
    """The clips' sound, the video overlays' and the music as one AAC file exactly as long as
    the plan (sound/soundtrack.py)."""
    await make_soundtrack(clips, plan, audio, output, scratch, soundtrack,
                          progress.stage("soundtrack"), overlays, limits)  # fmt: skip
    progress.finish("soundtrack")


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
