"""`video-worker demo`, exactly as the README runs it: embedded Postgres, local storage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from worker.media.probe import probe


def test_the_demo_makes_a_video_and_a_poster(tmp_path: Path):
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
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "dashboard at http://127.0.0.1:" in out and "100%  completed" in out
    assert "DATABASE_URL and storage settings are ignored" in out
    video = Path(next(line for line in out.splitlines() if line.startswith("Video:")).split()[1])
    poster = Path(next(line for line in out.splitlines() if line.startswith("Poster:")).split()[1])
    assert video.is_relative_to(tmp_path) and poster.stat().st_size > 0
    info = probe(video, "demo output")
    assert (info.video.width, info.video.height, info.video.codec) == (640, 360, "h264")
    assert info.audio is not None and info.audio.codec == "aac"
    assert abs(info.duration - 8.0) < 0.2
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr
