"""`video-worker demo`: one whole job end to end on the embedded defaults.

It makes three sample clips (landscape with sound, square without sound, portrait with sound),
a still image and a music track, serves them from a local HTTP server, enqueues a job that
composes them (a fade into the still, which zooms in slowly, and captions with the spoken word
highlighted, a picture-in-picture video with rounded corners and an animated title)
with the music ducked under the clips' sound, runs the worker on it with
a live progress bar, and prints where the video and its poster are. The worker's dashboard is
up while it runs, and after the job ends too with `--keep`, until Enter.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web

from worker.app import open_store, run_worker
from worker.cli.follow import watch
from worker.cli.terminal import JobFollower
from worker.db.embedded import embedded_database_url
from worker.log import configure
from worker.media.ffmpeg import ffmpeg_exe
from worker.pipeline import handle_job
from worker.queue.models import Status
from worker.queue.runner import Runner
from worker.settings import Settings

# name: (lavfi video, lavfi audio or None, seconds)
SAMPLES: dict[str, tuple[str, str | None, float]] = {
    "landscape.mp4": ("testsrc2=size=640x360:rate=30", "sine=frequency=440", 3.0),
    "square-silent.mp4": ("smptebars=size=480x480:rate=25", None, 2.0),
    "portrait.mp4": ("mandelbrot=size=360x640:rate=30", "sine=frequency=660", 3.0),
}
MUSIC = ("music.m4a", "sine=frequency=220", 10.0)
# A still image as a clip: one frame of a lavfi source, shown for STILL_SECONDS with a zoom.
STILL = ("still.png", "gradients=size=960x540:speed=0:seed=7")
STILL_SECONDS = 2.0
TRANSITION = {"type": "fade", "duration": 0.5}  # from the first clip into the still
# A picture-in-picture: a short clip looped in a corner over most of the video, its sound low.
PIP = ("pip.mp4", "testsrc=size=320x180:rate=30", "sine=frequency=880", 2.0)
TITLE = "video-worker"  # slides down into the top of the frame, and back up at its end
# Two scripts: the captions' fonts fall back per character (Noto Sans, Noto Sans CJK), and
# Japanese words join without spaces ("字幕はどの言語でも": captions in any language).
CAPTION = ["video", "worker", "makes", "this", "from", "clips", "and", "timed", "words",
           "字幕は", "どの", "言語", "でも"]  # fmt: skip
DEMO_DATABASE = "video_worker_demo"


async def run_demo(settings: Settings, *, keep: bool = False) -> int:
    if settings.database_url or settings.storage_backend != "local":
        # never enqueue a demo job (with URLs on 127.0.0.1) into a real queue or bucket
        print(
            "The demo always uses the embedded Postgres and local storage under "
            f"{settings.home}; DATABASE_URL and storage settings are ignored."
        )
    configure(settings.log_format, settings.secrets(), level=logging.WARNING)
    started = time.monotonic()
    settings = replace(
        settings,
        # a database of its own: another local worker must not take the demo's job, nor the
        # demo's worker take theirs
        database_url=await embedded_database_url(settings.home, DEMO_DATABASE),
        storage_backend="local",
        allow_private_urls=True,  # the samples are served locally
    )
    print(f"Database: embedded Postgres in {(settings.home / 'pgdata').resolve()} "
          f"(database {DEMO_DATABASE}, the demo's own)")  # fmt: skip
    samples = settings.home / "demo" / "samples"
    print(f"Making sample clips in {samples} …")
    await make_samples(samples)
    server, base = await serve_folder(samples)
    try:
        return await _run(settings, base, started, keep)
    finally:
        await server.cleanup()


async def _run(settings: Settings, base: str, started: float, keep: bool) -> int:
    holder: dict[str, Any] = {}
    ready = asyncio.Event()

    def on_started(runner: Runner, port: int) -> None:
        holder.update(runner=runner, port=port)
        ready.set()

    demo_settings = replace(settings, port=await free_port(settings.port))
    worker = asyncio.create_task(run_worker(demo_settings, handle_job, started=on_started))
    await asyncio.wait(
        {worker, asyncio.create_task(ready.wait())}, return_when=asyncio.FIRST_COMPLETED
    )
    if worker.done():
        worker.result()  # raises what stopped it
    dashboard = f"http://127.0.0.1:{holder['port']}/"
    print(f"Worker running; dashboard at {dashboard} (while the demo runs)")
    try:
        async with open_store(settings) as store:
            job_id, _ = await store.enqueue(demo_payload(base))
            print(f"Enqueued job {job_id}")
            row = await _follow(store, job_id, worker)
        code = report(row, time.monotonic() - started)
        if keep and not worker.done():
            print(f"Dashboard still at {dashboard}; press Enter (or Ctrl-C) to stop.", flush=True)
            await _until_enter(worker)
        else:
            print("The worker and its dashboard have stopped (`demo --keep` keeps them up).")
        return code
    finally:
        holder["runner"].request_stop()
        await worker


async def _follow(store: Any, job_id: Any, worker: asyncio.Task[Any]) -> dict[str, Any] | None:
    """The job's final row; None if the worker stopped first (SIGTERM hands the job back)."""
    follower = JobFollower(sys.stdout)
    watcher = asyncio.create_task(watch(store, job_id, follower, every=0.25))
    await asyncio.wait({watcher, worker}, return_when=asyncio.FIRST_COMPLETED)
    if follower.tty:
        sys.stdout.write("\n")
    if not watcher.done():
        watcher.cancel()
        print("The worker stopped before the job ended.")
        return None
    return watcher.result()


async def _until_enter(worker: asyncio.Task[Any]) -> None:
    """Return on Enter, end of input, or the worker stopping (SIGTERM). The read runs on a
    daemon thread: one left blocked in readline must not hold the process open at exit."""
    loop = asyncio.get_running_loop()
    entered: asyncio.Future[None] = loop.create_future()

    def read() -> None:
        sys.stdin.readline()
        loop.call_soon_threadsafe(_resolve, entered)

    threading.Thread(target=read, daemon=True).start()
    await asyncio.wait({entered, worker}, return_when=asyncio.FIRST_COMPLETED)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def demo_payload(base: str) -> dict[str, Any]:
    """Three sample clips with a still after the first (faded into, zooming), the music ducked
    under them, highlight captions on the output timeline, and the overlays."""
    first, *rest = [{"url": f"{base}/{name}"} for name in SAMPLES]
    still = {"url": f"{base}/{STILL[0]}", "duration": STILL_SECONDS, "motion": "zoom_in"}
    return {
        "clips": [{**first, "transition": TRANSITION}, still, *rest],
        "captions": {"words": caption_words(), "style": "highlight", "max_words": 3},
        "audio": {"url": f"{base}/{MUSIC[0]}", "volume": 0.4, "duck": True},
        "overlays": overlays(base),
        "output": {
            "width": 640,
            "height": 360,
            "fps": 30,
            "fit": "pad",
            "path": f"demo/demo-{int(time.time())}.mp4",
        },
    }


def overlays(base: str) -> list[dict[str, Any]]:
    """An animated title, and a looped picture-in-picture that pops in and fades out."""
    return [
        {"text": TITLE, "position": "top", "size": 0.08, "box": True, "start": 0.2,
         "end": 4.0, "animation": "slide_down", "animation_duration": 0.5, "max_width": 0.6},
        {"video": f"{base}/{PIP[0]}", "x": 0.8, "y": 0.32, "width": 0.3, "radius": 0.03,
         "start": 1.0, "end": 7.5, "loop": True, "volume": 0.2, "animation": "pop",
         "fade_out": 0.4},
    ]  # fmt: skip


def caption_words() -> list[dict[str, Any]]:
    """One word every 0.65 s from 0.3 s on: a transcript on the output timeline, as a
    speech-to-text service would return it."""
    return [
        {"word": word, "start": round(0.3 + 0.65 * n, 2), "end": round(0.85 + 0.65 * n, 2)}
        for n, word in enumerate(CAPTION)
    ]


def report(row: dict[str, Any] | None, elapsed: float) -> int:
    if row is None:
        print("The demo job did not finish (the worker stopped, or the database was reset).")
        return 1
    if row["status"] != Status.COMPLETED:
        print(f"The job ended {row['status']}: {row['error']}")
        return 1
    result = row["result"]
    print(
        f"Done in {elapsed:.1f} s: {result['duration']:.1f} s of video, "
        f"{result['width']}x{result['height']} @ {result['fps']:g} fps, "
        f"{result['bytes'] / 1e6:.2f} MB, joined by {result['join']}"
    )
    print(f"Video:  {_path(row['video_url'])}")
    if row.get("thumbnail_url"):
        print(f"Poster: {_path(row['thumbnail_url'])}")
    return 0


def _path(url: str) -> str:
    return unquote(urlsplit(url).path) if url.startswith("file://") else url


async def make_samples(folder: Path) -> None:
    """Generate the sample media with FFmpeg (once; later runs reuse them)."""
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [
        _make_clip(folder / name, video, audio, seconds)
        for name, (video, audio, seconds) in [*SAMPLES.items(), (PIP[0], PIP[1:])]
    ]
    jobs.append(_make_audio(folder / MUSIC[0], MUSIC[1], MUSIC[2]))
    jobs.append(_ffmpeg(["-f", "lavfi", "-i", STILL[1], "-frames:v", "1"], folder / STILL[0]))
    await asyncio.gather(*jobs)


async def _make_clip(out: Path, video: str, audio: str | None, seconds: float) -> None:
    args = ["-f", "lavfi", "-i", video]
    if audio:
        args += ["-f", "lavfi", "-i", f"{audio}:sample_rate=48000"]
    args += ["-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac"] if audio else []
    await _ffmpeg(args, out)


async def _make_audio(out: Path, source: str, seconds: float) -> None:
    await _ffmpeg(
        ["-f", "lavfi", "-i", f"{source}:sample_rate=44100", "-t", str(seconds), "-c:a", "aac"], out
    )


async def _ffmpeg(args: list[str], out: Path) -> None:
    if out.exists() and out.stat().st_size > 0:
        return
    partial = out.with_name(f".{out.name}.part{out.suffix}")
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        *args,
        str(partial),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"could not make {out.name}: {err.decode(errors='replace')[-500:]}")
    partial.replace(out)


async def serve_folder(folder: Path) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_static("/", folder)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def free_port(wanted: int) -> int:
    """The configured port if it is free, else any free one (the demo must not fail on it)."""
    try:
        server = await asyncio.start_server(lambda r, w: None, "0.0.0.0", wanted)  # noqa: S104
    except OSError:
        return 0
    server.close()
    await server.wait_closed()
    return wanted
