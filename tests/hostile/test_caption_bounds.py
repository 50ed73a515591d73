"""Caption recipes from the second review: each once froze or flooded a replica, and each now ends
at attempt 1 naming its field (or completes, bounded), with the worker's event loop never 0.5 s
late and its process tree growing less than 250 MB (harness.py's `run_case` checks both), and
a good job completing after it.

- a caption file of many `<` and no `>` (the tag pattern backtracked, holding the GIL: 100 KB
  stalled the loop 8.8 s): the file is read in the caption child, in linear time, and a cue
  over 1,000 characters is refused;
- 20,000 words on screen at once (libass needed seconds per frame): at most 10,000 words, and
  one caption block on screen at a time however the words overlap;
- an SRT of backslashes in `highlight` (a 162 MB subtitle document built in the event loop): the
  document is written by the child and refused past its size limit (the recipe is now zero-width
  marks: cues are shown as authored, in blocks that fit the frame, so wide words no longer make
  long blocks).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.hostile.harness import (
    Expect,
    LoopbackServer,
    corpus_settings,
    run_case,
    stored_path,
)
from worker.media.picture.caption_render import CAPTION_CHILD

NO_PATHS = ("/tmp", "/root", "Traceback")


@pytest.fixture
async def served(good_clip: Path) -> AsyncIterator[LoopbackServer]:
    server = LoopbackServer({"/good.mp4": good_clip})
    async with server.serving():
        yield server


def _no_caption_child_left() -> None:
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            assert CAPTION_CHILD not in " ".join(child.cmdline()), (
                "a caption child outlived its job"
            )


async def _case(store: Any, tmp_path: Path, good_clip: Path, server: LoopbackServer,
                routes: dict[str, bytes], payload: dict[str, Any],
                expect: Expect) -> dict[str, Any]:  # fmt: skip
    server.routes.update(routes)
    payload = {"clips": [{"url": f"{server.base}/good.mp4"}], **payload}
    for key in ("srt_url", "vtt_url"):
        if key in payload.get("captions", {}):
            payload["captions"][key] = server.base + payload["captions"][key]
    settings = corpus_settings(tmp_path, allow_private_urls=True)
    row = await run_case(store, settings, good_clip, payload, expect)  # lag and memory too
    _no_caption_child_left()
    return row


def _vtt(cues: Iterator[str], seconds: float = 0.9) -> bytes:
    """A WebVTT file whose cues share out `seconds` of the clip."""
    texts = list(cues)
    step = seconds / len(texts)
    blocks = [f"{_t(n * step)} --> {_t((n + 1) * step)}\n{text}\n" for n, text in enumerate(texts)]
    return ("WEBVTT\n\n" + "\n".join(blocks)).encode()


def _srt(cues: list[str], seconds: float = 0.9) -> bytes:
    step = seconds / len(cues)
    blocks = [
        f"{n + 1}\n{_t(n * step, ',')} --> {_t((n + 1) * step, ',')}\n{text}\n"
        for n, text in enumerate(cues)
    ]
    return "\n".join(blocks).encode()


def _t(seconds: float, mark: str = ".") -> str:
    ms = round(seconds * 1000)
    return f"00:00:{ms // 1000:02d}{mark}{ms % 1000:03d}"


async def test_a_cue_of_100_kb_of_angle_brackets_is_refused_naming_the_file(
    store: Any, tmp_path: Path, good_clip: Path, served: LoopbackServer
) -> None:
    routes = {"/subs.vtt": _vtt(iter(["<" * 100_000]))}
    expect = Expect(error=("captions.vtt_url: the cue at line 3 has 100000 characters",
                           "at most 1000"), not_in_error=NO_PATHS)  # fmt: skip
    await _case(store, tmp_path, good_clip, served, routes,
                {"captions": {"vtt_url": "/subs.vtt"}}, expect)  # fmt: skip


async def test_many_cues_of_angle_brackets_are_read_in_the_child_and_shown_as_text(
    store: Any, tmp_path: Path, good_clip: Path, served: LoopbackServer
) -> None:
    """1,000 cues of 999 `<` (1 MB, the shape that backtracked): read, and the job completes."""
    routes = {"/subs.vtt": _vtt("<" * 999 for _ in range(1000))}
    expect = Expect(status="completed", attempts=1)
    await _case(store, tmp_path, good_clip, served, routes,
                {"captions": {"vtt_url": "/subs.vtt"}}, expect)  # fmt: skip


async def test_20000_words_at_once_are_refused_at_the_payload(
    store: Any, tmp_path: Path, good_clip: Path, served: LoopbackServer
) -> None:
    words = [{"word": "w", "start": 0, "end": 10}] * 20_000
    expect = Expect(error=("payload.captions.words: has 20000 words; at most 10000",))
    await _case(store, tmp_path, good_clip, served, {},
                {"captions": {"words": words, "max_words": 1}}, expect)  # fmt: skip


async def test_10000_words_at_once_show_one_caption_block_at_a_time(
    store: Any, tmp_path: Path, good_clip: Path, served: LoopbackServer
) -> None:
    words = [{"word": f"w{n}", "start": 0, "end": 10} for n in range(10_000)]
    captions = {"words": words, "max_words": 1, "vtt": True}
    row = await _case(store, tmp_path, good_clip, served, {}, {"captions": captions},
                      Expect(status="completed"))  # fmt: skip
    settings = corpus_settings(tmp_path)
    vtt = stored_path(settings, row["result"]["captions_path"]).read_text()
    assert vtt.count(" --> ") == 1, vtt[:500]


async def test_an_srt_of_zero_width_marks_in_highlight_is_refused_before_its_document_grows(
    store: Any, tmp_path: Path, good_clip: Path, served: LoopbackServer
) -> None:
    """500 cues of 20 words, each a letter and 47 zero-width marks (1.4 MB; a cue's 20 words
    fit one row, so its block is the whole cue): in `highlight`, each cue's text is written
    once per word, about 37 MB of document."""
    word = "a" + "\u20d0" * 47
    routes = {"/subs.srt": _srt([" ".join([word] * 20)] * 500)}
    captions = {"srt_url": "/subs.srt", "style": "highlight"}
    expect = Expect(error=("payload.captions: make a subtitle document over 16 MB",),
                    not_in_error=NO_PATHS)  # fmt: skip
    await _case(store, tmp_path, good_clip, served, routes, {"captions": captions}, expect)


async def test_a_2_mb_srt_of_backslash_words_is_refused_by_its_word_count(
    store: Any, tmp_path: Path, good_clip: Path, served: LoopbackServer
) -> None:
    routes = {"/subs.srt": _srt([" ".join(["\\"] * 400)] * 2300)}
    captions = {"srt_url": "/subs.srt", "style": "highlight"}
    expect = Expect(error=("captions.srt_url: has more than 10000 words",))
    await _case(store, tmp_path, good_clip, served, routes, {"captions": captions}, expect)
