"""Ways to check an output for real: its streams, atom order, sound levels, loudness, pictures.

Pure Python over PyAV-decoded samples (no numpy: the test extra does not install it).
"""

from __future__ import annotations

import array
import math
import re
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import av

from worker.media.ffmpeg import ffmpeg_exe
from worker.media.probe.examine import probe


def stream_kinds(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        return [stream.type for stream in container.streams]


def assert_contract_output(path: Path, duration: float | None = None, tolerance: float = 0.05):
    """The contract's promise: MP4, H.264 8-bit yuv420p, one AAC 48 kHz stereo track, faststart."""
    info = probe(path, "output")
    assert info.format.startswith("mov,mp4")
    assert info.video is not None and info.audio is not None
    assert info.video.codec == "h264"
    assert info.video.pix_fmt == "yuv420p" and info.video.bit_depth == 8
    assert stream_kinds(path).count("audio") == 1
    assert info.audio.codec == "aac"
    assert info.audio.sample_rate == 48000 and info.audio.channels == 2
    assert top_level_atoms(path).index("moov") < top_level_atoms(path).index("mdat")
    if duration is not None:
        assert abs(info.duration - duration) <= tolerance, (info.duration, duration)
        assert info.audio.duration is not None
        assert abs(info.audio.duration - duration) <= tolerance, (info.audio.duration, duration)
    return info


def top_level_atoms(path: Path) -> list[str]:
    """The MP4's top-level box types in file order (faststart puts `moov` before `mdat`)."""
    names, offset, size = [], 0, path.stat().st_size
    with path.open("rb") as f:
        while offset < size:
            f.seek(offset)
            length, kind = struct.unpack(">I4s", f.read(8))
            if length == 1:
                length = struct.unpack(">Q", f.read(8))[0]
            names.append(kind.decode("latin-1"))
            offset += length if length else size
    return names


def decode_mono(path: Path) -> tuple[array.array, int]:
    """All of the first audio track as float samples, channels averaged, and its rate."""
    out = array.array("f")
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
        for frame in container.decode(stream):
            for mono in resampler.resample(frame):
                out.frombytes(bytes(mono.planes[0])[: mono.samples * 4])
        rate = stream.rate
    return out, rate


def tone_level_db(samples: array.array, rate: int, freq: float, start: float, end: float) -> float:
    """Amplitude (dBFS) of one sine frequency in [start, end) s: a single-bin DFT."""
    lo, hi = int(start * rate), min(len(samples), int(end * rate))
    re_sum = im_sum = 0.0
    step = 2 * math.pi * freq / rate
    for n in range(lo, hi):
        x = samples[n]
        re_sum += x * math.cos(step * n)
        im_sum += x * math.sin(step * n)
    amplitude = 2 * math.hypot(re_sum, im_sum) / max(1, hi - lo)
    return 20 * math.log10(max(amplitude, 1e-9))


def integrated_loudness(path: Path) -> float:
    """EBU R128 integrated loudness (LUFS) from FFmpeg's `ebur128` filter summary."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0",
           "-af", "ebur128", "-f", "null", "-"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    found = re.findall(r"I:\s+(-?[\d.]+) LUFS", done.stderr)
    assert found, done.stderr[-2000:]
    return float(found[-1])


def gray_frame(path: Path, index: int) -> bytes:
    """The luma plane of the `index`-th decoded frame, for comparing pictures."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                plane = frame.reformat(format="yuv420p", width=160, height=120).planes[0]
                data = bytes(plane)
                return b"".join(data[row * plane.line_size :][:160] for row in range(120))
    raise AssertionError(f"{path} has fewer than {index + 1} frames")


def picture_distance(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two same-sized luma planes (0 = identical)."""
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


class Picture:
    """One decoded frame as 8-bit RGB, for measuring what is drawn where."""

    def __init__(self, width: int, height: int, rgb: bytes) -> None:
        self.width, self.height, self.rgb = width, height, rgb

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        at = (y * self.width + x) * 3
        return self.rgb[at], self.rgb[at + 1], self.rgb[at + 2]

    def mean(self, box: tuple[int, int, int, int] | None = None) -> tuple[float, float, float]:
        """Mean R, G, B inside `box` (x0, y0, x1, y1, exclusive ends), or the whole frame."""
        x0, y0, x1, y1 = box or (0, 0, self.width, self.height)
        sums, count = [0, 0, 0], 0
        for y in range(y0, y1):
            row = self.rgb[(y * self.width + x0) * 3 : (y * self.width + x1) * 3]
            for c in range(3):
                sums[c] += sum(row[c::3])
            count += x1 - x0
        r, g, b = (s / max(1, count) for s in sums)
        return r, g, b

    def where(self, test: Callable[[int, int, int], bool]) -> list[tuple[int, int]]:
        """Every (x, y) whose colour passes `test`."""
        found = []
        rgb, width = self.rgb, self.width
        for n in range(self.width * self.height):
            if test(rgb[3 * n], rgb[3 * n + 1], rgb[3 * n + 2]):
                found.append((n % width, n // width))
        return found


def rgb_frames(path: Path) -> list[Picture]:
    """Every frame of the first video stream as RGB, decoded as its tags say."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.reformat(
                format="rgb24", src_colorspace=frame.colorspace, src_color_range=frame.color_range
            )
            plane = rgb.planes[0]
            data = bytes(plane)
            row = rgb.width * 3
            packed = b"".join(data[y * plane.line_size :][:row] for y in range(rgb.height))
            frames.append(Picture(rgb.width, rgb.height, packed))
    return frames


def bounding_box(points: list[tuple[int, int]]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around `points`, ends inclusive."""
    assert points, "nothing found to measure"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def luma(colour: tuple[float, float, float]) -> float:
    """BT.709 luma (0-255) of an RGB colour, such as a `Picture.mean`."""
    r, g, b = colour
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def roughness(picture: Picture, box: tuple[int, int, int, int]) -> float:
    """Mean absolute difference between neighbouring pixels (right and below) inside `box`
    (x0, y0, x1, y1, exclusive ends), over R, G and B: near 0 for a smooth blur, large for sharp
    edges."""
    x0, y0, x1, y1 = box
    width, rgb = picture.width, picture.rgb
    total, count = 0, 0
    for y in range(y0, y1 - 1):
        row, below = (y * width + x0) * 3, ((y + 1) * width + x0) * 3
        span = (x1 - x0) * 3
        here, under = rgb[row : row + span], rgb[below : below + span]
        total += sum(abs(a - b) for a, b in zip(here[:-3], here[3:], strict=True))
        total += sum(abs(a - b) for a, b in zip(here, under, strict=True))
        count += 2 * span - 3
    return total / max(1, count)
