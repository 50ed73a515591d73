"""Benchmark the join (run by hand: `.venv/bin/python bench/bench_join.py`).

(a) Copy path: our `assemble` on compatible clips vs a bare
    `ffmpeg -f concat -safe 0 -i list -c copy -movflags +faststart out.mp4` on the same files.
    Target: ours <= 1.15x the bare command.
(b) Re-encode path: a heterogeneous 6-clip job (fps, sample rates, mono, HEVC, VP9, 10-bit)
    through `assemble` vs moviepy doing the same join at the same CRF and preset.
    Target: ours >= 5x faster.

It generates its own media in a temporary folder; nothing is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

from worker.media.assemble import assemble
from worker.media.ffmpeg import ffmpeg_exe
from worker.media.filters import X264_CRF, X264_PRESET
from worker.media.probe import probe
from worker.media.specs import ClipSpec, OutputSpec


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                   check=True)  # fmt: skip


def make_clip(path: Path, seconds: float, size: str, rate: str, audio_rate: int = 48000,
              channels: str = "stereo", vcodec: tuple[str, ...] = ("libx264", "-preset",
              "ultrafast", "-pix_fmt", "yuv420p"), acodec: str = "aac") -> Path:  # fmt: skip
    """One synthetic clip: moving test pattern plus a tone."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={size}:r={rate}:d={seconds}",
           "-f", "lavfi", "-i", f"sine=f=440:r={audio_rate}:d={seconds}",
           "-ac", "2" if channels == "stereo" else "1",
           "-c:v", *vcodec, "-c:a", acodec, str(path))  # fmt: skip
    return path


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def best_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    return min(timed(fn) for _ in range(runs))


def bench_copy(root: Path, clips: int, seconds: float, runs: int) -> None:
    files = [make_clip(root / f"copy{i}.mp4", seconds, "1280x720", "30") for i in range(clips)]
    listing = root / "bare.txt"
    listing.write_text("".join(f"file '{f}'\n" for f in files))
    specs = [ClipSpec(f, probe(f, f"clips[{i}]")) for i, f in enumerate(files)]

    def bare() -> None:
        ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
               "-movflags", "+faststart", str(root / "bare.mp4"))  # fmt: skip

    join_stage: list[float] = []

    def ours() -> None:
        result = asyncio.run(assemble(specs, audio=None, output=OutputSpec(),
                                      workdir=root / "ours-copy"))  # fmt: skip
        assert result.join == "copy"
        join_stage.append(result.timings["join"])

    bare_s, ours_s = best_of(runs, bare), best_of(runs, ours)
    total = clips * seconds
    print(f"(a) copy path, {clips} x {seconds:g} s 1280x720 clips ({total:g} s), best of {runs}")
    print(f"    bare ffmpeg concat copy : {bare_s * 1000:8.1f} ms")
    print(f"    our join stage          : {min(join_stage) * 1000:8.1f} ms")
    print(f"    whole assemble() call   : {ours_s * 1000:8.1f} ms  (plan, links, join, read-back)")
    print(f"    ratio join stage / bare : {min(join_stage) / bare_s:8.2f}x   (target <= 1.15x)")
    print(f"    ratio assemble / bare   : {ours_s / bare_s:8.2f}x")


def heterogeneous(root: Path, seconds: float, width: int = 640, height: int = 360) -> list[Path]:
    """Six clips that break a naive copy in six different ways."""
    size = f"{width}x{height}"
    square = f"{height * 4 // 3 // 2 * 2}x{height}"
    root.mkdir(parents=True, exist_ok=True)
    return [
        make_clip(root / "h0.mp4", seconds, size, "30"),
        make_clip(root / "h1.mp4", seconds, size, "30000/1001", audio_rate=44100),
        make_clip(root / "h2.mp4", seconds, size, "30", channels="mono"),
        make_clip(
            root / "h3.mp4",
            seconds,
            size,
            "25",
            vcodec=(
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=error",
                "-tag:v",
                "hvc1",
            ),
        ),
        make_clip(
            root / "h4.webm",
            seconds,
            square,
            "30",
            acodec="libopus",
            vcodec=("libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"),
        ),
        make_clip(
            root / "h5.mp4",
            seconds,
            size,
            "24",
            vcodec=("libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le"),
        ),
    ]


def bench_reencode(root: Path, seconds: float, width: int, height: int) -> None:
    root = root / f"{width}x{height}"
    files = heterogeneous(root, seconds, width, height)
    specs = [ClipSpec(f, probe(f, f"clips[{i}]")) for i, f in enumerate(files)]
    output = OutputSpec(width=width, height=height, fps=30)

    def ours() -> None:
        result = asyncio.run(assemble(specs, audio=None, output=output,
                                      workdir=root / "ours-re"))  # fmt: skip
        assert result.join == "reencode"

    def with_moviepy() -> None:
        from moviepy import VideoFileClip, concatenate_videoclips

        clips = [VideoFileClip(str(f)).resized((width, height)) for f in files]
        joined = concatenate_videoclips(clips, method="compose")
        joined.write_videofile(
            str(root / "moviepy.mp4"), fps=30, codec="libx264", audio_codec="aac",
            preset=X264_PRESET, ffmpeg_params=["-crf", str(X264_CRF), "-pix_fmt", "yuv420p"],
            threads=2, logger=None,
        )  # fmt: skip
        for clip in clips:
            clip.close()

    ours_s = best_of(3, ours)
    moviepy_s = best_of(2, with_moviepy)
    total = len(files) * seconds
    print(f"(b) re-encode path, best of 3 vs 2, 6 heterogeneous clips x {seconds:g} s "
          f"({total:g} s) -> "
          f"{width}x{height}@30, x264 {X264_PRESET} crf {X264_CRF}")  # fmt: skip
    print(f"    assemble (re-encode)    : {ours_s:8.2f} s  ({total / ours_s:5.1f}x realtime)")
    print(f"    moviepy                 : {moviepy_s:8.2f} s  ({total / moviepy_s:5.1f}x realtime)")
    print(f"    speed-up ours vs moviepy: {moviepy_s / ours_s:8.2f}x   (target >= 5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copy-clips", type=int, default=6)
    parser.add_argument("--copy-seconds", type=float, default=10)
    parser.add_argument("--reencode-seconds", type=float, default=4)
    parser.add_argument(
        "--reencode-sizes",
        default="640x360,1280x720",
        help="output sizes for (b), comma-separated (the clips are made at it)",
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-join-") as tmp:
        root = Path(tmp)
        bench_copy(root, args.copy_clips, args.copy_seconds, args.runs)
        for size in args.reencode_sizes.split(","):
            width, height = (int(n) for n in size.split("x"))
            bench_reencode(root, args.reencode_seconds, width, height)


if __name__ == "__main__":
    main()
