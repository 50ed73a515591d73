"""`video-worker demo`, exactly as the README runs it: embedded Postgres, local storage.

The demo's job is a composition (a transition, a still image, highlight captions;
a picture-in-picture and an animated title), so this test needs the composition in
the worker: on a worker without it the still fails the job.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from tests.test_embedded_lifetime import read_until, servers_on
from worker.cli.demo import (
    PIP,
    SAMPLES,
    STILL,
    STILL_SECONDS,
    TITLE,
    TRANSITION,
    demo_payload,
    make_samples,
)
from worker.media.probe.examine import probe
from worker.payload import TextOverlay, VideoOverlay, parse_payload
from worker.settings import Settings

DEMO_SECONDS = (
    sum(seconds for _, _, seconds in SAMPLES.values())
    + STILL_SECONDS
    - float(TRANSITION["duration"])
)


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
    assert "joined by compose" in out  # the still, the fade and the captions: the compose path
    assert "DATABASE_URL and storage settings are ignored" in out
    assert f"Database: embedded Postgres in {tmp_path / 'home' / 'pgdata'}" in out
    # a database of its own: a local worker on the same home never takes the demo's job
    assert "(database video_worker_demo, the demo's own)" in out
    video = Path(next(line for line in out.splitlines() if line.startswith("Video:")).split()[1])
    poster = Path(next(line for line in out.splitlines() if line.startswith("Poster:")).split()[1])
    assert video.is_relative_to(tmp_path) and poster.stat().st_size > 0
    info = probe(video, "demo output")
    assert (info.video.width, info.video.height, info.video.codec) == (640, 360, "h264")
    assert info.audio is not None and info.audio.codec == "aac"
    # the clips, plus the still, less the fade that overlaps the first clip and the still
    assert abs(info.duration - DEMO_SECONDS) < 0.2, info.duration
    assert "Traceback" not in err and "Warning" not in err
    # nothing held the worker's event loop a second (reading the fonts at the first job did)
    assert "event_loop_lag" not in out + err
    assert servers_on(tmp_path / "home" / "pgdata") == []


def test_the_demo_job_is_a_composition_of_generated_media(tmp_path: Path):
    """The parts the README promises (a transition, a still, highlight captions), as the
    worker's own parser reads them, on media the demo makes itself."""
    asyncio.run(make_samples(tmp_path))
    still = tmp_path / STILL[0]
    assert still.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    payload = parse_payload(demo_payload("http://127.0.0.1:8"), Settings())
    first, image, *rest = payload.clips
    assert first.transition is not None and first.transition.type == "fade"
    assert image.url.endswith(f"/{STILL[0]}") and image.duration == STILL_SECONDS
    assert image.motion == "zoom_in"
    assert [Path(c.url).name for c in (first, *rest)] == list(SAMPLES)
    assert payload.captions is not None and payload.captions.style == "highlight"
    words = payload.captions.words or ()
    assert len(words) > 5 and words[-1].end < DEMO_SECONDS
    # an animated title and a picture-in-picture of a clip the demo makes too
    title, pip = payload.overlays
    assert isinstance(title, TextOverlay) and title.text == TITLE and title.animation != "none"
    assert isinstance(pip, VideoOverlay) and pip.video.endswith(f"/{PIP[0]}")
    assert pip.loop and pip.radius > 0 and pip.end is not None and pip.end < DEMO_SECONDS
    assert probe(tmp_path / PIP[0], "overlays[1].video").video is not None
    # two scripts: Latin, and Japanese (which the worker's fonts draw, never as boxes)
    assert any(w.text.isascii() for w in words) and any(
        "\u3040" <= c <= "\u9fff" for w in words for c in w.text
    )
