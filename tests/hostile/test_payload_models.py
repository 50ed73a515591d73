"""Hostile payloads in the composition fields: each fails its row at once with the
field named, without fetching anything, and the worker then completes a good job.

The payload comes from an end user's browser, so these are what a user can write: sizes meant
to exhaust the worker (words, overlays, layers, text), strings aimed at FFmpeg's filter syntax
(a transition, a colour, a motion), and URLs aimed at files or other schemes. URLs are never
echoed in the error (a signed URL carries its token); a short enum or colour value is, JSON-quoted.
"""

from __future__ import annotations

import pytest

from tests.hostile.harness import Expect, corpus_settings, run_case
from worker.errors import PayloadError
from worker.payload import parse_payload
from worker.queue.postgres import PostgresJobStore
from worker.settings import Settings

CLIP = {"url": "https://example.com/a.mp4"}
WORD = {"word": "hi", "start": 0, "end": 0.5}

# (case id, payload, words the row's error must hold, words it must not)
CASES: list[tuple[str, object, tuple[str, ...], tuple[str, ...]]] = [
    ("transcript-10001-words", {"clips": [{**CLIP, "transcript": [WORD] * 10_001}]},
     ("payload.clips[0].transcript: ", "has 10001 words"), ()),
    ("caption-words-over-the-job", {"clips": [{**CLIP, "transcript": [WORD] * 6_000}] * 2},
     ("payload.clips[1].transcript: ", "at most 10000 are allowed in one job"), ()),
    ("fifty-one-overlays", {"clips": [CLIP], "overlays": [{"text": "x"}] * 51},
     ("payload.overlays: ", "has 51 overlays"), ()),
    ("twenty-one-video-overlays", {"clips": [CLIP], "overlays": [{"video": CLIP["url"]}] * 21},
     ("payload.overlays: ", "has 21 video overlays; at most 20 are allowed in one job"), ()),
    ("nine-audio-layers", {"clips": [{**CLIP, "audio": [{"url": CLIP["url"]}] * 9}]},
     ("payload.clips[0].audio: ", "has 9 audio layers"), ()),
    ("overlay-text-100k", {"clips": [CLIP], "overlays": [{"text": "A" * 100_000}]},
     ("payload.overlays[0].text: ", "at most 500 characters"), ("AAAA",)),
    ("overlay-image-file", {"clips": [CLIP], "overlays": [{"image": "file:///etc/passwd"}]},
     ("payload.overlays[0].image: ", "'file'"), ("passwd",)),
    ("srt-gopher", {"clips": [CLIP], "captions": {"srt_url": "gopher://127.0.0.1:6379/_x"}},
     ("payload.captions.srt_url: ",), ("6379",)),
    ("layer-storage-escape",
     {"clips": [{**CLIP, "audio": [{"url": "storage://../etc/passwd?token=s3cr3t"}]}]},
     ("payload.clips[0].audio[0].url: ",), ("s3cr3t", "passwd")),
    ("transition-custom-expr",
     {"clips": [{**CLIP, "transition": {"type": "custom", "duration": 1, "expr": "A"}}, CLIP]},
     ("payload.clips[0].transition.type: ", "xfade"), ()),
    ("transition-filter-injection",
     {"clips": [{**CLIP, "transition": {"type": "fade:offset=0,movie=/etc/passwd",
                                        "duration": 1}}, CLIP]},
     ("payload.clips[0].transition.type: ", "xfade"), ()),
    ("colour-filter-injection",
     {"clips": [CLIP], "captions": {"color": "#FFFFFF:drawtext=textfile=/etc/passwd"}},
     ("payload.captions.color: ", "#RRGGBB"), ()),
    ("motion-filter-injection", {"clips": [{**CLIP, "motion": "zoom_in;[0:v]null"}]},
     ("payload.clips[0].motion: ", '"zoom_in"'), ()),
    ("transition-on-last-clip",
     {"clips": [CLIP, {**CLIP, "transition": {"type": "fade", "duration": 1}}]},
     ("payload.clips[1].transition: ", "last clip"), ()),
    ("overlay-image-and-text",
     {"clips": [CLIP], "overlays": [{"image": CLIP["url"], "text": "x"}]},
     ("payload.overlays[0]: ", "not both"), ()),
    # 1e308 seconds once overflowed in planning: retried as unexpected, every input fetched again
    ("image-duration-1e308", {"clips": [{**CLIP, "duration": 1e308}]},
     ("payload.clips[0].duration: ", "at most 1800 seconds (MAX_OUTPUT_SECONDS)"), ()),
    ("transition-1e308",
     {"clips": [{**CLIP, "transition": {"type": "fade", "duration": 1e308}}, CLIP]},
     ("payload.clips[0].transition.duration: ", "at most 1800 seconds"), ()),
    ("layer-fade-in-1e308",
     {"clips": [{**CLIP, "audio": [{"url": CLIP["url"], "fade_in": 1e308}]}]},
     ("payload.clips[0].audio[0].fade_in: ", "at most 1800 seconds"), ()),
    ("word-end-1e308",
     {"clips": [{**CLIP, "transcript": [WORD, {"word": "w", "start": 0, "end": 1e308}]}]},
     ("payload.clips[0].transcript[1].end: ", "at most 1800 seconds"), ()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "words", "absent"),
    [(p, w, a) for _, p, w, a in CASES],
    ids=[case for case, _, _, _ in CASES],
)
def test_a_hostile_composition_field_is_refused_by_the_parser(payload, words, absent):
    """Every case where it is decided: parse_payload, in the job, before anything is fetched."""
    with pytest.raises(PayloadError) as refused:
        parse_payload(payload, Settings())
    error = str(refused.value)
    assert "\n" not in error
    for word in words:
        assert word in error, error
    for word in absent:
        assert word not in error, error


# One case of each kind through a real worker: the row fails at attempt 1 naming the field, the
# worker's loop and memory stay bounded (harness.py), and a good job completes after it.
END_TO_END = ("transcript-10001-words", "overlay-image-file", "transition-filter-injection",
              "transition-1e308")  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("payload", "words", "absent"),
    [(p, w, a) for case, p, w, a in CASES if case in END_TO_END],
    ids=[case for case, _, _, _ in CASES if case in END_TO_END],
)
async def test_a_hostile_composition_field_fails_its_row_at_once(
    store, tmp_path, good_clip, payload, words, absent
):
    # room for the 10,001-word transcript case: the word limit, not MAX_PAYLOAD_BYTES, is what
    # that case is about (tests/hostile/test_claim.py has the size limit's own cases)
    room = 4 * 1024**2
    settings = corpus_settings(tmp_path, max_payload_bytes=room)
    roomy = PostgresJobStore(store.pool, max_payload_bytes=room)
    row = await run_case(
        roomy, settings, good_clip, payload, Expect(error=words, not_in_error=absent)
    )
    assert "\n" not in row["error"]
