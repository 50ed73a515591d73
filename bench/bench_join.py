"""Benchmark the join (run by hand: `.venv/bin/python bench/bench_join.py`).

(a) Copy path: our `assemble` on compatible clips vs a bare
    `ffmpeg -f concat -safe 0 -i list -c copy -movflags +faststart out.mp4` on the same files.
    Target: ours <= 1.15x the bare command.
(b) Re-encode path: a heterogeneous 6-clip job (fps, sample rates, mono, HEVC, VP9, 10-bit)
    through `assemble` vs moviepy doing the same join at the same CRF and preset
    (target: ours >= 5x faster), and vs one hand-written `ffmpeg -filter_complex` command that
    makes the same output in one process (the encoder's own limit; target: ours <= 1.15x).

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
from worker.media.picture.filters import X264_CRF, X264_PRESET
from worker.media.probe.examine import probe
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

    def single() -> None:
        ffmpeg(*single_command(files, seconds, width, height, root / "single.mp4"))

    # the three take turns, so a change in the machine's speed touches all of them alike
    ours_runs, single_runs, moviepy_runs = [], [], []
    for round_ in range(3):
        ours_runs.append(timed(ours))
        single_runs.append(timed(single))
        if round_ < 2:
            moviepy_runs.append(timed(with_moviepy))
    ours_s, single_s, moviepy_s = min(ours_runs), min(single_runs), min(moviepy_runs)
    total = len(files) * seconds
    print(f"(b) re-encode path, best of 3 (moviepy 2), 6 heterogeneous clips x {seconds:g} s "
          f"({total:g} s) -> "
          f"{width}x{height}@30, x264 {X264_PRESET} crf {X264_CRF}")  # fmt: skip
    print(f"    assemble (re-encode)    : {ours_s:8.2f} s  ({total / ours_s:5.1f}x realtime)")
    print(f"    one ffmpeg command      : {single_s:8.2f} s  ({total / single_s:5.1f}x realtime)")
    print(f"    moviepy                 : {moviepy_s:8.2f} s  ({total / moviepy_s:5.1f}x realtime)")
    print(f"    speed-up ours vs moviepy: {moviepy_s / ours_s:8.2f}x   (target >= 5x)")
    print(f"    ratio ours / one command: {ours_s / single_s:8.2f}x   (target <= 1.15x)")
    ours_d = probe(root / "ours-re" / "output.mp4", "ours").duration
    single_d = probe(root / "single.mp4", "single").duration
    print(f"    durations ours / single : {ours_d:.3f} s / {single_d:.3f} s (must match)")


def single_command(files: list[Path], seconds: float, width: int, height: int,
                   out: Path) -> list[str]:  # fmt: skip
    """One FFmpeg run that makes what `assemble` makes from these clips: every clip fitted
    (pad) to the size at 30 fps, BT.709 yuv420p, its sound at 48 kHz stereo and exactly as long
    as its picture, all concatenated, then a peak limiter and AAC, with the same x264 settings.

    Written by hand rather than from worker.media's own filter builders, so it stays the
    baseline whatever the worker's graph becomes. One difference is inherent: the worker
    measures the mix's loudness before setting its gain (two passes over the sound, which run
    beside the picture encodes); one command cannot measure first, so it applies a fixed gain.
    """
    frames = round(seconds * 30)
    samples = round(frames * 48000 / 30)
    fmt = "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"
    chains, pairs = [], ""
    for i in range(len(files)):
        chains.append(
            f"[{i}:v]format=yuv420p,scale={width}:{height}:force_original_aspect_ratio=decrease"
            ":force_divisible_by=2:in_color_matrix=bt709:out_color_matrix=bt709:out_range=tv,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps=30,"
            "format=yuv420p,setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709"
            f":range=tv,tpad=stop_mode=clone:stop=-1,trim=end_frame={frames}[v{i}]"
        )
        chains.append(
            f"[{i}:a:0]aresample=48000,{fmt},apad,atrim=end_sample={samples},asetpts=N/SR/TB[a{i}]"
        )
        pairs += f"[v{i}][a{i}]"
    chains.append(f"{pairs}concat=n={len(files)}:v=1:a=1[v][joined]")
    chains.append(f"[joined]volume=0dB,alimiter=limit=0.8414:level=false:attack=5:release=50,"
                  f"{fmt}[a]")  # fmt: skip
    inputs = [arg for f in files for arg in ("-i", str(f))]
    return [
        *inputs, "-filter_complex", ";".join(chains), "-map", "[v]", "-map", "[a]",
        "-c:v", "libx264", "-preset", X264_PRESET, "-crf", str(X264_CRF), "-profile:v", "high",
        "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2",
        "-movflags", "+faststart", str(out),
    ]  # fmt: skip


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
