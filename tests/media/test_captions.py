"""Captions: transcripts of every shape into timed words, words into lines, lines into ASS that
the bundled FFmpeg's libass burns with the bundled font, measured on the rendered pixels.

The caption file readers and the document writers run only in the confined caption child
(`child_only`); these tests call them directly, as the child does, inside `confined_here`.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from worker.errors import InputError, PayloadError
from worker.media.confine import confined_here
from worker.media.ffmpeg import ffmpeg_exe
from worker.media.picture.caption_layout import break_rows, estimate_width, join_words, row_text
from worker.media.picture.captions import (
    FONT_DIR,
    CaptionStyle,
    Line,
    Word,
    ass_document,
    ass_text,
    cue_lines,
    cues_from_srt,
    group_lines,
    lay_out,
    one_at_a_time,
    place,
    vtt_document,
    words_from_srt,
    words_from_transcript,
    words_from_vtt,
)
from worker.media.picture.fonts import ffmpeg_env, installed

W, H = 320, 180


@pytest.fixture(autouse=True)
def as_the_caption_child():
    with confined_here():
        yield


# ---- transcripts -----------------------------------------------------------------------------


def test_every_transcript_shape_gives_the_same_words():
    expected = [Word("Hello", 0.2, 0.5), Word("world", 0.6, 1.0)]
    openai = {
        "text": "Hello world",
        "words": [
            {"word": "Hello", "start": 0.2, "end": 0.5},
            {"word": "world", "start": 0.6, "end": 1.0},
        ],
    }
    whisper_segments = {
        "segments": [
            {"text": "Hello", "words": [{"word": " Hello", "start": 0.2, "end": 0.5}]},
            {"text": "world", "words": [{"word": " world", "start": 0.6, "end": 1.0}]},
        ]
    }
    elevenlabs = {
        "language_code": "en",
        "words": [
            {"text": "Hello", "start": 0.2, "end": 0.5, "type": "word"},
            {"text": " ", "start": 0.5, "end": 0.6, "type": "spacing"},
            {"text": "world", "start": 0.6, "end": 1.0, "type": "word"},
        ],
    }
    bare = [{"word": "Hello", "start": 0.2, "end": 0.5}, {"text": "world", "start": 0.6, "end": 1}]
    for transcript in (openai, whisper_segments, elevenlabs, bare):
        assert words_from_transcript(transcript, "t", max_words=10) == expected  # fmt: skip


@pytest.mark.parametrize(
    ("transcript", "error"),
    [
        ("hello", "payload.clips[0].transcript: must be a transcript object"),
        ({"words": "hello"}, "payload.clips[0].transcript.words: must be a list"),
        ({"text": "hi"}, 'payload.clips[0].transcript: needs "words"'),
        ({"words": [{"word": "a", "start": 0, "end": 1}, {"start": 0, "end": 1}]},
         "payload.clips[0].transcript.words[1].word: is required"),
        ({"words": [{"word": "a", "start": "0", "end": 1}]},
         "payload.clips[0].transcript.words[0].start: must be a number of seconds"),
        ({"words": [{"word": "a", "start": -1, "end": 1}]},
         "payload.clips[0].transcript.words[0].start: must be a finite number"),
        ({"words": [{"word": "a", "start": 2, "end": 1}]},
         "payload.clips[0].transcript.words[0].end: must not be before start"),
        ({"segments": [{"words": None}]},
         "payload.clips[0].transcript.segments[0].words: must be a list"),
        ({"words": [{"word": "a", "start": 0, "end": 1}] * 11},
         "payload.clips[0].transcript.words: has 11 words; at most 10"),
    ],
)  # fmt: skip
def test_a_bad_transcript_names_the_entry(transcript, error):
    with pytest.raises(PayloadError) as caught:
        words_from_transcript(transcript, "payload.clips[0].transcript", max_words=10)
    assert str(caught.value).startswith(error), str(caught.value)


def test_srt_and_vtt_share_each_cue_over_its_words():
    srt = (
        "1\r\n00:00:01,000 --> 00:00:02,000\r\nab cd\r\n\r\n"
        "2\r\n00:00:03,000 --> 00:00:04,000\r\nx\r\n"
    )
    vtt = (
        "WEBVTT\n\nNOTE a comment\nspanning lines\n\n"
        "intro\n00:01.000 --> 00:02.000 align:start\n<v Ann>ab</v> &amp;d\n\n"
        "00:00:03.000 --> 00:00:04.000\nx\n"
    )
    assert words_from_srt(srt, "captions.srt_url", max_seconds=1800) == [
        Word("ab", 1.0, 1.5),
        Word("cd", 1.5, 2.0),
        Word("x", 3.0, 4.0),
    ]
    assert words_from_vtt(vtt, "captions.vtt_url", max_seconds=1800) == [
        Word("ab", 1.0, 1.5),
        Word("&d", 1.5, 2.0),
        Word("x", 3.0, 4.0),
    ]


def test_a_broken_srt_names_its_line():
    srt = "1\n00:00:01,000 --> 00:00:02,000\nfine\n\n2\n00:00:03 --> 00:00:04\nbroken\n"
    with pytest.raises(InputError) as caught:
        words_from_srt(srt, "captions.srt_url", max_seconds=1800)
    assert str(caught.value).startswith("captions.srt_url: line 6 is not a valid SRT time range")
    with pytest.raises(InputError, match=r"captions\.vtt_url: line 1 must start with"):
        words_from_vtt("1\n00:01.000 --> 00:02.000\nhi\n", "captions.vtt_url", max_seconds=1800)


def test_a_clips_transcript_follows_its_trim_onto_the_output_timeline():
    words = [Word("cut", 0.2, 0.8), Word("edge", 0.9, 1.3), Word("kept", 1.5, 2.0),
             Word("late", 3.5, 4.0)]  # fmt: skip
    # the clip plays its source from 1.0 to 3.0 s, starting 10 s into the output
    assert place(words, source_start=1.0, source_end=3.0, offset=10.0) == [
        Word("edge", 10.0, 10.3),
        Word("kept", 10.5, 11.0),
    ]


def test_lines_break_at_max_words_a_pause_and_a_sentence_end():
    words = [Word(t, s, s + 0.3) for t, s in
             [("one", 0), ("two", 0.4), ("three", 0.8), ("four.", 1.2), ("five", 1.6),
              ("six", 4.0)]]  # fmt: skip
    lines = group_lines(words, max_words=3)
    assert [line.text for line in lines] == ["one two three", "four.", "five", "six"]
    # a line stays a little after its last word, never into the next one
    assert lines[0].end == pytest.approx(1.2) and lines[2].end == pytest.approx(2.3)


def test_user_text_can_never_become_an_ass_tag_or_a_line_break():
    escaped = ass_text("{\\b1}bold\\Nnext\nline\\h")
    assert "{" not in escaped.replace("\\{", "") and "}" not in escaped.replace("\\}", "")
    assert "\\N" not in escaped and "\\h" not in escaped and "\n" not in escaped
    assert "\\b1" not in escaped


def test_webvtt_sidecar_escapes_html():
    line = Line((Word("<b>&", 0.0, 1.0),), 0.0, 1.5)
    assert vtt_document([line]) == "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n&lt;b&gt;&amp;\n"


# ---- rendered by libass ----------------------------------------------------------------------

WHITE = (255, 255, 255)
YELLOW = "#FFD400"


def render(tmp_path: Path, lines: list[Line], at: float, *, frame: tuple[int, int] = (W, H),
           **style: object) -> bytes:  # fmt: skip
    """The frame at `at` seconds of a black video (W x H unless `frame`) with the captions
    burned in (RGB; drawn on RGB, so no chroma subsampling blurs colour into the ink mask)."""
    width, height = frame
    ass = tmp_path / "c.ass"
    document = ass_document(lines, CaptionStyle(**style), width, height)  # type: ignore[arg-type]
    ass.write_text(document, encoding="utf-8")
    args = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
            f"color=black:s={width}x{height}:r=25:d=3", "-vf",
            f"format=rgb24,ass=filename={ass}", "-ss", str(at),
            "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]  # fmt: skip
    picture = subprocess.run(args, capture_output=True, check=True, timeout=60,
                             env=worker_fonts(tmp_path)).stdout  # fmt: skip
    assert len(picture) == width * height * 3
    return picture


def pixels(frame: bytes, test, width: int = W) -> list[tuple[int, int]]:
    found = []
    for i in range(0, len(frame), 3):
        if test(frame[i], frame[i + 1], frame[i + 2]):
            found.append(((i // 3) % width, (i // 3) // width))
    return found


def is_ink(r: int, g: int, b: int) -> bool:
    """Text of either colour (or its outline's lighter edge) on the black frame."""
    return max(r, g, b) > 60


def is_yellow(r: int, g: int, b: int) -> bool:
    return r > 200 and 150 < g < 240 and b < 90


def is_white(r: int, g: int, b: int) -> bool:
    return r > 200 and g > 200 and b > 200


def box(points: list[tuple[int, int]]) -> tuple[int, int, int, int]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def one_line(*words: tuple[str, float, float]) -> list[Line]:
    return group_lines([Word(*w) for w in words], max_words=8)


def test_highlight_colours_the_word_being_spoken_and_nothing_before(tmp_path):
    lines = one_line(("WWWW", 0.5, 1.2), ("MMMM", 1.3, 2.0))
    style = {"style": "highlight", "highlight_color": YELLOW, "size": 0.2}
    before = render(tmp_path, lines, 0.2, **style)
    assert pixels(before, lambda r, g, b: r + g + b > 150) == []
    first = pixels(render(tmp_path, lines, 0.8, **style), is_yellow)
    second = pixels(render(tmp_path, lines, 1.6, **style), is_yellow)
    assert first and second
    assert max(x for x, _ in first) < W // 2 < min(x for x, _ in second)
    # the word not being spoken is drawn, in white
    assert any(x > W // 2 for x, _ in pixels(render(tmp_path, lines, 0.8, **style), is_white))


def test_karaoke_fills_the_line_as_it_is_spoken(tmp_path):
    lines = one_line(("WWWW", 0.5, 1.2), ("MMMM", 1.3, 2.0))
    frame = render(tmp_path, lines, 1.0, style="karaoke", highlight_color=YELLOW, size=0.2)
    filled, unfilled = pixels(frame, is_yellow), pixels(frame, is_white)
    assert filled and unfilled
    assert min(x for x, _ in filled) < min(x for x, _ in unfilled)  # filled from the left


def test_tags_and_line_breaks_in_the_text_are_drawn_literally(tmp_path):
    plain = box(pixels(render(tmp_path, one_line(("X", 0, 2)), 1.0, size=0.15), is_white))
    tagged = box(pixels(render(tmp_path, one_line(("{\\b1}X", 0, 2)), 1.0, size=0.15), is_white))
    broken = box(pixels(render(tmp_path, one_line(("A\\NB", 0, 2)), 1.0, size=0.15), is_white))
    together = box(pixels(render(tmp_path, one_line(("AB", 0, 2)), 1.0, size=0.15), is_white))
    # `{\b1}` is five more characters on the line, not a bold tag
    assert tagged[2] - tagged[0] > 3 * (plain[2] - plain[0])
    # `\N` is two characters, not a second line: one line's height (the backslash reaches a
    # little above and below the letters; a second line would double it), and wider than "AB"
    assert broken[3] - broken[1] < (together[3] - together[1]) * 1.6
    assert broken[2] - broken[0] > together[2] - together[0]


def test_accented_latin_renders_with_the_bundled_font(tmp_path):
    plain = box(pixels(render(tmp_path, one_line(("e", 0, 2)), 1.0, size=0.3), is_white))
    accented = box(pixels(render(tmp_path, one_line(("é", 0, 2)), 1.0, size=0.3), is_white))
    assert accented[1] < plain[1] - 3  # the accent rises above the x-height
    assert abs(accented[3] - plain[3]) <= 1  # on the same baseline


def worker_fonts(folder: Path) -> dict[str, str]:
    """FFmpeg's environment as the worker gives it: fontconfig reads only the worker's fonts."""
    return ffmpeg_env(installed().write_config(folder))


def test_the_style_font_is_the_one_libass_uses(tmp_path):
    ass = tmp_path / "c.ass"
    ass.write_text(ass_document(one_line(("Hi", 0, 1)), CaptionStyle(), W, H), encoding="utf-8")
    args = [ffmpeg_exe(), "-v", "verbose", "-f", "lavfi", "-i", f"color=black:s={W}x{H}:d=1",
            "-vf", f"ass=filename={ass}", "-frames:v", "1", "-f", "null", "-"]  # fmt: skip
    log = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60,
                         env=worker_fonts(tmp_path)).stderr  # fmt: skip
    assert "fontselect: (Noto Sans, 700, 0) -> " in log, log[-2000:]
    assert "NotoSans-Bold" in log.split("fontselect: (Noto Sans, 700, 0) -> ", 1)[1].split("\n")[0]
    assert (FONT_DIR / "SourceSansPro-LICENSE.txt").read_text().count("SIL OPEN FONT LICENSE") >= 1


# ---- reading order, rows, placement, pop and word_box ------------------------------------------

HEBREW = ("שלום", "עולם", "יפה")  # three Hebrew words, right to left
RTL_W = 640


def hebrew_font() -> None:
    """The worker's own fonts (what `render` gives libass) cover Hebrew: the Noto families it
    installs with pip, so no font of the test machine's is needed."""
    assert installed().first_uncovered("".join(HEBREW)) is None


def test_a_right_to_left_line_keeps_every_glyph_in_place_as_the_highlight_moves(tmp_path):
    hebrew_font()
    lines = one_line(*((word, 0.5 + n, 1.3 + n) for n, word in enumerate(HEBREW)))
    frames = [render(tmp_path, lines, at, frame=(RTL_W, H), style="highlight", outline=False,
                     highlight_color=YELLOW) for at in (0.8, 1.8)]  # fmt: skip
    inks = [pixels(frame, is_ink, RTL_W) for frame in frames]
    lit = [pixels(frame, is_yellow, RTL_W) for frame in frames]
    assert inks[0] == inks[1]  # not one pixel of text moved
    assert lit[0] and lit[1] and lit[0] != lit[1]  # only the colours did
    # the first word is the rightmost: read right to left
    assert min(x for x, _ in lit[0]) > max(x for x, _ in lit[1])


def test_karaoke_pop_and_word_box_keep_a_right_to_left_line_in_place(tmp_path):
    hebrew_font()
    lines = one_line(*((word, 0.5 + n, 1.3 + n) for n, word in enumerate(HEBREW)))
    for style in ("karaoke", "word_box", "pop"):
        # pop: after the word has grown and shrunk back (220 ms)
        inks = [pixels(render(tmp_path, lines, at, frame=(RTL_W, H), style=style, outline=False,
                              highlight_color=YELLOW), is_white, RTL_W)
                for at in (0.9, 1.9)]  # fmt: skip
        static = pixels(render(tmp_path, lines, 0.9, frame=(RTL_W, H), outline=False), is_white,
                        RTL_W)  # fmt: skip
        assert inks[0] and inks[1], style
        # every white pixel in either state is where the static line has text
        assert set(inks[0]) | set(inks[1]) <= set(_dilate(static)), style


def _dilate(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(x + dx, y + dy) for x, y in points for dx in (-1, 0, 1) for dy in (-1, 0, 1)]


def test_a_latin_line_keeps_its_ink_as_the_highlight_moves(tmp_path):
    lines = one_line(("Wave", 0.5, 1.2), ("at", 1.3, 1.6), ("me", 1.7, 2.0))
    frames = [render(tmp_path, lines, at, style="highlight", highlight_color=YELLOW, size=0.15)
              for at in (0.8, 1.8)]  # fmt: skip
    assert pixels(frames[0], is_ink) == pixels(frames[1], is_ink)
    assert pixels(frames[0], is_yellow) != pixels(frames[1], is_yellow)


def test_two_strings_of_one_script_render_differently(tmp_path):
    hebrew_font()
    for one, other in (("שלום", "עולם"), ("Wave", "Mode")):
        a, b = (pixels(render(tmp_path, one_line((t, 0, 2)), 1.0, frame=(RTL_W, H)), is_ink, RTL_W)
                for t in (one, other))  # fmt: skip
        assert a and b and a != b


def test_pop_grows_the_spoken_word_around_its_centre_and_moves_nothing_else(tmp_path):
    lines = one_line(("Wave", 0.5, 1.2), ("at", 1.3, 1.6), ("me", 1.7, 2.0))
    style = {"style": "pop", "highlight_color": YELLOW, "size": 0.15, "outline": False}
    grown = box(pixels(render(tmp_path, lines, 1.38, **style), is_yellow))  # 80 ms in
    rest = box(pixels(render(tmp_path, lines, 1.55, **style), is_yellow))  # back to its size
    assert grown[2] - grown[0] > (rest[2] - rest[0]) * 1.08
    assert abs((grown[0] + grown[2]) - (rest[0] + rest[2])) <= 3  # the same centre
    white = [pixels(render(tmp_path, lines, at, **style), is_white) for at in (1.38, 1.55)]
    left, right = rest[0] - 8, rest[2] + 8  # around the popped word
    assert [p for p in white[0] if not left <= p[0] <= right] == [
        p for p in white[1] if not left <= p[0] <= right
    ]


def test_word_box_puts_the_spoken_word_on_a_box_of_the_highlight_colour(tmp_path):
    lines = one_line(("Wave", 0.5, 1.2), ("at", 1.3, 1.6), ("me", 1.7, 2.0))
    style = {"style": "word_box", "highlight_color": YELLOW, "size": 0.15}
    first = box(pixels(render(tmp_path, lines, 0.8, **style), is_yellow))
    second = box(pixels(render(tmp_path, lines, 1.4, **style), is_yellow))
    text = box(pixels(render(tmp_path, lines, 0.8, **style), is_white))
    assert first[2] < second[0]  # the box moved on to the next word
    assert first[0] <= text[0] + 6 and first[1] < text[1]  # it sits behind "Wave", around it
    assert second[2] < text[2]


def test_portrait_captions_sit_clear_of_the_apps_buttons(tmp_path):
    lines = one_line(("Clear", 0, 2), ("of", 0, 2), ("buttons", 0, 2))
    frame = render(tmp_path, lines, 1.0, frame=(1080, 1920))
    ink = box(pixels(frame, is_ink, 1080))
    assert 1920 * 0.78 < ink[3] < 1920 * 0.83  # its bottom 18% above the frame's
    header = ass_document(lines, CaptionStyle(), 1080, 1920)
    assert ",2,54,54,346,-1" in header  # MarginV 0.18 x 1920
    assert ",2,64,64,43,-1" in ass_document(lines, CaptionStyle(), 1280, 720)  # 0.06 x 720
    assert ",2,64,64,144,-1" in ass_document(lines, CaptionStyle(margin=0.2), 1280, 720)
    assert "Style: Caption,Noto Sans,86," in header  # default size 0.045 x 1920
    assert "Style: Caption,Noto Sans,54," in ass_document(lines, CaptionStyle(), 1280, 720)


# ---- rows --------------------------------------------------------------------------------------


def rows(texts: list[str], max_width: float) -> list[list[str]]:
    return [[row_text(r) for r in block] for block in break_rows(texts, max_width, estimate_width)]


def test_a_block_has_at_most_two_balanced_rows_without_a_lone_last_word():
    words = "one two three four five six seven eight".split()
    blocks = rows(words, 12.0)
    assert all(len(block) <= 2 for block in blocks)
    assert all(estimate_width(r) <= 12.0 for block in blocks for r in block)
    first = blocks[0]
    assert abs(estimate_width(first[0]) - estimate_width(first[1])) < 4
    # one row too many for one row: two even rows, not a full row and a lone word
    assert rows("a caption line that nearly fits".split(), 12.0) == [
        ["a caption line", "that nearly fits"]
    ]
    assert rows(["short", "line"], 12.0) == [["short line"]]
    # more than two rows' worth: consecutive blocks of two rows, the words in order
    long = rows([f"word{n}" for n in range(30)], 12.0)
    assert len(long) > 1 and " ".join(" ".join(b) for b in long).split() == [
        f"word{n}" for n in range(30)
    ]


def test_scripts_without_spaces_join_without_spaces_and_break_between_characters():
    tokens = ["今日", "は", "いい", "天気", "です", "ね", "。"]  # Whisper's Japanese tokens
    assert join_words(tokens) == "今日はいい天気ですね。"
    assert Line(tuple(Word(t, 0, 1) for t in tokens), 0, 1).text == "今日はいい天気ですね。"
    # one "word" of a cue, 20 characters, in rows of about 5: broken between characters
    sentence = "今日はいい天気ですね。明日も晴れるでしょう。"
    blocks = rows([sentence], 5.0)
    flat = [r for block in blocks for r in block]
    assert "".join(flat) == sentence and len(flat) > 2 and " " not in "".join(flat)
    assert not any(r.startswith(("。", "、")) for r in flat)  # never a row starting with 。
    assert join_words(["Hello", "world"]) == "Hello world"
    assert join_words(["東京", "Tokyo"]) == "東京 Tokyo"


def test_a_cue_is_shown_during_its_own_time_in_parts_that_fit(tmp_path):
    srt = (
        "1\n00:00:01,000 --> 00:00:03,000\nA first cue of several words that will need "
        "more than two rows at this size to be read\n\n"
        "2\n00:00:02,500 --> 00:00:04,000\nA second cue that starts early\n\n"
        "3\n00:00:05,000 --> 00:00:06,000\nThird\n"
    )
    cues = cues_from_srt(srt, "captions.srt_url", max_seconds=1800)
    blocks = lay_out(one_at_a_time(cue_lines(cues)), CaptionStyle(size=0.15), W, H)
    vtt = vtt_document(blocks)
    shown = [(b.start, b.end, b.row_texts()) for b in blocks]
    assert all(len(rows) <= 2 for _, _, rows in shown)
    for (_, end, _), (next_start, _, _) in itertools.pairwise(shown):
        assert end <= next_start  # one block at a time
    for start, end, texts in shown:  # each within one cue's time, its words from that cue
        cue = next(c for c in cues if " ".join(texts) in c.text)
        assert cue.start <= start < end <= cue.end
    assert shown[0][0] == 1.0 and max(e for s, e, t in shown if "first" not in " ".join(t)) > 2
    assert vtt.count(" --> ") == len(blocks) and "\n00:00:05.000 --> 00:00:06.000\nThird\n" in vtt
