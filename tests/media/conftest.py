"""Real media for the media tests, generated with the FFmpeg binary from lavfi sources.

Every file is made once per session (lazily, on first use) in one temporary folder: short
(1-2 s) and small (320x240), so the whole suite stays fast on two cores.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from worker.media.ffmpeg import ffmpeg_exe
from worker.media.probe.examine import MediaInfo, probe
from worker.media.specs import ClipSpec

SIZE = "320x240"
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "96k"]


def _video(rate: str = "30", seconds: float = 1, size: str = SIZE,
           pattern: str = "testsrc2") -> list[str]:  # fmt: skip
    return ["-f", "lavfi", "-i", f"{pattern}=s={size}:r={rate}:d={seconds}"]


FLAT_RGB = (200, 60, 40)


def _flat(seconds: float = 1) -> list[str]:
    colour = "0x{:02X}{:02X}{:02X}".format(*FLAT_RGB)
    return ["-f", "lavfi", "-i", f"color=c={colour}:s={SIZE}:r=30:d={seconds},format=rgb24"]


def _tone(freq: int = 440, rate: int = 48000, seconds: float = 1, channels: str = "stereo",
          amplitude: float = 0.1) -> list[str]:  # fmt: skip
    """A pure sine (known frequency and level, so tests can measure it in the output)."""
    expr = f"{amplitude}*sin(2*PI*{freq}*t)"
    exprs = f"{expr}|{expr}" if channels == "stereo" else expr
    return ["-f", "lavfi", "-i", f"aevalsrc={exprs}:s={rate}:d={seconds}:c={channels}"]


# name -> (ffmpeg arguments before the output file, file suffix)
RECIPES: dict[str, tuple[list[str], str]] = {
    "h264_30": ([*_video(), *_tone(), *X264, *AAC], ".mp4"),
    "h264_30_b": ([*_video(pattern="testsrc"), *_tone(880), *X264, *AAC], ".mp4"),
    "h264_2997": ([*_video("30000/1001"), *_tone(), *X264, *AAC], ".mp4"),
    "h264_30_44k": ([*_video(), *_tone(rate=44100), *X264, *AAC], ".mp4"),
    "h264_30_mono": ([*_video(), *_tone(channels="mono"), *X264, *AAC], ".mp4"),
    "h264_30_silent": ([*_video(seconds=2), *X264], ".mp4"),
    "h264_2s": ([*_video(seconds=2), *_tone(seconds=2), *X264, *AAC], ".mp4"),
    "speech_clip": ([*_video(), *_tone(1000, amplitude=0.2), *X264, *AAC], ".mp4"),
    "quiet_clip": (
        [*_video(seconds=2), *_tone(1000, seconds=2, amplitude=0.02), *X264, *AAC],
        ".mp4",
    ),
    "hevc": (
        [
            *_video(),
            *_tone(),
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p",
            "-tag:v",
            "hvc1",
            *AAC,
        ],
        ".mp4",
    ),
    "vp9": (
        [
            *_video(),
            *_tone(),
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-c:a",
            "libopus",
        ],
        ".webm",
    ),
    "odd": (
        [
            *_video(size="321x241"),
            *_tone(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv444p",
            *AAC,
        ],
        ".mp4",
    ),
    "ten_bit": (
        [
            *_video(),
            *_tone(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p10le",
            *AAC,
        ],
        ".mp4",
    ),
    "hdr": (
        [
            *_video(),
            *_tone(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p10le",
            # FFmpeg takes colour tags from the frames, so tag them in the graph
            "-vf",
            "setparams=color_trc=smpte2084:color_primaries=bt2020:colorspace=bt2020nc",
            *AAC,
        ],
        ".mp4",
    ),
    # 60 pictures a second woven into 30 top-field-first frames, coded as fields.
    "interlaced": (
        [
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s={SIZE}:r=60:d=1",
            *_tone(),
            "-vf",
            "interlace=scan=tff,setfield=tff",
            *X264,
            "-flags",
            "+ildct+ilme",
            "-x264-params",
            "tff=1",
            *AAC,
        ],
        ".mp4",
    ),
    # One flat colour (#C83C28), made from RGB with the BT.601 matrix and tagged so.
    "bt601": (
        [
            *_flat(),
            *_tone(),
            "-vf",
            "scale=out_color_matrix=bt601:out_range=tv,format=yuv420p,"
            "setparams=colorspace=smpte170m:color_primaries=smpte170m:color_trc=smpte170m",
            *X264,
            *AAC,
        ],
        ".mp4",
    ),
    # The same colour in full-range BT.709 (yuvj420p, as phones record).
    "full_range": (
        [
            *_flat(),
            *_tone(),
            "-vf",
            "scale=out_color_matrix=bt709:out_range=pc,format=yuvj420p,"
            "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=pc",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            *AAC,
        ],
        ".mp4",
    ),
    "voice": (
        [*_tone(1000, seconds=1.5, channels="mono", amplitude=0.3), "-c:a", "libmp3lame"],
        ".mp3",
    ),
    "music": ([*_tone(220, seconds=0.7, amplitude=0.3), *AAC], ".m4a"),
}
DERIVED = {"rotated": ("h264_30", ["-display_rotation", "90"])}


class Media:
    """Makes each named file once per session; `clip(name)` also probes it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._infos: dict[str, MediaInfo] = {}

    def path(self, name: str) -> Path:
        if name in DERIVED:
            base, before = DERIVED[name]
            target = self.root / f"{name}.mp4"
            if not target.exists():
                ffmpeg([*before, "-i", str(self.path(base)), "-c", "copy"], target)
            return target
        args, suffix = RECIPES[name]
        target = self.root / f"{name}{suffix}"
        if not target.exists():
            ffmpeg(args, target)
        return target

    def info(self, name: str, kind: str = "clip") -> MediaInfo:
        key = f"{name}:{kind}"
        if key not in self._infos:
            self._infos[key] = probe(self.path(name), name, kind)  # type: ignore[arg-type]
        return self._infos[key]

    def clip(self, name: str, **kwargs: object) -> ClipSpec:
        return ClipSpec(self.path(name), self.info(name), **kwargs)  # type: ignore[arg-type]


def ffmpeg(args: list[str], output: Path) -> None:
    """Run the FFmpeg binary to make a fixture; fail loudly with its message."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args, str(output)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return Media(tmp_path_factory.mktemp("media"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "work"
