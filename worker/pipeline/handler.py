"""One job, end to end: validate, download, probe, assemble, upload; clean up whatever happens.

Progress is weighted by stage: downloading 0–25 %, processing 25–90 %, uploading 90–99 %
(100 % is written with the result). Anything that goes wrong with one input names it
(`clips[2]: …`); a malformed payload names the field (`payload.clips[2].url: …`). A failed or
cancelled job leaves nothing behind: the temp folder is removed and every object this attempt
created is deleted (never one it found and replaced: see `worker.storage.publication`). A job
with a `user_id` touches only its owner's objects (`worker.storage.tenancy`).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.errors import PayloadError
from worker.fetch import DEFAULT_POLICY, DownloadBatch, FetchPolicy, InputSpec
from worker.log import get_logger
from worker.media.assemble import assemble
from worker.media.info import Kind, MediaInfo
from worker.media.probe_process import MIB, ProbeLimits, probe_all
from worker.media.specs import AssemblyResult, ClipSpec, MusicSpec, OutputSpec
from worker.payload import Payload, output_key, parse_payload
from worker.pipeline.scratch import attempt_folder
from worker.queue.context import JobContext
from worker.queue.models import Job, JobOutcome
from worker.settings import Settings
from worker.storage import InvalidKeyError, Storage, StoredObject, make_storage
from worker.storage.publication import Publication
from worker.storage.tenancy import Tenancy

DOWNLOAD = (0.0, 25.0)
PROCESS = (25.0, 90.0)
UPLOAD = (90.0, 99.0)

log = get_logger("video-worker.pipeline")


def _span(
    ctx: JobContext, span: tuple[float, float], stage: str, message: str
) -> Callable[[float], None]:
    """A 0..1 callback that moves the job's progress across `span`."""
    lo, hi = span

    def report(fraction: float) -> None:
        ctx.report_nowait(lo + (hi - lo) * min(1.0, max(0.0, fraction)), stage, message)

    return report


def _bytes_span(report: Callable[[float], None]) -> Callable[[int, int | None], None]:
    def on_bytes(done: int, total: int | None) -> None:
        if total:
            report(done / total)

    return on_bytes


@dataclass
class Attempt:
    """What one attempt made so far, so a failure can undo it."""

    workdir: Path
    publication: Publication
    timings: dict[str, float] = field(default_factory=dict)


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        storage: Storage | None = None,
        *,
        fetch_policy: FetchPolicy = DEFAULT_POLICY,
    ) -> None:
        self.settings = settings
        self.storage = storage if storage is not None else make_storage(settings)
        self.fetch_policy = fetch_policy

    async def __call__(self, job: Job, ctx: JobContext) -> JobOutcome:
        payload = parse_payload(job.payload, self.settings)
        tenancy = Tenancy.for_job(
            job.user_id, self.storage.bucket, self.settings.storage_read_buckets
        )
        key = _output_key(payload, job, tenancy)
        attempt = Attempt(
            attempt_folder(self.settings.home, job.id), Publication(self.storage, tenancy)
        )
        try:
            paths = await self._download(payload, attempt, ctx)
            clips, music = await self._probe(payload, paths, attempt, ctx)
            made = await self._assemble(clips, music, payload, attempt, ctx)
            return await self._publish(made, key, attempt, ctx)
        except BaseException:
            await self._unpublish(attempt)
            raise
        finally:
            shutil.rmtree(attempt.workdir, ignore_errors=True)

    async def _download(
        self, payload: Payload, attempt: Attempt, ctx: JobContext
    ) -> dict[str, Path]:
        await ctx.report(DOWNLOAD[0], "downloading", f"Downloading {len(_inputs(payload))} file(s)")
        report = _span(ctx, DOWNLOAD, "downloading", "Downloading inputs")
        batch = DownloadBatch(
            attempt.workdir / "inputs",
            max_bytes=self.settings.max_input_bytes,
            allow_private=self.settings.allow_private_urls,
            storage=self.storage,
            tenancy=attempt.publication.tenancy,
            policy=self.fetch_policy,
            on_progress=_bytes_span(report),
        )
        with _timed(attempt, "download"):
            return await batch.fetch_all(_inputs(payload))

    async def _probe(
        self, payload: Payload, paths: dict[str, Path], attempt: Attempt, ctx: JobContext
    ) -> tuple[list[ClipSpec], MusicSpec | None]:
        await ctx.report(DOWNLOAD[1], "processing", "Checking the inputs")
        with _timed(attempt, "probe"):
            infos = await _probe_all(paths, self.settings)
        clips = [
            ClipSpec(
                path=paths[f"clips[{i}]"],
                info=infos[f"clips[{i}]"],
                start=clip.start or None,
                end=clip.end,
                voice_path=paths.get(f"clips[{i}].voice_url"),
                voice_info=infos.get(f"clips[{i}].voice_url"),
            )
            for i, clip in enumerate(payload.clips)
        ]
        music = None
        if payload.audio is not None:
            music = MusicSpec(
                path=paths["audio"],
                info=infos["audio"],
                volume=payload.audio.volume,
                duck=payload.audio.duck,
            )
        return clips, music

    async def _assemble(
        self,
        clips: list[ClipSpec],
        music: MusicSpec | None,
        payload: Payload,
        attempt: Attempt,
        ctx: JobContext,
    ) -> AssemblyResult:
        out = payload.output
        spec = OutputSpec(
            width=out.width,
            height=out.height,
            fps=out.fps,
            fit=out.fit,
            thumbnail=out.thumbnail,
            max_duration=float(self.settings.max_output_seconds),
        )
        await ctx.report(PROCESS[0], "processing", f"Joining {len(clips)} clip(s)")
        with _timed(attempt, "process"):
            made = await assemble(
                clips,
                audio=music,
                output=spec,
                workdir=attempt.workdir / "output",
                on_progress=_span(ctx, PROCESS, "processing", "Encoding"),
            )
        return made

    async def _publish(
        self, made: AssemblyResult, key: str, attempt: Attempt, ctx: JobContext
    ) -> JobOutcome:
        """The poster first: if it cannot be stored, the video at `key` is left untouched."""
        await ctx.report(UPLOAD[0], "uploading", "Uploading the video")
        report = _span(ctx, UPLOAD, "uploading", "Uploading the video")
        with _timed(attempt, "upload"):
            poster = None
            if made.thumbnail is not None:
                poster = await self._upload(
                    made.thumbnail, _poster_key(key), "image/jpeg", attempt, None
                )
            video = await self._upload(
                made.output,
                key,
                "video/mp4",
                attempt,
                lambda done, total: report(done / total if total else 0),
            )
        return JobOutcome(
            video_url=video.url,
            thumbnail_url=poster.url if poster else None,
            result=_result(made, video, poster, attempt.timings),
        )

    async def _upload(
        self,
        path: Path,
        key: str,
        content_type: str,
        attempt: Attempt,
        on_bytes: Callable[[int, int], None] | None,
    ) -> StoredObject:
        """Publish one object; a key the store cannot hold is the output path's fault."""
        try:
            return await attempt.publication.put(path, key, content_type, on_bytes=on_bytes)
        except InvalidKeyError as exc:
            raise PayloadError("payload.output.path", str(exc)) from exc

    async def _unpublish(self, attempt: Attempt) -> None:
        """Best effort, and shielded: it runs while the job is being cancelled."""
        await attempt.publication.undo()


def _inputs(payload: Payload) -> list[InputSpec]:
    inputs = []
    for i, clip in enumerate(payload.clips):
        inputs.append(InputSpec(f"clips[{i}]", clip.url))
        if clip.voice_url:
            inputs.append(InputSpec(f"clips[{i}].voice_url", clip.voice_url))
    if payload.audio is not None:
        inputs.append(InputSpec("audio", payload.audio.url))
    return inputs


async def _probe_all(paths: dict[str, Path], settings: Settings) -> dict[str, MediaInfo]:
    """Probe every input, one at a time, in a child process this job kills when it ends or is
    cancelled, within the operator's time, memory and pixel limits (probe_process.py)."""
    limits = ProbeLimits(
        max_pixels=settings.max_input_pixels,
        timeout=settings.probe_timeout,
        memory_bytes=settings.probe_memory_mb * MIB,
    )
    inputs: list[tuple[str, Path, Kind]] = [
        (source, path, "clip" if source.startswith("clips[") and "." not in source else "audio")
        for source, path in paths.items()
    ]
    return await probe_all(inputs, limits)


def _output_key(payload: Payload, job: Job, tenancy: Tenancy) -> str:
    """The video's key, refused at once if the job may not write there or at its poster."""
    key = output_key(payload, job.id, job.user_id)
    problem = tenancy.write_problem(key) or tenancy.write_problem(_poster_key(key))
    if problem:
        raise PayloadError("payload.output.path", problem)
    return key


def _poster_key(key: str) -> str:
    stem = key[:-4] if key.lower().endswith(".mp4") else key
    return f"{stem}.jpg"


def _result(
    made: AssemblyResult,
    video: StoredObject,
    poster: StoredObject | None,
    timings: dict[str, float],
) -> dict[str, Any]:
    return {
        "storage_path": video.key,
        "bucket": video.bucket,
        "bytes": made.bytes,
        "duration": round(made.duration, 3),
        "width": made.width,
        "height": made.height,
        "fps": round(made.fps, 3),
        "video_codec": made.video_codec,
        "audio_codec": made.audio_codec,
        "join": made.join,
        "thumbnail_path": poster.key if poster else None,
        "timings": {
            **{k: round(v, 3) for k, v in timings.items()},
            **{f"ffmpeg_{k}": round(v, 3) for k, v in made.timings.items()},
        },
    }


@contextlib.contextmanager
def _timed(attempt: Attempt, name: str) -> Any:
    start = time.perf_counter()
    try:
        yield
    finally:
        attempt.timings[name] = time.perf_counter() - start


_pipelines: dict[int, Pipeline] = {}


async def handle_job(job: Job, ctx: JobContext) -> JobOutcome:
    """The default handler: one Pipeline per settings object, made on first use."""
    pipeline = _pipelines.get(id(ctx.settings))
    if pipeline is None:
        pipeline = _pipelines[id(ctx.settings)] = Pipeline(ctx.settings)
    return await pipeline(job, ctx)
