"""Decode and pixel bombs against a real worker (by hand: `.venv/bin/python bench/bench_bombs.py`).

Targets:
- peak RSS of the worker's process tree (the worker, its probe child, its FFmpeg) on the
  16000x16000 PNG-in-MOV stays under 300 MB, and so does it on the multi-picture still (one
  320x240 PNG, then six 8192x8192 16-bit PNGs, 3 MB: FFmpeg once decoded them all, 2.1 GB as
  a still clip and 2.9 GB as an overlay), given as a still clip and as an image overlay;
- the tree's CPU on the duration-less Matroska (hours of black 1080p in ~20 MB) is bounded by
  the probe's time limit (PROBE_TIMEOUT, 20 s), and CPU is back to idle within 2 s after a bomb
  job ends, including one that times out (JOB_TIMEOUT) in the middle of its probe;
- the caption recipes (a 2 MB cue of `<`, 2,000 cues of 999 `<`, 2 MB of backslash words in
  `highlight`, 10,000 caption words at once, on a 640x360 clip whose one-word caption job is
  their baseline): the worker's event loop never lags 0.5 s (its /stats
  `event_loop_lag.max`), the tree stays under 300 MB, and it is idle within 2 s after.

What it does: makes the files (tests/media/bombs.py: the bombs cost a few MB and seconds),
serves them from 127.0.0.1, starts a fresh embedded Postgres and the worker as a separate
process (`python -m worker run`, concurrency 1, bench_memory.py's WorkerProcess), runs one job
per file, and samples the tree every 50 ms: RSS (worker + every descendant, summed at each
instant) and CPU seconds (the worker's own, its reaped children's, and its live descendants').
A normal 1080p clip's job runs first as the baseline of the same run. Then a second worker with
JOB_TIMEOUT=2 runs the duration-less bomb again, so the job times out while it is probed.

"Back to idle" is the time from the job's end (the row's completed_at) to the end of the last
250 ms window in which the tree used more than 0.1 core; the worker's own idle use (polling)
is printed as the floor. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from aiohttp import ClientSession, web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_memory import WorkerProcess, load, mb  # noqa: E402

from tests.media.bombs import PNG_MAGIC, _chunk, endless_mkv, png_in_mov  # noqa: E402
from tests.media.conftest import ffmpeg  # noqa: E402

RSS_TARGET = 300e6
IDLE_TARGET_S = 2.0
LAG_TARGET_S = 0.5
IDLE_CORES = 0.1
WINDOW_S = 0.25
TERMINAL = {"completed", "failed", "cancelled"}


# ---------------------------------------------------------------- sampling the tree


@dataclass
class Point:
    at: float
    rss_worker: int
    rss_tree: int
    cpu: float  # cumulative CPU seconds of the tree
    kids: int


class TreeSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.points: list[Point] = []
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.NoSuchProcess):
                self.points.append(self._sample())
            self._stop.wait(self.interval)

    def _sample(self) -> Point:
        own = self.proc.cpu_times()
        cpu = own.user + own.system + own.children_user + own.children_system
        rss = worker_rss = self.proc.memory_info().rss
        kids = self.proc.children(recursive=True)
        for kid in kids:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = kid.cpu_times()
                cpu += times.user + times.system
                rss += kid.memory_info().rss
        return Point(time.time(), worker_rss, rss, cpu, len(kids))

    def between(self, start: float, end: float) -> list[Point]:
        return [p for p in list(self.points) if start <= p.at <= end]


def cpu_rate(points: list[Point]) -> float:
    if len(points) < 2 or points[-1].at <= points[0].at:
        return 0.0
    return (points[-1].cpu - points[0].cpu) / (points[-1].at - points[0].at)


def back_to_idle(points: list[Point], end: float) -> float:
    """Seconds from `end` to the end of the last busy 250 ms window after it (0: never busy)."""
    last_busy = end
    after = [p for p in points if p.at >= end - WINDOW_S]
    for i, p in enumerate(after):
        window = [q for q in after[: i + 1] if q.at >= p.at - WINDOW_S]
        if p.at > end and cpu_rate(window) > IDLE_CORES:
            last_busy = p.at
    return max(0.0, last_busy - end)


# ---------------------------------------------------------------- files and server


def deep_png(side: int) -> bytes:
    """A `side` x `side` 16-bit RGBA PNG of zero rows: 8 bytes a pixel decoded (512 MB at
    8192), about 0.5 MB on disk."""
    header = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = b"\x00" * (side * 8 + 1)  # filter byte + pixels
    block = max(1, (8 << 20) // len(row))  # ~8 MB at a time
    parts = [packer.compress(row * min(block, side - y)) for y in range(0, side, block)]
    data = b"".join(parts) + packer.flush()
    return PNG_MAGIC + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def multi_picture_png(folder: Path) -> Path:
    """A still of many pictures: one small PNG, then six 8192x8192 16-bit ones, in one file."""
    path = folder / "pictures.png"
    if not path.exists():
        small = folder / "small.png"
        ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x240", "-frames:v", "1"], small)
        path.write_bytes(small.read_bytes() + deep_png(8192) * 6)
    return path


def caption_files(folder: Path) -> dict[str, Path]:
    """Hostile caption recipes, each about 2 MB: a WebVTT file of one cue of `<` and no `>`
    (the tag pattern once backtracked over it, holding the GIL), one of 2,000 cues of 999 `<`
    (within every bound: read, and shown as text), and an SRT of 9,000 words of 200
    backslashes for `highlight` (its document once grew to 162 MB in the event loop)."""
    made = {
        "angle_cue": folder / "angle-cue.vtt",
        "angle_cues": folder / "angle-cues.vtt",
        "backslashes": folder / "backslashes.srt",
    }
    made["angle_cue"].write_text("WEBVTT\n\n00:00.000 --> 00:03.000\n" + "<" * 2_000_000 + "\n")
    cues = [f"00:00.{n // 2 % 1000:03d} --> 00:03.000\n{'<' * 999}\n" for n in range(2000)]
    made["angle_cues"].write_text("WEBVTT\n\n" + "\n".join(cues))
    word = "\\" * 200
    blocks = [f"{n + 1}\n00:00:00,{n % 1000:03d} --> 00:00:03,000\n{' '.join([word] * 4)}\n"
              for n in range(2250)]  # fmt: skip
    made["backslashes"].write_text("\n".join(blocks))
    return made


def make_files(folder: Path, hours: float) -> dict[str, Path]:
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    normal = folder / "normal-1080p.mp4"
    if not normal.exists():
        ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30:d=4", "-f", "lavfi",
                "-i", "sine=f=440:r=48000:d=4", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", "-c:a", "aac"], normal)  # fmt: skip
    small = folder / "normal-360p.mp4"
    if not small.exists():
        ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=640x360:r=30:d=4", "-f", "lavfi",
                "-i", "sine=f=440:r=48000:d=4", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", "-c:a", "aac"], small)  # fmt: skip
    files = {
        "normal": normal,
        "small": small,
        "pixels": png_in_mov(folder, 16000, rgb=True),
        "pictures": multi_picture_png(folder),
        "endless": endless_mkv(folder, round(hours * 360) * 10, "1920x1080", "veryfast"),
        **caption_files(folder),
    }
    print(f"files made in {time.perf_counter() - started:.1f} s:")
    for name, path in files.items():
        print(f"  {name:8} {path.name}: {mb(path.stat().st_size)}")
    return files


async def serve(files: dict[str, Path]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    for name, path in files.items():
        app.router.add_get(f"/{name}{path.suffix}", lambda _r, p=path: web.FileResponse(p))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


# ---------------------------------------------------------------- jobs


@dataclass
class Run:
    name: str
    file: str
    role: str = "clip"  # the file as a video clip, a "still" clip, an image "overlay", "captions"
    row: dict[str, Any] = field(default_factory=dict)
    lag: float = 0.0  # the worker's worst event-loop lag since it started, after this job
    enqueued: float = 0.0
    ended: float = 0.0
    points: list[Point] = field(default_factory=list)
    after: list[Point] = field(default_factory=list)


def payload(run: Run, link: dict[str, str]) -> dict[str, Any]:
    """The run's file as its only clip, as a still of 2 s, or as an overlay on the normal clip."""
    url = link[run.file]
    if run.role == "still":
        return {"clips": [{"url": url, "duration": 2}]}
    if run.role == "overlay":
        return {"clips": [{"url": link["normal"]}], "overlays": [{"image": url}]}
    if run.role == "captions":  # on the 640x360 clip, so the encode itself stays small
        kind = "srt_url" if url.endswith(".srt") else "vtt_url"
        return {"clips": [{"url": link["small"]}],
                "captions": {kind: url, "style": "highlight", "max_words": 20}}  # fmt: skip
    if run.role == "overlapping":
        words = [{"word": f"w{n}", "start": 0, "end": 4} for n in range(10_000)]
        return {"clips": [{"url": link["small"]}], "captions": {"words": words, "max_words": 1}}
    if run.role == "one_word":  # the caption recipes' baseline: the same encode, one word
        words = [{"word": "baseline", "start": 0, "end": 4}]
        return {"clips": [{"url": link["small"]}], "captions": {"words": words}}
    return {"clips": [{"url": url}]}


async def worst_lag(port: int) -> float:
    """The worker's worst event-loop lag since it started (/stats `event_loop_lag.max`)."""
    async with ClientSession() as http, http.get(f"http://127.0.0.1:{port}/stats") as reply:
        stats = await reply.json()
    return float(stats["event_loop_lag"]["max"])


async def run_job(run: Run, job: dict[str, Any], store: Any, sampler: TreeSampler,
                  limit: float, port: int) -> None:  # fmt: skip
    run.enqueued = time.time()
    job_id, _ = await store.enqueue(job, max_attempts=1)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        run.row = dict(await store.get(job_id) or {})
        if run.row.get("status") in TERMINAL:
            break
        await asyncio.sleep(0.05)
    done = run.row.get("completed_at")
    run.ended = done.timestamp() if done is not None else time.time()
    await asyncio.sleep(5.0)  # what the tree does after the job
    run.points = sampler.between(run.enqueued, run.ended)
    run.after = sampler.between(run.ended - WINDOW_S, run.ended + 5.0)
    run.lag = await worst_lag(port)


def report(runs: list[Run], idle_cores: float, probe_timeout: float) -> bool:
    ok = True
    print(f"\nworker idle CPU (floor): {idle_cores:.3f} cores")
    for run in runs:
        points = run.points or [Point(run.ended, 0, 0, 0.0, 0)]
        peak = max(points, key=lambda p: p.rss_tree)
        cpu = (run.after[-1].cpu if run.after else points[-1].cpu) - points[0].cpu
        job_cpu = points[-1].cpu - points[0].cpu
        idle_s = back_to_idle(points + run.after, run.ended)
        timings = (run.row.get("result") or {}).get("timings") or {}
        error = (run.row.get("error") or "")[:150]
        print(f"\n{run.name} ({run.file}): {run.row.get('status')} in "
              f"{run.ended - run.enqueued:.1f} s, attempts {run.row.get('attempts')}")  # fmt: skip
        if error:
            print(f"  error: {error}")
        if timings:
            print(f"  timings: probe {timings.get('probe', 0):.2f} s, "
                  f"process {timings.get('process', 0):.2f} s")  # fmt: skip
        print(f"  tree peak RSS: {mb(peak.rss_tree)} (worker {mb(peak.rss_worker)}, "
              f"{peak.kids} children at that instant); worker peak "
              f"{mb(max(p.rss_worker for p in points))}")  # fmt: skip
        busy = [p for p in points if p.kids]
        later = max((p.kids for p in run.after if p.at > run.ended + 0.5), default=0)
        print(f"  children (probe, FFmpeg) alive in {len(busy)} of {len(points)} samples, the "
              f"last {run.ended - busy[-1].at if busy else 0:.2f} s before the job's end; "
              f"alive 0.5 s after it: {later}")  # fmt: skip
        print(f"  tree CPU during the job: {job_cpu:.2f} s; including the 5 s after: {cpu:.2f} s")
        print(f"  CPU back to idle {idle_s:.2f} s after the job ended "
              f"(tree use in the 5 s after: {cpu_rate(run.after):.3f} cores)")  # fmt: skip
        print(f"  worst event-loop lag since the worker started: {run.lag * 1000:.1f} ms")
        if run.role in ("captions", "overlapping"):
            ok &= run.lag < LAG_TARGET_S and peak.rss_tree < RSS_TARGET
            print(f"  loop lag < {LAG_TARGET_S:g} s: {run.lag < LAG_TARGET_S}; peak tree RSS < "
                  f"{mb(RSS_TARGET)}: {peak.rss_tree < RSS_TARGET}")  # fmt: skip
        if run.name != "baseline":
            ok &= idle_s <= IDLE_TARGET_S
        if run.file in ("pixels", "pictures", "endless"):
            ok &= job_cpu <= probe_timeout + 5  # the probe's budget plus start-up and plan
        if run.file in ("pixels", "pictures"):
            ok &= peak.rss_tree < RSS_TARGET
            print(f"  peak tree RSS < {mb(RSS_TARGET)}: {peak.rss_tree < RSS_TARGET}")
    return ok


async def phase(label: str, url: str, home: Path, log: Path, env: dict[str, str],
                jobs: list[tuple[Run, dict[str, Any]]], limit: float) -> float:  # fmt: skip
    from worker.app import open_store
    from worker.settings import Settings

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        worker = WorkerProcess(url, home, log)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    sampler: TreeSampler | None = None
    try:
        port = await asyncio.to_thread(worker.wait_ready, 120)
        sampler = TreeSampler(worker.proc.pid)
        sampler.start()
        await asyncio.sleep(3.0)
        start = time.time()
        await asyncio.sleep(3.0)
        idle = cpu_rate(sampler.between(start, time.time()))
        shown = " ".join(f"{k}={v}" for k, v in env.items())
        print(f"{label}: worker pid {worker.proc.pid} {shown}")
        async with open_store(Settings(database_url=url, home=home)) as store:
            for run, job in jobs:
                print(f"  running {run.name} … (load {load()})", flush=True)
                await run_job(run, job, store, sampler, limit, port)
        return idle
    finally:
        if sampler is not None:
            sampler.stop()
        worker.stop()


async def bench(args: argparse.Namespace, work: Path) -> int:
    print(f"bomb benchmark: {os.cpu_count()} cores, load {load()} at start; work folder {work}")
    files = make_files(work / "media", args.hours)
    runner, base = await serve(files)
    pg = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            pg = pgserver.get_server(work / "pgdata", cleanup_mode="stop")
        url = pg.get_uri()
        link = {name: f"{base}/{name}{path.suffix}" for name, path in files.items()}
        runs = [Run("baseline", "normal"), Run("pixel bomb", "pixels"),
                Run("duration-less bomb", "endless"),
                Run("multi-picture still", "pictures", "still"),
                Run("multi-picture overlay", "pictures", "overlay"),
                Run("captions baseline: one word on the 640x360 clip", "small", "one_word"),
                Run("caption file: one cue of 2 MB of '<'", "angle_cue", "captions"),
                Run("caption file: 2,000 cues of 999 '<'", "angle_cues", "captions"),
                Run("caption file: 2 MB of backslash words, highlight", "backslashes",
                    "captions"),
                Run("10,000 caption words at once", "normal", "overlapping")]  # fmt: skip
        idle = await phase("default settings", url, work / "home", work / "worker.log", {},
                           [(r, payload(r, link)) for r in runs], args.limit)  # fmt: skip
        timed_out = Run("duration-less bomb, JOB_TIMEOUT=2", "endless")
        await phase("short job timeout", url, work / "home2", work / "worker2.log",
                    {"JOB_TIMEOUT": "2"}, [(timed_out, payload(timed_out, link))],
                    args.limit)  # fmt: skip
        passed = report([*runs, timed_out], idle, probe_timeout=20.0)
        print(f"\nload average at the end: {load()}")
        print(
            f"verdict (tree RSS < 300 MB on the pixel bomb, the multi-picture still and the "
            f"caption recipes; loop lag < {LAG_TARGET_S:g} s on the caption recipes; bomb CPU "
            f"<= probe limit + 5 s; "
            f"idle within {IDLE_TARGET_S:g} s): {'PASS' if passed else 'FAIL'}"
        )
        return 0 if passed else 1
    finally:
        await runner.cleanup()
        if pg is not None:
            pg.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--hours", type=float, default=2.3,
                        help="black 1080p in the duration-less bomb (2.3 h is ~20 MB)")  # fmt: skip
    parser.add_argument("--limit", type=float, default=300, help="seconds to wait for a job")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-bombs-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(bench(args, work))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
