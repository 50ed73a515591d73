"""How `enqueue --wait`, `status --wait` and the demo show a job on a terminal and in a log."""

from __future__ import annotations

import io

from worker.cli.terminal import JobFollower


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def row(**kw):
    base = {
        "id": "j1",
        "status": "processing",
        "progress": 0,
        "stage": "downloading",
        "message": "Downloading 3 file(s)",
        "attempts": 1,
        "max_attempts": 3,
    }
    return {**base, **kw}


def test_a_terminal_gets_one_redrawn_bar_with_stage_and_message():
    out = Tty()
    follower = JobFollower(out)
    follower.update(row())
    follower.update(row())  # unchanged: nothing redrawn
    follower.update(row(progress=45, stage="processing", message="Encoding"))
    during = out.getvalue()
    assert during.count("\r") == 2 and "\n" not in during  # one line, redrawn in place
    follower.done(
        row(
            status="completed",
            progress=100,
            stage="completed",
            message="Done",
            video_url="file:///v.mp4",
        )
    )
    text = out.getvalue()
    assert " 45%  processing: Encoding" in text and "█" * 13 in text
    assert "job j1: completed (attempt 1 of 3, progress 100%)" in text
    assert "video_url: file:///v.mp4" in text


def test_a_log_gets_plain_lines_without_control_characters():
    out = io.StringIO()
    follower = JobFollower(out)
    follower.update(row())
    follower.update(row(progress=45, stage="processing", message="Encoding"))
    follower.done(row(status="failed", progress=45, error="clips[1]: the URL returned 404"))
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0].endswith("  0%  downloading: Downloading 3 file(s)  [0:00]")
    assert lines[1].endswith(" 45%  processing: Encoding  [0:00]")  # time running here
    assert "  error: clips[1]: the URL returned 404" in lines


def test_a_row_without_a_message_shows_its_stage_alone():
    out = io.StringIO()
    JobFollower(out).update(row(status="pending", stage=None, message=None))
    assert out.getvalue().rstrip().endswith("  0%  pending")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_shows_elapsed_time_and_an_estimate_of_what_is_left():
    out, clock = io.StringIO(), Clock()
    follower = JobFollower(out, clock=clock)
    follower.update(row(progress=0))
    clock.now += 1
    follower.update(row(progress=2))  # too little progress for an estimate
    clock.now += 9
    follower.update(row(progress=25, stage="processing", message="Encoding"))
    clock.now += 65
    follower.update(row(progress=50, stage="processing", message="Encoding"))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("[0:00]") and lines[1].endswith("[0:01]")
    assert lines[2].endswith("[0:10, ~0:30 left]")  # 25% in 10 s: 30 s for the other 75%
    assert lines[3].endswith("[1:15, ~1:15 left]")
    follower.done(row(status="completed", progress=100, stage="completed", message="Done"))
    assert "left" not in out.getvalue().splitlines()[-1]


def test_a_terminal_redraws_the_clock_every_second_even_without_progress():
    out, clock = Tty(), Clock()
    follower = JobFollower(out, clock=clock)
    follower.update(row(progress=10))
    follower.update(row(progress=10))  # same second: nothing redrawn
    clock.now += 1
    follower.update(row(progress=10))
    assert out.getvalue().count("\r") == 2 and "[0:01]" in out.getvalue()


def test_a_pending_job_shows_no_clock():
    out = io.StringIO()
    JobFollower(out).update(row(status="pending", stage="queued", message=None))
    assert "[" not in out.getvalue()


def test_the_estimate_rounds_up_so_it_never_says_nothing_is_left_before_the_end():
    out, clock = io.StringIO(), Clock()
    follower = JobFollower(out, clock=clock)
    follower.update(row(progress=0))
    clock.now += 2.4
    follower.update(row(progress=84))
    assert out.getvalue().splitlines()[-1].endswith("[0:02, ~0:01 left]")
