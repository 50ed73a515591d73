"""The caption child: the worker hands it words and a caption file and gets back only counts.

The worker's side never parses a caption file or builds a subtitle document (`child_only`
raises there); the child writes both files, counts what it wrote, and refuses a document past
MAX_DOCUMENT_BYTES, with the refusal naming the field.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from worker.errors import InputError, PayloadError
from worker.media.confine import ChildLimits
from worker.media.picture import caption_child
from worker.media.picture.caption_render import render_captions
from worker.media.picture.captions import CaptionStyle, Word, ass_document, words_from_srt
from worker.media.plan import ClipWindow, Geometry, Plan
from worker.media.probe.info import MediaInfo
from worker.media.specs import CaptionFile, CaptionSpec, ClipSpec

PLAN = Plan("compose", Geometry(320, 180, Fraction(30)), (ClipWindow(0.0, 10.0, 300),), 10.0, ())
CLIP = ClipSpec(Path("clip.mp4"), MediaInfo(Path("clip.mp4"), "mov", 10.0, 1, 1, None, None))
LIMITS = ChildLimits(timeout=20)


def test_the_worker_cannot_parse_a_caption_file_or_build_a_document_itself() -> None:
    with pytest.raises(RuntimeError, match="parses an end user's bytes"):
        words_from_srt("1\n00:00:01,000 --> 00:00:02,000\nhi\n", "captions.srt_url",
                       max_seconds=10)  # fmt: skip
    with pytest.raises(RuntimeError, match="confined child"):
        ass_document([], CaptionStyle(), 320, 180)


async def test_the_child_writes_both_files_and_counts_one_block_at_a_time(tmp_path: Path) -> None:
    words = (*(Word(f"w{n}", 0.0, 5.0) for n in range(500)), Word("late", 6.0, 6.5))
    spec = CaptionSpec(style=CaptionStyle(style="highlight", max_words=1), words=words, vtt=True)
    made = await render_captions(spec, [CLIP], PLAN, tmp_path, LIMITS, 1800.0)
    assert made.ass == "captions.ass" and (tmp_path / "captions.ass").exists()
    assert made.vtt == tmp_path / "captions.vtt" and made.vtt.read_text().count(" --> ") == 2
    assert (made.lines, made.events, made.most_at_once) == (2, 2, 1)
    assert made.bytes == (tmp_path / "captions.ass").stat().st_size


async def test_a_caption_file_is_read_by_the_child_and_its_refusal_names_it(
    tmp_path: Path,
) -> None:
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nGood morning\n")
    spec = CaptionSpec(style=CaptionStyle(), file=CaptionFile(srt, "srt", "captions.srt_url"))
    made = await render_captions(spec, [CLIP], PLAN, tmp_path, LIMITS, 1800.0)
    assert (made.lines, made.most_at_once) == (1, 1)
    srt.write_text("1\n00:00:01,000 --> 00:40:00,000\nToo late\n")
    with pytest.raises(InputError, match=r"^captions\.srt_url: the cue at line 2 ends at 2400 s"):
        await render_captions(spec, [CLIP], PLAN, tmp_path, LIMITS, 1800.0)


async def test_a_document_past_its_size_limit_is_refused_naming_the_captions(
    tmp_path: Path,
) -> None:
    """2,000 words of a letter and 199 zero-width marks (600 bytes, one character wide, so 20
    fit one row), in lines of 20, highlighted: each line's text is written once per word (20 x
    20 x 600 bytes = 240 KB a line, 100 lines, about 25 MB), past the child's 16 MB; it stops
    there and says so."""
    word = "a" + "\u20d0" * 199
    words = tuple(Word(word, n * 0.001, n * 0.001 + 0.001) for n in range(2000))
    spec = CaptionSpec(style=CaptionStyle(style="highlight", max_words=20), words=words)
    with pytest.raises(PayloadError, match=r"^payload\.captions: make a subtitle document over"):
        await render_captions(spec, [CLIP], PLAN, tmp_path, LIMITS, 1800.0)
    assert (tmp_path / "captions.ass").stat().st_size <= caption_child.MAX_DOCUMENT_BYTES


def test_most_at_once_counts_overlaps_and_lets_an_end_free_its_place() -> None:
    spans = [("0:00:01.00", "0:00:02.00"), ("0:00:02.00", "0:00:03.00")]
    assert caption_child.most_at_once(spans) == 1
    assert caption_child.most_at_once([*spans, ("0:00:01.50", "0:00:01.60")]) == 2
    assert caption_child.most_at_once([("0:00:01.00", "0:00:01.00")]) == 0
