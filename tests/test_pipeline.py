"""Whole jobs through the queue: real Postgres, real HTTP downloads from a local server, real
FFmpeg on generated media, real local storage; the happy path and every way a job should fail."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from aiohttp import web

from tests.media.checks import decode_mono, tone_level_db
from tests.media.conftest import Media, ffmpeg
from tests.queue.helpers import fast_settings, running, status_is, wait_for
from worker.fetch import FetchPolicy
from worker.media.probe.examine import probe
from worker.pipeline import Pipeline, handle_job
from worker.storage import make_storage

FAST_FETCH = FetchPolicy(attempts=1, connect_timeout=2, read_timeout=5)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Media:
    return Media(tmp_path_factory.mktemp("pipeline-media"))


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """Long enough at 1280x720 that an encode is still running when the test cancels it."""
    out = tmp_path_factory.mktemp("long") / "long.mp4"
    ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30:duration=40",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=40",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
        out,
    )
    return out


@contextlib.asynccontextmanager
async def file_server(files: dict[str, Path | int | bytes]):
    """Serves each path as a file, raw bytes, or a bare HTTP status."""

    async def handle(request: web.Request) -> web.StreamResponse:
        item = files.get(request.path)
        if item is None:
            return web.Response(status=404)
        if isinstance(item, int):
            return web.Response(status=item)
        if isinstance(item, bytes):
            return web.Response(body=item, content_type="text/html")
        return web.FileResponse(item)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def settings_for(tmp_path: Path, **overrides):
    return {
        "home": tmp_path / "home",
        "allow_private_urls": True,
        "storage_backend": "local",
        **overrides,
    }


@contextlib.asynccontextmanager
async def worker(store, tmp_path: Path, **overrides):
    opts = settings_for(tmp_path, **overrides)
    settings = fast_settings(**opts)
    pipeline = Pipeline(settings, make_storage(settings), fetch_policy=FAST_FETCH)
    async with running(store, pipeline, **opts) as runner:
        yield runner, settings


def stored(settings, key: str) -> Path:
    return settings.home / "storage" / settings.storage_bucket / key


async def test_a_job_becomes_a_streamable_mp4_with_a_poster(store, tmp_path, media):
    files = {
        "/a.mp4": media.path("h264_30"),
        "/b.mp4": media.path("odd"),
        "/c.mp4": media.path("h264_30_silent"),
        "/music.m4a": media.path("music"),
    }
    async with file_server(files) as base:
        job_id, _ = await store.enqueue(
            {
                "clips": [
                    {"url": f"{base}/a.mp4"},
                    {"url": f"{base}/b.mp4"},
                    {"url": f"{base}/c.mp4", "start": 0.5, "fade_inn": 1},
                ],
                "audio": {"url": f"{base}/music.m4a", "volume": 0.5, "duck": True},
                "output": {"width": 320, "height": 240, "path": "user-1/final.mp4"},
                "outptu": {"fps": 30},
            }
        )
        async with worker(store, tmp_path) as (_, settings):
            row = await status_is(store, job_id, "completed", "failed", timeout=120)
    assert row["status"] == "completed", row["error"]
    result = row["result"]
    for key in (
        "storage_path",
        "bytes",
        "duration",
        "width",
        "height",
        "fps",
        "video_codec",
        "audio_codec",
        "join",
        "timings",
        "warnings",
    ):
        assert key in result
    assert result["warnings"] == [
        "outptu: unknown key, ignored",
        "clips[2].fade_inn: unknown key, ignored",
    ]
    assert result["storage_path"] == "user-1/final.mp4" and result["join"] == "reencode"
    assert (result["width"], result["height"], result["video_codec"], result["audio_codec"]) == (
        320,
        240,
        "h264",
        "aac",
    )
    assert result["duration"] == pytest.approx(1 + 1 + 1.5, abs=0.1)
    video = stored(settings, "user-1/final.mp4")
    assert row["video_url"] == video.as_uri() and video.stat().st_size == result["bytes"]
    info = probe(video, "output")
    assert info.video.pix_fmt == "yuv420p" and info.audio.sample_rate == 48000
    assert row["thumbnail_url"] and stored(settings, "user-1/final.jpg").stat().st_size > 0
    assert list((settings.home / "tmp").iterdir()) == []  # the temp folder is gone


async def test_matching_clips_are_joined_by_stream_copy(store, tmp_path, media):
    files = {"/a.mp4": media.path("h264_30"), "/b.mp4": media.path("h264_30")}
    async with file_server(files) as base:
        job_id, _ = await store.enqueue(
            {"clips": [{"url": f"{base}/a.mp4"}, {"url": f"{base}/b.mp4"}]}
        )
        async with worker(store, tmp_path):
            row = await status_is(store, job_id, "completed", "failed", timeout=60)
    assert row["status"] == "completed", row["error"]
    assert row["result"]["join"] == "copy"
    assert row["result"]["storage_path"] == f"anonymous/{job_id}.mp4"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"clips": []}, "payload.clips: "),
        ({"clips": [{"url": "ftp://x/a.mp4"}]}, "payload.clips[0].url: "),
        ("not an object", "payload: "),
    ],
)
async def test_an_invalid_payload_fails_at_once_naming_the_field(store, tmp_path, payload, error):
    job_id, _ = await store.enqueue(payload)
    async with worker(store, tmp_path) as (runner, _):
        row = await status_is(store, job_id, "failed")
        assert runner.draining is False
    assert row["attempts"] == 1 and row["error"].startswith(error), row["error"]


async def test_bad_inputs_fail_naming_the_input(store, tmp_path, media):
    files = {
        "/ok.mp4": media.path("h264_30"),
        "/page.mp4": b"<!doctype html><html>hi</html>",
        "/gone.mp4": 404,
    }
    async with file_server(files) as base:
        missing, _ = await store.enqueue(
            {"clips": [{"url": f"{base}/ok.mp4"}, {"url": f"{base}/gone.mp4"}]}
        )
        html, _ = await store.enqueue({"clips": [{"url": f"{base}/page.mp4"}]})
        async with worker(store, tmp_path, concurrency=2):
            row_missing = await status_is(store, missing, "failed", timeout=60)
            row_html = await status_is(store, html, "failed", timeout=60)
    assert row_missing["error"].startswith("clips[1]: ") and "404" in row_missing["error"]
    assert row_html["error"].startswith("clips[0]: ")
    assert row_missing["attempts"] == row_html["attempts"] == 1


async def test_a_server_error_is_retried_later(store, tmp_path):
    async with file_server({"/a.mp4": 503}) as base:
        job_id, _ = await store.enqueue({"clips": [{"url": f"{base}/a.mp4"}]}, max_attempts=2)
        async with worker(store, tmp_path):
            row = await status_is(store, job_id, "failed", timeout=60)
    assert row["attempts"] == 2 and "503" in row["error"]
    assert len(row["errors"]) == 2


async def test_private_addresses_are_refused_unless_allowed(store, tmp_path, media):
    async with file_server({"/a.mp4": media.path("h264_30")}) as base:
        job_id, _ = await store.enqueue({"clips": [{"url": f"{base}/a.mp4"}]})
        async with worker(store, tmp_path, allow_private_urls=False):
            row = await status_is(store, job_id, "failed", timeout=30)
    assert row["attempts"] == 1 and row["error"].startswith("clips[0]: ")
    assert "127.0.0.1" in row["error"] or "private" in row["error"] or "loopback" in row["error"]


async def test_cancelling_mid_encode_stops_ffmpeg_and_leaves_nothing(store, tmp_path, long_clip):
    async with file_server({"/long.mp4": long_clip}) as base:
        job_id, _ = await store.enqueue(
            {
                "clips": [{"url": f"{base}/long.mp4"}],
                "output": {"width": 1920, "height": 1080, "path": "u/cancelled.mp4"},
            }
        )
        async with worker(store, tmp_path, lease_seconds=3) as (runner, settings):

            async def encoding() -> bool:
                row = await store.get(job_id)
                return row["stage"] == "processing" and row["progress"] > 26

            await wait_for(encoding, timeout=60)
            await store.request_cancel(job_id)
            row = await status_is(store, job_id, "cancelled", timeout=10)
            # the job's run has ended (its slot is free): nothing it did could still upload
            await wait_for(lambda: asyncio.sleep(0, result=job_id not in runner.in_flight))
            assert not stored(settings, "u/cancelled.mp4").exists()
            await wait_for(
                lambda: asyncio.sleep(0, result=list((settings.home / "tmp").iterdir()) == []),
                timeout=10,
            )
    assert row["video_url"] is None


BROKEN_SRT = b"1\n00:00:00,000 --> 00:00:01,000\nfine\n\n2\n00:00:01 to 00:00:02\nbroken\n"


def still_png(folder: Path) -> Path:
    out = folder / "still.png"
    ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "1"], out)
    return out


async def test_the_composition_inputs_fail_naming_the_input(store, tmp_path, media):
    """Every new kind of input is downloaded, checked as what it claims to be, and named
    in the error; each fails for good at its first attempt."""
    files: dict[str, Path | int | bytes] = {
        "/ok.mp4": media.path("h264_30"),
        "/music.m4a": media.path("music"),
        "/still.png": still_png(tmp_path),
        "/broken.srt": BROKEN_SRT,
        "/gone": 404,
    }
    ok = "/ok.mp4"
    cases = [
        ({"clips": [{"url": ok, "audio": [{"url": "/music.m4a"}, {"url": "/gone"}]}]},
         ("clips[0].audio[1]: ", "404")),
        ({"clips": [{"url": ok}], "captions": {"srt_url": "/gone"}}, ("captions.srt_url: ", "404")),
        ({"clips": [{"url": ok}], "captions": {"vtt_url": "/gone"}}, ("captions.vtt_url: ", "404")),
        ({"clips": [{"url": ok}], "overlays": [{"image": "/gone"}]},
         ("overlays[0].image: ", "404")),
        ({"clips": [{"url": ok}], "overlays": [{"text": "hi"}, {"image": ok}]},
         ("overlays[1].image: is not an image",)),
        ({"clips": [{"url": ok}, {"url": "/still.png"}]},
         ("clips[1]: is a PNG image, not a video; a still image needs clips[1].duration",)),
        ({"clips": [{"url": ok}], "audio": {"url": "/still.png"}}, ("audio: is a PNG image",)),
        ({"clips": [{"url": ok}], "captions": {"srt_url": "/broken.srt"}},
         ("captions.srt_url: line 6 is not a valid SRT time range",)),
        ({"clips": [{"url": ok}], "overlays": [{"video": "/gone"}]},
         ("overlays[0].video: ", "404")),
        ({"clips": [{"url": ok}], "overlays": [{"video": "/still.png"}]},
         ("overlays[0].video: is a PNG image, not a video",)),
        ({"clips": [{"url": ok}], "overlays": [{"text": "hi"}, {"video": "/music.m4a"}]},
         ("overlays[1].video: has no video stream",)),
        ({"clips": [{"url": ok}], "overlays": [{"video": ok, "from": 5}]},
         ("payload.overlays[0].from: must be less than the video's length",)),
    ]  # fmt: skip
    async with file_server(files) as base:
        jobs = []
        for payload, words in cases:
            job_id, _ = await store.enqueue(_with_base(payload, base))
            jobs.append((job_id, words))
        async with worker(store, tmp_path, concurrency=2):
            rows = [(await status_is(store, j, "completed", "failed", timeout=60), w)
                    for j, w in jobs]  # fmt: skip
    for row, words in rows:
        assert row["status"] == "failed" and row["attempts"] == 1, (row["status"], row["error"])
        assert row["error"].startswith(words[0]), row["error"]
        assert all(w in row["error"] for w in words), row["error"]


def _with_base(value, base: str):
    if isinstance(value, dict):
        return {k: _with_base(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_base(v, base) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        return base + value
    return value


async def test_a_job_with_a_video_overlay_completes(store, tmp_path, media):
    """A picture-in-picture is fetched, probed as a video, drawn and heard."""
    files = {"/talk.mp4": media.path("h264_30"), "/pip.mp4": media.path("h264_30")}
    payload = {"clips": [{"url": "/talk.mp4"}], "overlays": [
        {"video": "/pip.mp4", "x": 0.75, "y": 0.25, "width": 0.3, "start": 0.2, "volume": 0.5,
         "radius": 0.05, "animation": "pop", "loop": True},
    ]}  # fmt: skip
    async with file_server(files) as base:
        job_id, _ = await store.enqueue(_with_base(payload, base))
        async with worker(store, tmp_path):
            row = await status_is(store, job_id, "completed", "failed", timeout=60)
    assert row["status"] == "completed", row["error"]
    assert row["result"]["join"] == "compose" and row["result"]["warnings"] == []


async def test_handle_job_builds_its_pipeline_from_the_jobs_settings(store, tmp_path, media):
    """`--handler worker.pipeline:handle_job`: no pipeline is cached between jobs (or
    between settings), each is built by the composition root from the settings it runs with."""
    async with file_server({"/a.mp4": media.path("h264_30")}) as base:
        job_id, _ = await store.enqueue({"clips": [{"url": f"{base}/a.mp4"}]})
        opts = settings_for(tmp_path)
        async with running(store, handle_job, **opts):
            row = await status_is(store, job_id, "completed", "failed", timeout=60)
    assert row["status"] == "completed", row["error"]
    assert (tmp_path / "home" / "storage").is_dir()  # the local storage these settings name


async def test_a_job_with_audio_layers_and_fades_completes(store, tmp_path, media):
    """The composition's sound inputs reach the assembly: a layer per clip, the clip's volume
    and the output's fades (the picture's own additions are tested with the assembly)."""
    files = {"/a.mp4": media.path("h264_30"), "/rain.m4a": media.path("music")}
    async with file_server(files) as base:
        job_id, _ = await store.enqueue(
            {
                "clips": [
                    {"url": f"{base}/a.mp4", "volume": 0.5,
                     "audio": [{"url": f"{base}/rain.m4a", "loop": True, "fade_in": 0.1}]},
                    {"url": f"{base}/a.mp4", "audio": [{"url": f"{base}/rain.m4a"}]},
                ],
                # matching H.264 clips: only the layers, volume and fades keep them from a
                # stream copy (which would drop all three)
                "output": {"fade_in": 0.2, "fade_out": 0.2},
            }
        )  # fmt: skip
        async with worker(store, tmp_path) as (_, settings):
            row = await status_is(store, job_id, "completed", "failed", timeout=120)
    assert row["status"] == "completed", row["error"]
    assert row["result"]["join"] != "copy"
    assert row["result"]["duration"] == pytest.approx(2.0, abs=0.1)
    assert row["result"]["captions_path"] is None
    # the layer's 220 Hz is heard inside each clip's window while it plays (0.7 s, looped in
    # the first clip only), and not after it stops in the second
    samples, rate = decode_mono(stored(settings, row["result"]["storage_path"]))
    first = tone_level_db(samples, rate, 220, 0.75, 0.95)  # looped past its 0.7 s
    second = tone_level_db(samples, rate, 220, 1.2, 1.5)
    after = tone_level_db(samples, rate, 220, 1.75, 1.95)
    assert first > after + 20 and second > after + 20, (first, second, after)


async def test_a_composition_job_completes_with_its_captions_stored_beside_it(
    store, tmp_path, media
):
    """Every picture addition at once, through the queue: a still with motion, a transition,
    highlight captions from a clip's transcript, an image and a text overlay, fades; the
    WebVTT sidecar is stored beside the video and named in `result`."""
    still, logo = tmp_path / "still.png", tmp_path / "logo.png"
    ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1"], still)
    ffmpeg(["-f", "lavfi", "-i", "color=c=red:size=64x32", "-frames:v", "1"], logo)
    files = {"/a.mp4": media.path("h264_30"), "/still.png": still, "/logo.png": logo}
    async with file_server(files) as base:
        job_id, _ = await store.enqueue(
            {
                "clips": [
                    {"url": f"{base}/a.mp4",
                     "transcript": {"words": [{"word": "Hello", "start": 0.1, "end": 0.5},
                                              {"word": "{\\b1}world", "start": 0.5, "end": 0.9}]},
                     "transition": {"type": "fade", "duration": 0.5}},
                    {"url": f"{base}/still.png", "duration": 1.5, "motion": "zoom_in"},
                ],
                "captions": {"style": "highlight", "vtt": True},
                "overlays": [{"image": f"{base}/logo.png"}, {"text": "Title", "end": 1}],
                "output": {"fade_in": 0.2, "fade_out": 0.2},
            }
        )  # fmt: skip
        async with worker(store, tmp_path) as (_, settings):
            row = await status_is(store, job_id, "completed", "failed", timeout=120)
    assert row["status"] == "completed", row["error"]
    result = row["result"]
    assert result["join"] == "compose"
    assert result["duration"] == pytest.approx(1.0 + 1.5 - 0.5, abs=0.1)  # the clip is 1 s
    vtt = stored(settings, result["captions_path"]).read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "Hello {\\b1}world" in vtt
    assert result["captions_path"] == result["storage_path"][:-4] + ".vtt"
