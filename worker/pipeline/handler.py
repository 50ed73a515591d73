"""One job, end to end: validate, download, probe, assemble, upload; clean up whatever happens.

    parse_payload ─▶ job_inputs (inputs.py: an InputId per file) ─▶ DownloadBatch
      ─▶ probe_all, each input as its role requires ─▶ assembly_specs (assembly_specs.py: the
      payload and the files as the assembly's specs) ─▶ assemble (the caption file is read
      there, by the confined caption child)
      ─▶ publish poster, captions, video

Progress is weighted by stage: downloading 0–25 %, processing 25–90 %, uploading 90–99 %
(100 % is written with the result). Anything that goes wrong with one input names it
(`clips[2]: …`, `clips[0].audio[1]: …`, `captions.srt_url: …`, `overlays[0].image: …`); a
malformed payload names the field (`payload.clips[2].url: …`). A failed or cancelled job
leaves nothing behind: the temp folder is removed and every object this attempt created is
deleted (never one it found and replaced: see `worker.storage.publication`). A job with a
`user_id` touches only its owner's objects (`worker.storage.tenancy`), whatever the input.
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
from worker.media.confine import MIB
from worker.media.picture.fonts import installed
from worker.media.probe.info import MediaInfo, ProbeLimits
from worker.media.probe.process import probe_all
from worker.media.specs import AssemblyResult
from worker.payload import Payload, output_key, parse_payload
from worker.payload.warnings import ignored_keys
from worker.pipeline.assembly_specs import AssemblySpecs, Files, assembly_specs
from worker.pipeline.inputs import Input, InputId, job_inputs
from worker.pipeline.scratch import attempt_folder
from worker.queue.context import JobContext
from worker.queue.models import Job, JobOutcome
from worker.settings import Settings
from worker.storage import InvalidKeyError, Storage, StoredObject
from worker.storage.base import VIDEO_MP4
from worker.storage.publication import Publication
from worker.storage.tenancy import Tenancy

IMAGE_JPEG = "image/jpeg"
TEXT_VTT = "text/vtt"

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
    warnings: list[str] = field(default_factory=list)  # the payload's ignored keys


def settings_probe_limits(settings: Settings) -> ProbeLimits:
    """The operator's limits on probing one input (MAX_INPUT_PIXELS, PROBE_TIMEOUT, …)."""
    return ProbeLimits(
        max_pixels=settings.max_input_pixels,
        timeout=settings.probe_timeout,
        memory_bytes=settings.probe_memory_mb * MIB,
    )


class Pipeline:
    """One job's stages over the parts it is given: the storage it reads from and publishes
    to, the download policy and the probe's limits (root.py builds them from the settings)."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        *,
        fetch_policy: FetchPolicy = DEFAULT_POLICY,
        probe_limits: ProbeLimits | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.fetch_policy = fetch_policy
        self.probe_limits = (
            probe_limits if probe_limits is not None else settings_probe_limits(settings)
        )
        self.fonts = installed(settings.fonts_dir)  # read once per process, before any job

    async def __call__(self, job: Job, ctx: JobContext) -> JobOutcome:
        raw = job.payload
        payload = parse_payload(raw, self.settings)
        tenancy = Tenancy.for_job(
            job.user_id, self.storage.bucket, self.settings.storage_read_buckets
        )
        keys = _output_keys(payload, job, tenancy)
        attempt = Attempt(
            attempt_folder(self.settings.home, job.id),
            Publication(self.storage, tenancy),
            warnings=ignored_keys(raw, payload),
        )
        try:
            files = await self._gather(payload, attempt, ctx)
            specs = assembly_specs(
                payload, files, max_duration=float(self.settings.max_output_seconds),
                max_input_pixels=self.probe_limits.max_pixels, fonts=self.fonts,
            )  # fmt: skip
            made = await self._assemble(specs, attempt, ctx)
            return await self._publish(made, keys, attempt, ctx)
        except BaseException:
            await self._unpublish(attempt)
            raise
        finally:
            shutil.rmtree(attempt.workdir, ignore_errors=True)

    async def _gather(self, payload: Payload, attempt: Attempt, ctx: JobContext) -> Files:
        """Download every input and probe the media: the job's files."""
        inputs = job_inputs(payload)
        paths = await self._download(inputs, attempt, ctx)
        await ctx.report(DOWNLOAD[1], "processing", "Checking the inputs")
        with _timed(attempt, "probe"):
            infos = await self._probe(paths)
        return Files(paths=paths, infos=infos)

    async def _download(
        self, inputs: list[Input], attempt: Attempt, ctx: JobContext
    ) -> dict[InputId, Path]:
        await ctx.report(DOWNLOAD[0], "downloading", f"Downloading {len(inputs)} file(s)")
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
        specs = [InputSpec(i.id.name, i.url, i.id.max_bytes) for i in inputs]
        with _timed(attempt, "download"):
            by_name = await batch.fetch_all(specs)
        return {i.id: by_name[i.id.name] for i in inputs}

    async def _probe(self, paths: dict[InputId, Path]) -> dict[InputId, MediaInfo]:
        """Probe every media input, one at a time, in a child process this job kills when it
        ends or is cancelled, within the operator's limits (media/probe/process.py); each as its
        role requires (a clip: a video or a still; a sound; an overlay: an image or a video)."""
        media = [(source, path, kind) for source, path in paths.items()
                 if (kind := source.probe_kind) is not None]  # fmt: skip
        by_name = await probe_all(
            [(source.name, path, kind) for source, path, kind in media], self.probe_limits
        )
        return {source: by_name[source.name] for source, _, _ in media}

    async def _assemble(
        self, specs: AssemblySpecs, attempt: Attempt, ctx: JobContext
    ) -> AssemblyResult:
        clips = list(specs.clips)
        await ctx.report(PROCESS[0], "processing", f"Joining {len(clips)} clip(s)")
        with _timed(attempt, "process"):
            made = await assemble(
                clips,
                audio=specs.music,
                output=specs.output,
                workdir=attempt.workdir / "output",
                on_progress=_span(ctx, PROCESS, "processing", "Encoding"),
                captions=specs.captions,
                overlays=specs.overlays,
                limits=self.probe_limits,
                fonts=self.fonts,
            )
        return made

    async def _publish(
        self, made: AssemblyResult, keys: Keys, attempt: Attempt, ctx: JobContext
    ) -> JobOutcome:
        """The poster and the captions first: if either cannot be stored, the video at its key
        is left untouched."""
        await ctx.report(UPLOAD[0], "uploading", "Uploading the video")
        report = _span(ctx, UPLOAD, "uploading", "Uploading the video")
        with _timed(attempt, "upload"):
            poster = captions = None
            if made.thumbnail is not None:
                poster = await self._upload(made.thumbnail, keys.poster, IMAGE_JPEG, attempt, None)
            if made.captions_vtt is not None:
                captions = await self._upload(
                    made.captions_vtt, keys.captions, TEXT_VTT, attempt, None
                )
            video = await self._upload(
                made.output,
                keys.video,
                VIDEO_MP4,
                attempt,
                lambda done, total: report(done / total if total else 0),
            )
        return JobOutcome(
            video_url=video.url,
            thumbnail_url=poster.url if poster else None,
            result=_result(made, video, poster, captions, attempt),
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


@dataclass(frozen=True)
class Keys:
    """Where the job publishes: the video, its poster and its WebVTT captions."""

    video: str
    poster: str
    captions: str


def _output_keys(payload: Payload, job: Job, tenancy: Tenancy) -> Keys:
    """The video's key and its companions', refused at once if the job may not write there."""
    video = output_key(payload, job.id, job.user_id)
    keys = Keys(video, _companion(video, ".jpg"), _companion(video, ".vtt"))
    wanted = [keys.video, keys.poster]
    if payload.captions is not None and payload.captions.vtt:
        wanted.append(keys.captions)
    for key in wanted:
        problem = tenancy.write_problem(key)
        if problem:
            raise PayloadError("payload.output.path", problem)
    return keys


def _companion(key: str, suffix: str) -> str:
    """A file stored beside the video: its key with the .mp4 replaced by `suffix`."""
    stem = key[:-4] if key.lower().endswith(".mp4") else key
    return f"{stem}{suffix}"


def _result(
    made: AssemblyResult,
    video: StoredObject,
    poster: StoredObject | None,
    captions: StoredObject | None,
    attempt: Attempt,
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
        "captions_path": captions.key if captions else None,
        "timings": {
            **{k: round(v, 3) for k, v in attempt.timings.items()},
            **{f"ffmpeg_{k}": round(v, 3) for k, v in made.timings.items()},
        },
        "warnings": attempt.warnings,
    }


@contextlib.contextmanager
def _timed(attempt: Attempt, name: str) -> Any:
    start = time.perf_counter()
    try:
        yield
    finally:
        attempt.timings[name] = time.perf_counter() - start
