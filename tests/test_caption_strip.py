"""scripts/caption_strip.py, which makes the README's picture of captions in four scripts,
still runs on the worker's path (the caption child, the worker's fonts, libass)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_caption_strip_script_draws_a_frame_per_script(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "caption_strip", ROOT / "scripts" / "caption_strip.py"
    )
    assert spec is not None and spec.loader is not None
    strip = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(strip)
    frames = [strip.frame(name, texts, tmp_path) for name, texts in strip.SAMPLES.items()]
    assert len({f.read_bytes() for f in frames}) == 4  # four different pictures
    assert (ROOT / "docs" / "caption-strip.png").stat().st_size > 10_000
