"""DownloadBatch: duplicates once, bounded concurrency, clean failure, storage:// inputs."""

from __future__ import annotations

import asyncio

import pytest
from fetch_helpers import BODY, ClipServer, fast_policy, wait_for

from worker.errors import InputError
from worker.fetch import DownloadBatch, InputSpec
from worker.storage.local import LocalStorage


def batch(folder, **kwargs) -> DownloadBatch:
    options = dict(max_bytes=10**6, allow_private=True, policy=fast_policy())
    options.update(kwargs)
    return DownloadBatch(folder, **options)


async def test_duplicate_urls_are_fetched_once(clip_server: ClipServer, tmp_path):
    ok, chained = clip_server.url("/ok"), clip_server.url("/chain/0")
    inputs = [
        InputSpec("clips[0]", ok),
        InputSpec("clips[1]", chained),
        InputSpec("clips[2]", ok),
        InputSpec("audio", ok),
    ]
    progress: list[tuple[int, int | None]] = []
    paths = await batch(
        tmp_path / "in", on_progress=lambda n, t: progress.append((n, t))
    ).fetch_all(inputs)
    assert paths["clips[0]"] == paths["clips[2]"] == paths["audio"] != paths["clips[1]"]
    assert all(p.read_bytes() == BODY for p in paths.values())
    assert clip_server.hits["/ok"] == 2  # once for the direct URL, once behind the redirect
    assert progress[-1] == (2 * len(BODY), 2 * len(BODY))


async def test_concurrency_is_bounded(clip_server: ClipServer, tmp_path):
    inputs = [InputSpec(f"clips[{n}]", clip_server.url(f"/hold?n={n}")) for n in range(5)]
    task = asyncio.create_task(batch(tmp_path, concurrency=2).fetch_all(inputs))
    await wait_for(lambda: clip_server.in_flight == 2)
    clip_server.gate.set()
    paths = await task
    assert len(paths) == 5 and clip_server.hits["/hold"] == 5
    assert clip_server.max_in_flight == 2


async def test_one_bad_input_fails_the_batch_and_leaves_no_files(clip_server, tmp_path):
    inputs = [
        InputSpec("clips[0]", clip_server.url("/ok")),
        InputSpec("clips[1]", clip_server.url("/missing")),
        InputSpec("clips[2]", clip_server.url("/broken")),
    ]
    with pytest.raises(InputError, match=r"^clips\[1\]: the URL returned 404"):
        await batch(tmp_path, concurrency=3).fetch_all(inputs)
    assert list(tmp_path.iterdir()) == []


async def test_storage_inputs_are_read_through_the_backend(tmp_path):
    storage = LocalStorage(tmp_path / "storage", "outputs")
    private = tmp_path / "storage" / "uploads" / "user-1" / "intro.mp4"
    private.parent.mkdir(parents=True)
    private.write_bytes(b"intro")
    inputs = [InputSpec("clips[0]", "storage://uploads/user-1/intro.mp4")]
    paths = await batch(tmp_path / "in", storage=storage).fetch_all(inputs)
    assert paths["clips[0]"].read_bytes() == b"intro"

    missing = [InputSpec("clips[1]", "storage://uploads/user-1/nope.mp4")]
    with pytest.raises(InputError, match=r"^clips\[1\]: storage://uploads/user-1/nope.mp4 does"):
        await batch(tmp_path / "in2", storage=storage).fetch_all(missing)
    escaping = [InputSpec("clips[2]", "storage://uploads/../outputs/x.mp4")]
    with pytest.raises(InputError, match=r"^clips\[2\]: storage key"):
        await batch(tmp_path / "in3", storage=storage).fetch_all(escaping)
    too_big = [InputSpec("audio", "storage://uploads/user-1/intro.mp4")]
    with pytest.raises(InputError, match=r"^audio: .* larger than"):
        await batch(tmp_path / "in4", storage=storage, max_bytes=3).fetch_all(too_big)


async def test_an_input_may_have_a_tighter_byte_cap_than_the_batch(clip_server, tmp_path):
    """A caption file or an overlay image is refused on the wire past its own, smaller cap."""
    ok = clip_server.url("/ok")
    small = [InputSpec("clips[0]", ok), InputSpec("captions.srt_url", clip_server.url("/chain/0"),
                                                  max_bytes=1000)]  # fmt: skip
    with pytest.raises(InputError, match=r"^captions\.srt_url: .*larger than"):
        await batch(tmp_path / "a").fetch_all(small)
    # one URL named twice is fetched once, with room for the roomier input (the other's
    # reader checks its own limit afterwards, naming its own input)
    shared = [InputSpec("clips[0]", ok), InputSpec("overlays[0].image", ok, max_bytes=1000)]
    paths = await batch(tmp_path / "b").fetch_all(shared)
    assert paths["clips[0]"] == paths["overlays[0].image"]
    # a cap above the batch's own changes nothing
    roomy = [InputSpec("clips[0]", ok, max_bytes=10**9)]
    paths = await batch(tmp_path / "c", max_bytes=len(BODY)).fetch_all(roomy)
    assert paths["clips[0]"].read_bytes() == BODY
    with pytest.raises(InputError, match=r"^clips\[0\]: .*larger than"):
        await batch(tmp_path / "d", max_bytes=len(BODY) - 1).fetch_all(roomy)
