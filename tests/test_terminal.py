"""How `enqueue --wait`, `status --wait` and the demo show a job on a terminal and in a log."""

from __future__ import annotations

import io

from worker.terminal import JobFollower


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
    assert lines[0].endswith("  0%  downloading: Downloading 3 file(s)")
    assert lines[1].endswith(" 45%  processing: Encoding")
    assert "  error: clips[1]: the URL returned 404" in lines


def test_a_row_without_a_message_shows_its_stage_alone():
    out = io.StringIO()
    JobFollower(out).update(row(status="pending", stage=None, message=None))
    assert out.getvalue().rstrip().endswith("  0%  pending")
