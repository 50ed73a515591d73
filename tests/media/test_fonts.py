"""Text in every script: the worker's fonts, fallback per character, and refusals instead of boxes.

No OCR: a character no font has is drawn as the font's empty box, and the boxes of one font are
all alike, so two different strings of the same length in a script must render differently (and
not blank). The fonts are the project's own (the pip Noto packages it depends on) plus Debian's
Noto where .ci/run installs them; fontconfig sees only the folders fonts.py names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media.checks import bounding_box, rgb_frames
from tests.media.test_compose import Made, made  # noqa: F401  (the session's generated clips)
from worker.errors import InputError
from worker.media.confine import confined_here
from worker.media.ffmpeg import ffmpeg_exe
from worker.media.picture.caption_render import render_captions
from worker.media.picture.captions import CaptionStyle, Line, Word, ass_document
from worker.media.picture.fonts import BUNDLED_DIR, ffmpeg_env, font_set, installed, listing
from worker.media.specs import CaptionFile, CaptionSpec, OutputSpec, TextOverlaySpec
from worker.payload import Payload, payload_error
from worker.settings import Settings

W, H = 480, 120
# two different strings of the same length (in code points) per script
PAIRS = {
    "japanese": ("こんにちは", "ありがとう"),
    "chinese": ("你好世界", "中文字幕"),
    "korean": ("안녕하세요", "감사합니다"),
    "arabic": ("سلام", "شكرا"),
    "hebrew": ("שלום", "תודה"),
    "devanagari": ("नमस्ते", "सुन्दर"),
    "thai": ("สวัสดี", "ขอบคุณ"),
    "greek": ("Γειά", "Καλή"),
    "cyrillic": ("Привет", "Москва"),
    "emoji": ("😀🎉", "👍🔥"),
}
CLIP = {"url": "https://cdn.example.com/a.mp4"}


def render(folder: Path, text: str, font: str = "Noto Sans") -> bytes:
    """The middle frame of a black W x H video with `text` as a caption, through the worker's
    fonts configuration (RGB bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    line = Line((Word(text, 0.0, 2.0),), 0.0, 2.0)
    with confined_here():
        document = ass_document([line], CaptionStyle(position="center", size=0.4, font=font), W, H)
    (folder / "c.ass").write_text(document, encoding="utf-8")
    env = ffmpeg_env(installed().write_config(folder))
    args = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", f"color=black:s={W}x{H}:d=2",
            "-vf", "ass=filename=c.ass", "-ss", "1", "-frames:v", "1",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]  # fmt: skip
    frame = subprocess.run(args, capture_output=True, check=True, timeout=60, cwd=folder,
                           env=env).stdout  # fmt: skip
    assert len(frame) == W * H * 3
    return frame


def ink(frame: bytes) -> int:
    return sum(1 for i in range(0, len(frame), 3) if frame[i] > 128)


@pytest.mark.parametrize("script", sorted(PAIRS))
def test_every_script_renders_its_own_glyphs_not_boxes(tmp_path: Path, script: str) -> None:
    one, other = PAIRS[script]
    first, second = render(tmp_path / "one", one), render(tmp_path / "other", other)
    assert ink(first) > 200 and ink(second) > 200  # drawn, not blank
    assert first != second  # boxes of one font are all alike
    assert installed().first_uncovered(one + other) is None


def test_serif_falls_back_per_character_too(tmp_path: Path) -> None:
    """Noto Serif has no Japanese: its characters come from another family, not boxes."""
    one, other = PAIRS["japanese"]
    assert render(tmp_path / "one", one, "Noto Serif") != render(tmp_path / "two", other,
                                                                   "Noto Serif")  # fmt: skip


@pytest.mark.slow
async def test_a_text_overlay_draws_every_script(made: Made, workdir: Path) -> None:  # noqa: F811
    """Text overlays go through libass with the same fonts: Japanese, Arabic and emoji render,
    and differently for different text."""
    seen = []
    for n, text in enumerate(["こんにちは", "ありがとう", "سلام", "شكرا", "😀🎉", "👍🔥"]):
        overlay = TextOverlaySpec(text, position="center", size=0.3, font="Noto Sans")
        result = await assemble_one(made, workdir / str(n), overlay)
        frame = rgb_frames(result)[15]
        points = frame.where(lambda r, g, b: r > 200 and g > 200 and b > 200)
        assert len(points) > 100, text
        x0, _, x1, _ = bounding_box(points)
        assert 20 < x1 - x0 < 320, text
        seen.append(frame.rgb)
    assert len(set(seen)) == len(seen)


async def assemble_one(made: Made, folder: Path, overlay: TextOverlaySpec) -> Path:  # noqa: F811
    from worker.media.assemble import assemble

    result = await assemble([made.colour("black")], audio=None, output=OutputSpec(),
                            workdir=folder, overlays=[overlay])  # fmt: skip
    return result.output


# ---- refusals ------------------------------------------------------------------------------------


def latin_only():  # type: ignore[no-untyped-def]
    """A worker whose only font is the bundled Source Sans Pro (Latin, Greek, Cyrillic)."""
    return font_set((BUNDLED_DIR,))


def test_text_no_font_covers_is_refused_naming_the_field_and_the_script() -> None:
    fonts = latin_only()
    assert fonts.first_uncovered("Hello, мир") is None
    assert fonts.first_uncovered("Hi สวัสดี") == ("ส", "Thai")
    assert fonts.first_uncovered("ok 😀") == ("😀", "emoji")
    assert fonts.first_uncovered("日本") == ("日", "Chinese or Japanese (Han)")
    assert fonts.first_uncovered("a\u200db\u00a0c\ufe0f") is None  # nothing to draw there
    cases = {
        "payload.overlays[0].text: has Thai text (ไ U+0E44)": {"overlays": [{"text": "ไทย"}]},
        "payload.captions.words: has emoji text": {
            "captions": {"words": [{"word": "hi 😀", "start": 0, "end": 1}]}
        },
        "payload.clips[0].transcript: has Arabic text": {
            "clips": [{**CLIP, "transcript": [{"word": "سلام", "start": 0, "end": 1}]}]
        },
    }
    for expected, raw in cases.items():
        with pytest.raises(Exception) as caught:
            Payload.model_validate({"clips": [CLIP], **raw}, context={"fonts": fonts})
        error = str(payload_error(caught.value))  # type: ignore[arg-type]
        assert error.startswith(expected) and "which no font of this worker covers" in error


async def test_a_caption_file_no_font_covers_is_refused_by_the_child(tmp_path: Path) -> None:
    from tests.media.test_caption_child import CLIP as CLIP_SPEC
    from tests.media.test_caption_child import LIMITS, PLAN

    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nGood morning สวัสดี\n", encoding="utf-8")
    spec = CaptionSpec(style=CaptionStyle(), file=CaptionFile(srt, "srt", "captions.srt_url"))
    with pytest.raises(InputError) as caught:
        await render_captions(spec, [CLIP_SPEC], PLAN, tmp_path, LIMITS, 1800.0, latin_only())
    assert str(caught.value) == (
        "captions.srt_url: has Thai text (ส U+0E2A), which no font of this worker covers"
    )
    drawn = await render_captions(spec, [CLIP_SPEC], PLAN, tmp_path, LIMITS, 1800.0, installed())
    assert drawn.lines == 1


# ---- naming fonts ------------------------------------------------------------------------------


def test_font_names_a_family_the_worker_has_or_is_refused() -> None:
    fonts = installed()
    assert fonts.resolve("sans") == "Noto Sans" and fonts.resolve("SERIF") == "Noto Serif"
    assert fonts.resolve("noto sans cjk jp") == "Noto Sans CJK JP"
    ok = Payload.model_validate(
        {"clips": [CLIP], "captions": {"font": "serif"}, "overlays": [{"text": "x"}]},
        context={"fonts": fonts},
    )
    assert ok.captions is not None and ok.captions.font == "serif"
    assert ok.overlays[0].font == "sans"  # type: ignore[union-attr]
    cases = [
        ({"captions": {"font": "comic"}}, "payload.captions.font"),
        ({"overlays": [{"text": "x", "font": "comic"}]}, "payload.overlays[0].font"),
    ]
    for raw, field in cases:
        with pytest.raises(Exception) as caught:
            Payload.model_validate({"clips": [CLIP], **raw}, context={"fonts": fonts})
        assert str(payload_error(caught.value)).startswith(  # type: ignore[arg-type]
            f'{field}: must be a font family this worker has; "comic" is not (it has sans, serif, '
        )


@pytest.mark.slow
def test_the_fonts_command_lists_families_and_their_scripts() -> None:
    text = listing(installed())
    rows = {line.split("  ")[0].strip(): line for line in text.splitlines() if line}
    assert rows["sans (Noto Sans)"].endswith("latin, greek, cyrillic")
    assert "serif (Noto Serif)" in rows
    assert "chinese, japanese, korean" in rows["Noto Sans CJK JP"]
    assert rows["Noto Emoji"].endswith("emoji") and "Noto Color Emoji" not in text
    assert text.splitlines()[-1] == (
        "with fallback, any family draws: latin, greek, cyrillic, chinese, japanese, korean, "
        "arabic, hebrew, devanagari, thai, emoji"
    )
    env = {**os.environ, "FONTS_DIR": str(BUNDLED_DIR)}
    command = [sys.executable, "-m", "worker", "fonts"]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True,
                         timeout=120).stdout  # fmt: skip
    assert out.startswith("sans (Noto Sans)") and "Source Sans Pro" in out
    assert Settings.from_env(env).fonts_dir == BUNDLED_DIR.resolve()


def test_every_job_shares_this_process_font_cache(tmp_path: Path) -> None:
    """fontconfig's cache outlives a job's scratch folder: only the first job builds it."""
    from worker.media.picture.fonts import installed, process_cache

    one, two = tmp_path / "job1", tmp_path / "job2"
    one.mkdir()
    two.mkdir()
    configs = [installed().write_config(folder).read_text() for folder in (one, two)]
    cache = f"<cachedir>{process_cache()}</cachedir>"
    assert all(cache in text for text in configs), configs[0][-400:]
    assert not str(process_cache()).startswith(str(tmp_path))


def test_the_fonts_are_read_once_however_installed_is_asked(tmp_path: Path):
    """Reading every font takes 1 to 2 s of CPU: `installed()`, `installed(None)` and a
    FONTS_DIR that adds no folder (it does not exist) share one read."""
    assert installed() is installed(None) is installed(tmp_path / "missing")
