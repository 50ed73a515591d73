"""`video-worker demo`, exactly as the README runs it: embedded Postgres, local storage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from tests.test_embedded_lifetime import read_until, servers_on
from worker.media.probe import probe


def test_the_demo_makes_a_video_and_a_poster_and_keeps_the_dashboard_up_until_enter():
    # outside pytest's basetemp, which a concurrent session may close to other users
    # (postgres runs as another user when the tests run as root)
    with tempfile.TemporaryDirectory(prefix="vw-demo-") as tmp:
        run_demo(Path(tmp))


def run_demo(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "STORAGE_BACKEND", "S3_BUCKET", "SUPABASE_URL"}
    }
    env.update(
        VIDEO_WORKER_HOME=str(tmp_path / "home"),
        PORT="0",
        # a real queue must never receive demo jobs: the demo ignores this
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/production",
        STORAGE_BACKEND="s3",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "demo", "--keep"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out = read_until(proc, "stdout", "press Enter")
        dashboard = re.search(r"Dashboard still at (\S+);", out)
        assert dashboard, out
        with urllib.request.urlopen(dashboard.group(1), timeout=10) as page:
            assert page.status == 200  # the URL the demo printed still answers
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    out += rest
    assert proc.returncode == 0, out + err
    assert "dashboard at http://127.0.0.1:" in out and "100%  completed" in out
    assert "DATABASE_URL and storage settings are ignored" in out
    assert f"Database: embedded Postgres in {tmp_path / 'home' / 'pgdata'}" in out
    video = Path(next(line for line in out.splitlines() if line.startswith("Video:")).split()[1])
    poster = Path(next(line for line in out.splitlines() if line.startswith("Poster:")).split()[1])
    assert video.is_relative_to(tmp_path) and poster.stat().st_size > 0
    info = probe(video, "demo output")
    assert (info.video.width, info.video.height, info.video.codec) == (640, 360, "h264")
    assert info.audio is not None and info.audio.codec == "aac"
    assert abs(info.duration - 8.0) < 0.2
    assert "Traceback" not in err and "Warning" not in err
    assert servers_on(tmp_path / "home" / "pgdata") == []
