"""Make docs/caption-strip.png: one caption frame each in English, Japanese, Arabic and emoji,
drawn the way the worker draws them (by hand: `.venv/bin/python scripts/caption_strip.py`).

Each frame goes through the worker's own path: the caption child writes the ASS document from
timed words (`render_captions`, highlight style, the second word lit), and FFmpeg's libass
burns it with the worker's fonts (`fonts.installed().write_config`, the fontconfig file every
job gets), over a gradient like a clip's. The four frames are joined two by two into one PNG.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.media.confine import ChildLimits  # noqa: E402
from worker.media.ffmpeg import ffmpeg_exe  # noqa: E402
from worker.media.picture.caption_render import render_captions  # noqa: E402
from worker.media.picture.captions import CaptionStyle, Word  # noqa: E402
from worker.media.picture.fonts import ffmpeg_env, installed  # noqa: E402
from worker.media.plan import ClipWindow, Geometry, Plan  # noqa: E402
from worker.media.probe.info import MediaInfo  # noqa: E402
from worker.media.specs import CaptionSpec, ClipSpec  # noqa: E402

WIDTH, HEIGHT = 640, 360
AT = 1.2  # seconds: the second word is being spoken
SAMPLES = {
    "english": ["Captions", "for", "every", "language"],
    "japanese": ["字幕は", "どの", "言語", "でも"],
    "arabic": ["ترجمة", "لكل", "اللغات"],
    "emoji": ["Launch", "day", "🚀", "🎉"],
}
OUT = ROOT / "docs" / "caption-strip.png"


def words(texts: list[str]) -> tuple[Word, ...]:
    return tuple(Word(text, 0.5 + 0.6 * n, 1.0 + 0.6 * n) for n, text in enumerate(texts))


async def document(texts: list[str], work: Path) -> str:
    """The ASS document the caption child writes for these words, in `work`."""
    plan = Plan("compose", Geometry(WIDTH, HEIGHT, Fraction(25)), (ClipWindow(0, 3, 75),), 3, ())
    clip = ClipSpec(work / "clip.mp4", MediaInfo(work / "clip.mp4", "mov", 3, 1, 1, None, None))
    spec = CaptionSpec(style=CaptionStyle(style="highlight", max_words=4), words=words(texts))
    made = await render_captions(spec, [clip], plan, work, ChildLimits(), 1800.0)
    assert made.ass is not None
    return made.ass


def frame(name: str, texts: list[str], folder: Path) -> Path:
    work = folder / name
    work.mkdir()
    ass = asyncio.run(document(texts, work))
    picture = work / "frame.png"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
         f"gradients=s={WIDTH}x{HEIGHT}:c0=0x203040:c1=0x506070:speed=0:seed=3:d=3",
         "-vf", f"ass=filename={ass}", "-ss", str(AT), "-frames:v", "1", "-y",
         str(picture)],
        cwd=work, check=True, env=ffmpeg_env(installed().write_config(work)),
    )  # fmt: skip
    return picture


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        frames = [frame(name, texts, Path(tmp)) for name, texts in SAMPLES.items()]
        inputs = [arg for path in frames for arg in ("-i", str(path))]
        grid = "[0][1]hstack[top];[2][3]hstack[bottom];[top][bottom]vstack"
        subprocess.run([ffmpeg_exe(), "-v", "error", *inputs, "-filter_complex", grid, "-y",
                        str(OUT)], check=True)  # fmt: skip
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
