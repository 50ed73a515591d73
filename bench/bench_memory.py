"""Memory of the worker on a >= 1 GB job (by hand: `.venv/bin/python bench/bench_memory.py`).

Target (from the issue): peak RSS of the worker process on a job of >= 1 GB of input <= 150 MB.

What it does:
- makes one high-bitrate 1080p H.264 + AAC clip with FFmpeg (~120 MB, cached under --work) and
  serves it from a local aiohttp server under distinct URLs (`/clip/c0.mp4`, `/clip/c1.mp4`, …),
  so a job's inputs really cross >= 1 GiB over HTTP (the server counts the bytes it sends);
- starts a fresh embedded Postgres (pgserver, under --work) unless --database-url is given, and
  the worker as a separate process (`python -m worker run`, local storage under --work);
- runs two jobs one after the other: a plain payload of identical clips (the stream-copy join)
  and one whose output size differs from the source (the re-encode path, fewer clips by default
  so it ends in a few minutes on 2 cores);
- samples RSS with psutil every --interval seconds from enqueue to the end of the job: the
  worker process itself, and the sum over its FFmpeg children at each instant; reads the
  kernel's high-water mark (VmHWM, reset before each job when /proc allows it) as a cross-check
  that nothing peaked between samples;
- prints the worker's idle RSS (after start, before any job) as the baseline, and its RSS idle
  again after each job (memory the job left behind).

Everything it makes is deleted at the end unless --keep (then the clip is reused next time).
MB here is 10^6 bytes. Other inputs: `--resolution 3840x2160 --crf 12 --seconds 10 --only copy`
runs the same >= 1 GiB copy job on 4K clips (the worker's probes decode frames in-process, so
its peak follows the input's resolution, not its size).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web

from worker.media.ffmpeg import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000
GIB = 1024**3
TARGET_MB = 150.0
SERVE_CHUNK = 1024 * 1024
TERMINAL = {"completed", "failed", "cancelled"}


# ---------------------------------------------------------------- input media


def make_clip(path: Path, size: str, seconds: float, crf: int) -> tuple[float, bool]:
    """The clip (once): 1080p testsrc2 at a near-lossless CRF gives ~4.6 MB per second."""
    if path.exists() and path.stat().st_size > 0:
        return 0.0, True
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part.mp4")
    started = time.perf_counter()
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds}",
         "-f", "lavfi", "-i", f"sine=f=440:r=48000:d={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "128k", str(partial)],
        check=True)  # fmt: skip
    partial.replace(path)
    return time.perf_counter() - started, False


class FileServer:
    """Serves one file under any `/clip/{name}` and counts the bytes it really sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent = 0
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.content_length = self.path.stat().st_size
        await resp.prepare(request)
        with self.path.open("rb") as f:
            while chunk := f.read(SERVE_CHUNK):
                await resp.write(chunk)
                self.sent += len(chunk)
        await resp.write_eof()
        return resp

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/clip/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# ---------------------------------------------------------------- RSS sampling


@dataclass
class Sample:
    at: float  # time.time()
    rss: int  # the worker process
    anon: int  # its anonymous part (heap, thread stacks): what the worker itself allocated
    kids: int  # sum over its FFmpeg children at this instant
    count: int  # children alive
    biggest: int  # largest single child


@dataclass
class Window:
    """The samples taken between two `open_window` calls."""

    label: str
    samples: list[Sample] = field(default_factory=list)

    def peak(self) -> Sample:
        return max(self.samples, key=lambda s: s.rss)

    def peak_kids(self) -> Sample:
        return max(self.samples, key=lambda s: s.kids)

    def median_rss(self) -> int:
        return int(statistics.median(s.rss for s in self.samples))


def _status(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) in bytes from /proc: one small read, cheap enough for 20 Hz."""
    rss = anon = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("RssAnon:"):
            anon = int(line.split()[1]) * 1024
    return rss, anon


class Sampler(threading.Thread):
    """Polls the worker's RSS and its children's (summed per instant) in a thread."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.proc = psutil.Process(pid)
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.window = Window("start")

    def open_window(self, label: str) -> None:
        with self._lock:
            self.window = Window(label)

    def close_window(self) -> Window:
        with self._lock:
            done, self.window = self.window, Window("between")
            return done

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError):
                return
            self._stop.wait(self.interval)

    def _sample(self) -> None:
        try:
            rss, anon = _status(self.pid)
        except OSError:
            rss, anon = self.proc.memory_info().rss, 0
        kids = count = biggest = 0
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                child_rss = child.memory_info().rss
                kids += child_rss
                count += 1
                biggest = max(biggest, child_rss)
        with self._lock:
            self.window.samples.append(Sample(time.time(), rss, anon, kids, count, biggest))


def vm_hwm(pid: int) -> int | None:
    """The kernel's peak RSS of the process (VmHWM), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_hwm(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, needs to own the process)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


STAGES = ("download", "probe", "process", "upload")


def stage_bounds(row: dict[str, Any], enqueued: float) -> list[tuple[str, float, float]]:
    """Each stage's wall-clock span, from the claim time and the handler's own timings.

    The handler runs download, probe, process and upload one after another and times each
    (`result.timings`); anchoring them at `started_at` (set at claim) places every sample in
    the stage it was taken in, without the 1 s lag of the row's throttled `stage` column.
    """
    timings = (row.get("result") or {}).get("timings") or {}
    started = row.get("started_at")
    if started is None:
        return [("job", enqueued, float("inf"))]
    at = started.timestamp()
    spans = [("queued", enqueued, at)]
    for name in STAGES:
        if name in timings:
            spans.append((name, at, at + timings[name]))
            at += timings[name]
    done = row.get("completed_at")
    end = done.timestamp() if done is not None else float("inf")
    spans.append(("finishing", at, end))
    spans.append(("after", end, float("inf")))
    return spans


def stage_of(at: float, spans: list[tuple[str, float, float]]) -> str:
    return next((name for name, lo, hi in spans if lo <= at < hi), "?")


# ---------------------------------------------------------------- the worker process


class WorkerProcess:
    def __init__(self, database_url: str, home: Path, log_path: Path) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SUPABASE_", "NEXT_PUBLIC_SUPABASE", "S3_", "AWS_"))
        }
        env.update({
            "DATABASE_URL": database_url, "VIDEO_WORKER_HOME": str(home),
            "ALLOW_PRIVATE_URLS": "true", "PORT": "0", "LOG_FORMAT": "json",
            "STORAGE_BACKEND": "local", "MAX_INPUT_BYTES": str(8 * GIB),
            "POLL_INTERVAL": "200", "SHUTDOWN_GRACE": "5", "WORKER_CONCURRENCY": "1",
            "WORKER_ID": "bench-memory",
            "PYTHONPATH": str(ROOT),
        })  # fmt: skip
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "worker", "run"], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)  # fmt: skip

    def wait_ready(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text().splitlines():
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        event = json.loads(line)
                        if event.get("event") == "http_listening":
                            return int(event["port"])
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.1)
        raise RuntimeError(f"the worker was not ready within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text()[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill_tree()
        self._log.close()

    def kill_tree(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------- one job


@dataclass
class JobRun:
    name: str
    description: str
    clips: int
    window: Window | None = None
    row: dict[str, Any] = field(default_factory=dict)
    enqueued: float = 0.0
    wall: float = 0.0
    served: int = 0
    requests: int = 0
    hwm: int | None = None
    hwm_reset: bool = False
    before: int = 0  # worker RSS at enqueue
    idle_after: int = 0


async def run_job(job: JobRun, payload: dict[str, Any], store: Any, server: FileServer,
                  sampler: Sampler, pid: int, limit_s: float) -> None:  # fmt: skip
    server.sent = server.requests = 0
    job.before = _status(pid)[0]
    job.hwm_reset = reset_hwm(pid)
    sampler.open_window(job.name)
    started = time.monotonic()
    job.enqueued = time.time()
    job_id, _ = await store.enqueue(payload, max_attempts=1)
    row: dict[str, Any] = {}
    while time.monotonic() - started < limit_s:
        row = dict(await store.get(job_id) or {})
        if row.get("status") in TERMINAL:
            break
        await asyncio.sleep(0.1)
    else:
        await store.request_cancel(job_id)
        row = dict(await store.get(job_id) or {})
        row["status"] = f"timed out after {limit_s:.0f} s ({row.get('status')})"
    job.wall = time.monotonic() - started
    job.window = sampler.close_window()
    job.hwm = vm_hwm(pid)
    job.row, job.served, job.requests = row, server.sent, server.requests


async def idle_rss(sampler: Sampler, seconds: float, label: str) -> Window:
    sampler.open_window(label)
    await asyncio.sleep(seconds)
    return sampler.close_window()


# ---------------------------------------------------------------- report


def mb(n: float | None) -> str:
    return "n/a" if n is None else f"{n / MB:.1f} MB"


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, r in enumerate(rows):
        print("  " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            print("  " + "-+-".join("-" * w for w in widths))


def verdict(rss: int) -> str:
    return "PASS" if rss <= TARGET_MB * MB else "FAIL"


def report(jobs: list[JobRun], baseline: int, interval: float) -> bool:
    done = [j for j in jobs if j.window and j.window.samples]
    if not done:
        print("no samples")
        return False
    rows: list[tuple[str, ...]] = [("", *(f"{j.name}: {j.description}" for j in done))]

    def add(label: str, fn: Any) -> None:
        rows.append((label, *(fn(j, j.window) for j in done)))

    spans = {j.name: stage_bounds(j.row, j.enqueued) for j in done}
    add("status / join", lambda j, w: f"{j.row.get('status')} / "
        f"{(j.row.get('result') or {}).get('join', '-')}")  # fmt: skip
    add(
        "input served over HTTP",
        lambda j, w: f"{mb(j.served)} in {j.requests} GETs ({j.clips} URLs)",
    )
    add("wall time enqueue -> done", lambda j, w: f"{j.wall:.1f} s")
    add("RSS samples", lambda j, w: f"{len(w.samples)} (every {interval * 1000:.0f} ms)")
    add(
        f"WORKER peak RSS (target <= {TARGET_MB:.0f} MB)",
        lambda j, w: f"{mb(w.peak().rss)} {verdict(w.peak().rss)}",
    )
    add(
        "  kernel VmHWM during the job",
        lambda j, w: mb(j.hwm) + ("" if j.hwm_reset else " (not reset: whole life)"),
    )
    add("  anonymous part at the peak", lambda j, w: mb(w.peak().anon))
    add("  idle baseline (before any job)", lambda j, w: mb(baseline))
    add("  job's cost vs idle baseline", lambda j, w: f"+{mb(w.peak().rss - baseline)} "
        f"(x{w.peak().rss / baseline:.2f})")  # fmt: skip
    add("  RSS at enqueue / cost vs that", lambda j, w: f"{mb(j.before)} / "
        f"+{mb(w.peak().rss - j.before)}")  # fmt: skip
    add("  peak at (after enqueue, stage)", lambda j, w: f"{w.peak().at - j.enqueued:.1f} s, "
        f"{stage_of(w.peak().at, spans[j.name])}, {w.peak().count} FFmpeg alive")  # fmt: skip
    for stage in ("queued", *STAGES, "finishing"):

        def in_stage(j: JobRun, w: Window, stage: str = stage) -> str:
            got = [s.rss for s in w.samples if stage_of(s.at, spans[j.name]) == stage]
            return f"{mb(max(got))} ({len(got)} samples)" if got else "-"

        add(f"  worker peak during {stage}", in_stage)
    add(
        "  worker RSS idle after the job",
        lambda j, w: f"{mb(j.idle_after)} (+{mb(j.idle_after - baseline)} vs baseline)",
    )
    add(
        "FFMPEG children peak RSS (sum)",
        lambda j, w: (
            f"{mb(w.peak_kids().kids)} at "
            f"{w.peak_kids().at - j.enqueued:.1f} s, {stage_of(w.peak_kids().at, spans[j.name])}"
        ),
    )
    add("  most FFmpeg alive at once / biggest", lambda j, w: f"{max(s.count for s in w.samples)}"
        f" / {mb(max(s.biggest for s in w.samples))}")  # fmt: skip
    add(
        "worker + children peak (same instant)",
        lambda j, w: mb(max(s.rss + s.kids for s in w.samples)),
    )
    result = {j.name: j.row.get("result") or {} for j in done}
    add("output", lambda j, w: f"{mb(result[j.name].get('bytes'))}, "
        f"{result[j.name].get('duration', 0):.1f} s, {result[j.name].get('width')}x"
        f"{result[j.name].get('height')}" if result[j.name] else "-")  # fmt: skip
    keys: list[str] = []
    for r in result.values():
        keys += [k for k in (r.get("timings") or {}) if k not in keys]
    for key in keys:

        def timing(j: JobRun, w: Window, key: str = key) -> str:
            value = (result[j.name].get("timings") or {}).get(key)
            return "-" if value is None else f"{value:.2f} s"

        add(f"  result.timings.{key}", timing)
    print_table(rows)
    ok = len(done) == len(jobs)
    for j in jobs:
        peak = j.window.peak().rss if j.window and j.window.samples else None
        hwm_over = j.hwm_reset and j.hwm is not None and j.hwm > TARGET_MB * MB
        ok = ok and peak is not None and peak <= TARGET_MB * MB and not hwm_over
        if j.row.get("status") != "completed":
            ok = False
            print(f"\n{j.name} ended {j.row.get('status')}: {j.row.get('error')}")
    return ok


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------- main


async def bench(args: argparse.Namespace, work: Path) -> int:
    from worker.app import open_store
    from worker.settings import Settings

    print(f"video-worker memory benchmark: {os.cpu_count()} cores, load average {load()} "
          f"(1/5/15 min) at start")  # fmt: skip
    print(f"work folder: {work}{' (kept)' if args.keep else ' (deleted at the end)'}")
    clip = work / "media" / f"clip-{args.resolution}-{args.seconds:g}s-crf{args.crf}.mp4"
    made, cached = make_clip(clip, args.resolution, args.seconds, args.crf)
    size = clip.stat().st_size
    copies = max(args.clips, math.ceil(args.min_input_gib * GIB / size))
    print(f"input clip: {args.resolution} 30 fps H.264 (ultrafast, crf {args.crf}) + AAC, "
          f"{args.seconds:g} s, {mb(size)} ({'cached' if cached else f'made in {made:.1f} s'}); "
          f"copy job: {copies} distinct URLs = {mb(size * copies)}")  # fmt: skip

    server = FileServer(clip)
    await server.start()
    pg = None
    worker: WorkerProcess | None = None
    sampler: Sampler | None = None
    try:
        if args.database_url:
            url = args.database_url
            print("database: --database-url")
        else:
            with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                import pgserver  # the embedded server the worker itself falls back to

                pg = pgserver.get_server(work / "pgdata", cleanup_mode="stop")
            url = pg.get_uri()
            print(f"database: fresh embedded pgserver under {work / 'pgdata'}")
        home = work / "home"
        started = time.monotonic()
        worker = WorkerProcess(url, home, work / "worker.log")
        await asyncio.to_thread(worker.wait_ready, 120)
        print(
            f"worker pid {worker.proc.pid} ready in {time.monotonic() - started:.1f} s "
            f"(`python -m worker run`, LOG_FORMAT=json, log {work / 'worker.log'})"
        )
        sampler = Sampler(worker.proc.pid, args.interval)
        sampler.start()
        await asyncio.sleep(args.settle)
        idle = await idle_rss(sampler, args.idle_seconds, "idle")
        baseline = idle.median_rss()
        print(
            f"worker idle RSS (median of {len(idle.samples)} samples over "
            f"{args.idle_seconds:g} s, after {args.settle:g} s settling): {mb(baseline)}; "
            f"idle peak {mb(idle.peak().rss)}, anonymous {mb(idle.peak().anon)}"
        )

        reencode_n = min(args.reencode_clips, copies)
        jobs = [
            (JobRun("copy", f"{copies} identical clips, stream copy", copies),
             {"clips": [{"url": f"{server.base}/clip/c{i}.mp4"} for i in range(copies)],
              "output": {"path": f"bench/copy-{uuid.uuid4().hex[:8]}.mp4"}}),
            (JobRun("reencode", f"{reencode_n} clips -> {args.reencode_size} (fewer clips: "
                    "time on 2 cores)", reencode_n),
             {"clips": [{"url": f"{server.base}/clip/r{i}.mp4"} for i in range(reencode_n)],
              "output": {"width": int(args.reencode_size.split("x")[0]),
                         "height": int(args.reencode_size.split("x")[1]),
                         "path": f"bench/reencode-{uuid.uuid4().hex[:8]}.mp4"}}),
        ]  # fmt: skip
        if args.only:
            jobs = [(j, p) for j, p in jobs if j.name == args.only]
        settings = Settings(database_url=url, home=home)
        async with open_store(settings) as store:
            for job, payload in jobs:
                print(f"running {job.name}: {job.description} … (load {load()})", flush=True)
                await run_job(job, payload, store, server, sampler, worker.proc.pid, args.timeout)
                after = await idle_rss(sampler, args.idle_seconds, f"after {job.name}")
                job.idle_after = after.median_rss()
                peak = job.window.peak().rss if job.window and job.window.samples else None
                print(
                    f"  {job.row.get('status')} in {job.wall:.1f} s; worker peak {mb(peak)}",
                    flush=True,
                )
                with contextlib.suppress(OSError):  # the output is not needed: free the disk
                    shutil.rmtree(home / "storage")
        print(f"\nResults (MB = 10^6 bytes; load average {load()} at the end; a sample's stage "
              f"comes from the row's started_at plus result.timings):")  # fmt: skip
        passed = report([j for j, _ in jobs], baseline, args.interval)
        total_in = next((j.served for j, _ in jobs if j.name == "copy"), None)
        if total_in is not None and total_in < GIB:
            print(f"WARNING: the copy job's input was only {mb(total_in)} (< 1 GiB)")
            passed = False
        print(
            f"\nverdict: worker peak RSS <= {TARGET_MB:.0f} MB on every job: "
            f"{'PASS' if passed else 'FAIL'}"
        )
        return 0 if passed else 1
    finally:
        if sampler is not None:
            sampler.stop()
        if worker is not None:
            worker.stop()
        await server.stop()
        if pg is not None:
            pg.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder for the clip cache, database, worker home (default: tmp)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--database-url", default=None, help="Postgres to use (default: a fresh embedded pgserver)"
    )
    parser.add_argument("--resolution", default="1920x1080", help="of the clip, WxH")
    parser.add_argument("--seconds", type=float, default=26.0, help="length of the clip")
    parser.add_argument("--crf", type=int, default=4, help="x264 CRF of the clip (lower: bigger)")
    parser.add_argument("--clips", type=int, default=10, help="copies in the copy job (at least)")
    parser.add_argument(
        "--min-input-gib",
        type=float,
        default=1.0,
        help="more copies are used if needed to reach this much input",
    )
    parser.add_argument("--reencode-clips", type=int, default=4)
    parser.add_argument("--reencode-size", default="1280x720")
    parser.add_argument("--only", choices=["copy", "reencode"], default=None)
    parser.add_argument("--interval", type=float, default=0.05, help="RSS sampling, seconds")
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=300.0, help="per job, seconds")
    args = parser.parse_args()

    if args.work is None:
        work = Path(tempfile.mkdtemp(prefix="vw-bench-memory-"))
        owned = [work]
    else:
        work = args.work.resolve()
        work.mkdir(parents=True, exist_ok=True)
        for stale in ("home", "pgdata"):  # a fresh database and home every run
            shutil.rmtree(work / stale, ignore_errors=True)
        owned = [work / "home", work / "pgdata", work / "media", work / "worker.log"]

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds through the finally blocks that stop the worker

    signal.signal(signal.SIGTERM, on_term)
    try:
        return asyncio.run(bench(args, work))
    except KeyboardInterrupt:
        return 130
    finally:
        if not args.keep:
            for path in owned:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
