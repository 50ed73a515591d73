"""Tenant escapes in storage: a row with a `user_id` reads `storage://`
objects only under `{user_id}/` in the buckets it may read, and writes only under
`{user_id}/`; a publish never removes an object it did not create.

Each case runs a real worker on local storage: the hostile row must end `failed` at attempts 1
with an error naming the input or field and saying what is allowed; nothing outside the
tenant's folder may be written or deleted (the whole storage tree is compared before and
after); then the same worker completes a good job. The last cases run the same escapes
against a real S3-compatible server (moto) and the Supabase Storage API fake.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.hostile.harness import (
    GOOD_KEY,
    TERMINAL,
    Expect,
    LoopbackServer,
    check_good,
    check_row,
    corpus_settings,
    corpus_worker,
    put_object,
    stored_path,
)
from tests.queue.helpers import running, status_is
from tests.storage.fake_supabase import FakeSupabase, serving
from worker.pipeline import Pipeline
from worker.queue.postgres import PostgresJobStore
from worker.settings import Settings
from worker.storage import make_storage

OWNER = uuid.UUID("6f1c2a9e-3b7d-4c55-9e0a-1d2b3c4d5e6f")
U = str(OWNER)
VICTIM = "0b0b0b0b-0000-4000-8000-000000000000"
BUCKET = "generated-videos"
SECRET = f"{VICTIM}/secret.mp4"
NOT_IN_ERROR = ("/home/", "/tmp/", "/storage/", "Errno", "Traceback")
READ_RULE = f'a user\'s job reads storage:// objects only under "{U}/"'
WRITE_RULE = f'a user\'s job stores objects only under "{U}/"'


def snapshot(settings: Settings) -> dict[str, str]:
    """Every object in local storage (all buckets) with a digest of its bytes."""
    root = settings.home / "storage"
    found = root.rglob("*") if root.exists() else []
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in found
        if p.is_file()
    }


def outside(objects: dict[str, str], owner: str = U) -> dict[str, str]:
    return {k: v for k, v in objects.items() if not k.startswith(f"{BUCKET}/{owner}/")}


async def run_tenant_case(
    store: PostgresJobStore,
    settings: Settings,
    good_clip: Path,
    payload: Any,
    expect: Expect,
    *,
    user_id: uuid.UUID | None = OWNER,
) -> dict[str, Any]:
    """Like the harness's run_case, and no object outside the owner's folder changes."""
    async with corpus_worker(store, settings, good_clip):
        before = snapshot(settings)
        job_id, _ = await store.enqueue(payload, user_id=user_id)
        row = await status_is(store, job_id, *TERMINAL, timeout=60)
        check_row(row, expect)
        assert outside(snapshot(settings)) == outside(before)
        await check_good(store, settings)
    return row


@pytest.fixture
def settings(tmp_path: Path, good_clip: Path) -> Settings:
    """Local storage holding a victim's video, a tenant's own clip and another bucket."""
    settings = corpus_settings(tmp_path)
    put_object(settings, SECRET, good_clip)
    put_object(settings, f"{U}/mine.mp4", good_clip)
    put_object(settings, f"{U}/mine.mp4", good_clip, bucket="uploads")
    put_object(settings, f"{VICTIM}/clip.mp4", good_clip, bucket="uploads")
    return settings


def clip(url: str) -> dict[str, Any]:
    return {"clips": [{"url": url}]}


def src(key: str, bucket: str = BUCKET) -> str:
    return f"storage://{bucket}/{key}"


# (storage:// URL of clips[0], words the error must hold): refused before any input is fetched.
READS = [
    (src(SECRET), (f"clips[0]: storage://{BUCKET}/{SECRET} is not allowed", READ_RULE)),
    (src(f"{U}x/secret.mp4"), ("clips[0]: ", READ_RULE)),
    (src(f"{U.upper()}/mine.mp4"), ("clips[0]: ", READ_RULE)),
    (src(f"{U.replace('-', '')}/mine.mp4"), ("clips[0]: ", READ_RULE)),
    (src(U), ("clips[0]: ", READ_RULE)),  # the folder itself
    (src(f"x/{U}/mine.mp4"), ("clips[0]: ", READ_RULE)),
    (src(f"{U}%2F..%2F{SECRET}"), ("clips[0]: ", "'%' may not appear", READ_RULE)),
    (src(f"{U}/%2E%2E/{SECRET}"), ("clips[0]: ", "'%' may not appear", READ_RULE)),
    (src(f"%36{U[1:]}/mine.mp4"), ("clips[0]: ", "'%' may not appear", READ_RULE)),
    (src(f"{U}/mine.mp4", "uploads"), ('clips[0]: the bucket "uploads" is not allowed', READ_RULE)),
    (src(f"{U}/mine.mp4", "Generated-Videos"), ('the bucket "Generated-Videos" is not', READ_RULE)),
    (src("anonymous/someone-elses-job.mp4"), ("clips[0]: ", READ_RULE)),
]


@pytest.mark.parametrize(("url", "words"), READS)
async def test_a_user_job_reads_only_its_own_objects(
    store, settings, good_clip, url, words
) -> None:
    expect = Expect(error=(*words, f'in the bucket "{BUCKET}"'), not_in_error=NOT_IN_ERROR)
    await run_tenant_case(store, settings, good_clip, clip(url), expect)


# Malformed storage keys are refused while the payload is read, for every row.
MALFORMED_READS = [
    src(f"{U}/../{SECRET}"),
    src(f"/{U}/mine.mp4"),  # storage://generated-videos//U/… : an absolute key
    src(f"{U}//mine.mp4"),
    src(f"{U}/./mine.mp4"),
    src(f"{U}/" + "x" * 300 + ".mp4"),
    f"storage:///{U}/mine.mp4",
]


@pytest.mark.parametrize("url", MALFORMED_READS)
async def test_a_malformed_storage_key_fails_while_the_payload_is_read(
    store, settings, good_clip, url
) -> None:
    expect = Expect(error=("payload.clips[0].url: ",), not_in_error=NOT_IN_ERROR)
    await run_tenant_case(store, settings, good_clip, clip(url), expect)


@pytest.mark.parametrize(
    ("payload", "source"),
    [
        (
            {"clips": [{"url": src(f"{U}/mine.mp4"), "voice_url": src(SECRET)}]},
            "clips[0].voice_url",
        ),
        ({"clips": [{"url": src(f"{U}/mine.mp4")}], "audio": {"url": src(SECRET)}}, "audio"),
        ({"clips": [{"url": src(f"{U}/mine.mp4")}, {"url": src(SECRET)}]}, "clips[1]"),
        # the composition's inputs: audio layers, caption files, images
        (
            {"clips": [{"url": src(f"{U}/mine.mp4"),
                        "audio": [{"url": src(f"{U}/mine.mp4")}, {"url": src(SECRET)}]}]},
            "clips[0].audio[1]",
        ),
        (
            {"clips": [{"url": src(f"{U}/mine.mp4")}],
             "captions": {"srt_url": src(f"{VICTIM}/subs.srt")}},
            "captions.srt_url",
        ),
        (
            {"clips": [{"url": src(f"{U}/mine.mp4")}],
             "captions": {"vtt_url": src(f"{VICTIM}/subs.vtt")}},
            "captions.vtt_url",
        ),
        (
            {"clips": [{"url": src(f"{U}/mine.mp4")}],
             "overlays": [{"text": "hi"}, {"image": src(f"{VICTIM}/logo.png")}]},
            "overlays[1].image",
        ),
        (  # a video overlay is an input like a clip
            {"clips": [{"url": src(f"{U}/mine.mp4")}],
             "overlays": [{"video": src(f"{U}/mine.mp4")}, {"video": src(SECRET)}]},
            "overlays[1].video",
        ),
        (
            {"clips": [{"url": src(f"{U}/mine.mp4")},
                       {"url": src(f"{VICTIM}/still.png"), "duration": 2}]},
            "clips[1]",
        ),
    ],
)  # fmt: skip
async def test_every_input_of_a_user_job_is_confined(
    store, settings, good_clip, payload, source
) -> None:
    expect = Expect(error=(f"{source}: storage://", READ_RULE), not_in_error=NOT_IN_ERROR)
    await run_tenant_case(store, settings, good_clip, payload, expect)


async def test_a_refused_input_is_refused_before_any_input_is_fetched(
    store, tmp_path, good_clip
) -> None:
    settings = corpus_settings(tmp_path, allow_private_urls=True)
    put_object(settings, SECRET, good_clip)
    server = LoopbackServer({"/a.mp4": good_clip})
    async with server.serving():
        payload = {"clips": [{"url": f"{server.base}/a.mp4"}, {"url": src(SECRET)}]}
        expect = Expect(error=("clips[1]: ", READ_RULE), not_in_error=NOT_IN_ERROR)
        await run_tenant_case(store, settings, good_clip, payload, expect)
    assert server.requests == []


async def test_buckets_the_operator_allows_are_readable_inside_the_folder_only(
    store, tmp_path, good_clip
) -> None:
    settings = corpus_settings(tmp_path, storage_read_buckets=("uploads",))
    put_object(settings, f"{U}/mine.mp4", good_clip, bucket="uploads")
    put_object(settings, f"{VICTIM}/clip.mp4", good_clip, bucket="uploads")
    expect = Expect(
        error=("clips[0]: storage://uploads/", f'in the buckets "{BUCKET}" or "uploads"'),
        not_in_error=NOT_IN_ERROR,
    )
    await run_tenant_case(
        store, settings, good_clip, clip(src(f"{VICTIM}/clip.mp4", "uploads")), expect
    )
    mine = clip(src(f"{U}/mine.mp4", "uploads"))
    row = await run_tenant_case(
        store, settings, good_clip, mine, Expect(status="completed", attempts=1)
    )
    assert row["result"]["storage_path"].startswith(f"{U}/")


def with_path(path: str) -> dict[str, Any]:
    return {"clips": [{"url": src(f"{U}/mine.mp4")}], "output": {"path": path}}


# output.path of a user's job, and the words the error must hold.
WRITES = [
    (f"{VICTIM}/secret.mp4", (WRITE_RULE,)),
    (f"{U}x/x.mp4", (WRITE_RULE,)),
    (f"{U.upper()}/x.mp4", (WRITE_RULE,)),
    (f"anonymous/{uuid.uuid4()}.mp4", (WRITE_RULE,)),  # a trusted job's default key
    ("x.mp4", (WRITE_RULE,)),
    (f"{U}.mp4", (WRITE_RULE,)),
    (f"x/{U}/x.mp4", (WRITE_RULE,)),
    (f"{U}%2F..%2F{VICTIM}/secret.mp4", ("'%' may not appear", WRITE_RULE)),
    (f"{U}/%2E%2E/{VICTIM}/secret.mp4", ("'%' may not appear", WRITE_RULE)),
    (f"{U}/../{VICTIM}/secret.mp4", ("'..'",)),
    (f"{U}//x.mp4", ("empty",)),
    (f"{U}/" + "x" * 300 + ".mp4", ("longer than 255 bytes",)),
]


@pytest.mark.parametrize(("path", "words"), WRITES)
async def test_a_user_job_writes_only_in_its_own_folder(
    store, settings, good_clip, path, words
) -> None:
    expect = Expect(error=("payload.output.path: ", *words), not_in_error=NOT_IN_ERROR)
    await run_tenant_case(store, settings, good_clip, with_path(path), expect)
    assert stored_path(settings, SECRET).read_bytes() == good_clip.read_bytes()


async def test_a_long_name_fails_at_once_for_a_trusted_row_too(store, settings, good_clip) -> None:
    """It used to fail mid-upload with the server's path, and be retried three times."""
    payload = {"clips": [{"url": src(GOOD_KEY)}], "output": {"path": "v/" + "x" * 300 + ".mp4"}}
    expect = Expect(error=("payload.output.path: ", "longer than 255 bytes"))
    await run_tenant_case(store, settings, good_clip, payload, expect, user_id=None)


async def test_a_user_job_completes_inside_its_folder(store, settings, good_clip) -> None:
    row = await run_tenant_case(
        store, settings, good_clip, with_path(f"{U}/out.mp4"), Expect("completed", 1)
    )
    assert row["result"]["storage_path"] == f"{U}/out.mp4"
    assert row["result"]["thumbnail_path"] == f"{U}/out.jpg"
    assert stored_path(settings, f"{U}/out.jpg").is_file()


async def test_a_row_without_user_id_keeps_a_trusted_backends_freedom(
    store, settings, good_clip
) -> None:
    payload = {
        "clips": [{"url": src(SECRET)}, {"url": src(f"{VICTIM}/clip.mp4", "uploads")}],
        "output": {"path": f"{VICTIM}/made-by-the-backend.mp4"},
    }
    async with corpus_worker(store, settings, good_clip):
        job_id, _ = await store.enqueue(payload)
        row = await status_is(store, job_id, *TERMINAL, timeout=60)
    check_row(row, Expect("completed", 1))
    assert stored_path(settings, f"{VICTIM}/made-by-the-backend.mp4").is_file()


# The delete attack: job A makes a folder where V's poster would go, job B publishes at
# V's key. B used to overwrite V's video, fail on the poster and delete V's video.


@pytest.mark.parametrize("owner", [None, OWNER], ids=["trusted rows", "one user's rows"])
async def test_the_poster_folder_trick_leaves_the_video_alone(
    store, tmp_path, good_clip, corpus_media, owner
) -> None:
    settings = corpus_settings(tmp_path)
    folder = f"{owner}" if owner else "V"
    video = put_object(settings, f"{folder}/x.mp4", corpus_media.path("odd"))
    put_object(settings, f"{folder}/clip.mp4", good_clip)
    before = video.read_bytes()
    async with corpus_worker(store, settings, good_clip):
        a, _ = await store.enqueue(
            {
                "clips": [{"url": src(f"{folder}/clip.mp4")}],
                "output": {"path": f"{folder}/x.jpg/y.mp4"},
            },
            user_id=owner,
        )
        assert (await status_is(store, a, *TERMINAL, timeout=60))["status"] == "completed"
        objects = snapshot(settings)
        b, _ = await store.enqueue(
            {"clips": [{"url": src(f"{folder}/clip.mp4")}], "output": {"path": f"{folder}/x.mp4"}},
            user_id=owner,
        )
        row = await status_is(store, b, *TERMINAL, timeout=60)
        check_row(
            row,
            Expect(
                error=(
                    f"payload.output.path: storage key '{folder}/x.jpg' cannot be written",
                    "a folder",
                ),
                not_in_error=NOT_IN_ERROR,
            ),
        )
        assert video.read_bytes() == before
        assert snapshot(settings) == objects
        await check_good(store, settings)


async def test_a_key_below_an_existing_object_is_refused_cleanly(
    store, settings, good_clip
) -> None:
    payload = {"clips": [{"url": src(GOOD_KEY)}], "output": {"path": f"{SECRET}/y.mp4"}}
    expect = Expect(
        error=("payload.output.path: ", f"'{SECRET}' is an object, not a folder"),
        not_in_error=NOT_IN_ERROR,
    )
    await run_tenant_case(store, settings, good_clip, payload, expect, user_id=None)
    assert stored_path(settings, SECRET).read_bytes() == good_clip.read_bytes()


# --- the same escapes against a real S3-compatible server and the Supabase API fake ----------


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Remote:
    """An S3 bucket or a Supabase fake, seen from behind the worker's back."""

    def __init__(self, put: Any, objects: Any) -> None:
        self.put = put
        self.objects = objects


@contextlib.asynccontextmanager
async def remote_worker(
    store: PostgresJobStore, settings: Settings, remote: Remote, good_clip: Path
) -> AsyncIterator[None]:
    remote.put(GOOD_KEY, good_clip.read_bytes())
    pipeline = Pipeline(settings, make_storage(settings))
    overrides = {k: getattr(settings, k) for k in settings.__dataclass_fields__}
    async with running(store, pipeline, **overrides):
        yield


def _s3(tmp_path: Path, endpoint: str) -> tuple[Settings, Remote]:
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    admin = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing-secret",
    )
    admin.create_bucket(Bucket=bucket)
    settings = corpus_settings(
        tmp_path,
        storage_backend="s3",
        storage_bucket=bucket,
        s3_bucket=bucket,
        s3_endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing-secret",
        aws_region="us-east-1",
    )

    def objects() -> dict[str, str]:
        listed = admin.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {o["Key"]: o["ETag"] for o in listed}

    return settings, Remote(lambda k, b: admin.put_object(Bucket=bucket, Key=k, Body=b), objects)


def _supabase(tmp_path: Path, fake: FakeSupabase) -> tuple[Settings, Remote]:
    fake.public[BUCKET] = False
    settings = corpus_settings(
        tmp_path,
        storage_backend="supabase",
        supabase_url=fake.base,
        supabase_service_key="service-role-key-SECRET-0123456789",
    )

    def put(key: str, data: bytes) -> None:
        fake.objects[f"{BUCKET}/{key}"] = data

    def objects() -> dict[str, str]:
        found = fake.objects.items()
        return {k.removeprefix(f"{BUCKET}/"): hashlib.sha256(v).hexdigest() for k, v in found}

    return settings, Remote(put, objects)


@contextlib.asynccontextmanager
async def backend(
    kind: str, tmp_path: Path, request: Any
) -> AsyncIterator[tuple[Settings, Remote]]:
    if kind == "s3":
        yield _s3(tmp_path, request.getfixturevalue("moto"))
        return
    async with serving() as fake:
        yield _supabase(tmp_path, fake)


def with_path_in(bucket: str, path: str) -> dict[str, Any]:
    return {"clips": [{"url": src(f"{U}/mine.mp4", bucket)}], "output": {"path": path}}


# (payload in the backend's bucket, words the error must hold)
REMOTE_CASES = [
    (lambda b: clip(src(SECRET, b)), ("clips[0]: ", READ_RULE)),
    (lambda b: clip(src(f"{U}x/secret.mp4", b)), ("clips[0]: ", READ_RULE)),
    (lambda b: clip(src(f"{U}/%2E%2E/{SECRET}", b)), ("clips[0]: ", "'%' may not appear")),
    (lambda b: clip(src(f"{U}/mine.mp4", "other-bucket")), ('the bucket "other-bucket"',)),
    (lambda b: with_path_in(b, f"{VICTIM}/secret.mp4"), ("payload.output.path: ", WRITE_RULE)),
    (lambda b: with_path_in(b, f"{U}x/x.mp4"), ("payload.output.path: ", WRITE_RULE)),
    (lambda b: with_path_in(b, f"{U}/%2E%2E/{SECRET}"), ("payload.output.path: ", "'%'")),
]


@pytest.mark.parametrize("kind", ["s3", "supabase"])
@pytest.mark.parametrize(
    ("payload", "words"),
    REMOTE_CASES,
    ids=[
        "read-other-user",
        "read-id-prefix",
        "read-percent-dots",
        "read-other-bucket",
        "write-other-user",
        "write-id-prefix",
        "write-percent-dots",
    ],
)
async def test_remote_backends_confine_a_user_job(
    store, tmp_path, good_clip, request, kind, payload, words
) -> None:
    async with backend(kind, tmp_path, request) as (settings, remote):
        remote.put(SECRET, b"the victim's video")
        remote.put(f"{U}/mine.mp4", good_clip.read_bytes())
        async with remote_worker(store, settings, remote, good_clip):
            before = remote.objects()
            job_id, _ = await store.enqueue(payload(settings.storage_bucket), user_id=OWNER)
            row = await status_is(store, job_id, *TERMINAL, timeout=60)
            check_row(row, Expect(error=words, not_in_error=NOT_IN_ERROR))
            assert remote.objects() == before
            await check_good(store, settings)


async def test_a_failed_publish_deletes_only_what_it_created(store, tmp_path, good_clip) -> None:
    """Supabase uploads upsert, so a retried job replaces its own earlier output. Here the
    video's upload fails after the poster was stored: the poster this attempt created goes,
    the video that was there before stays, and nothing else is asked to be deleted."""
    async with serving() as fake:
        settings, remote = _supabase(tmp_path, fake)
        remote.put(f"{U}/out.mp4", b"an earlier attempt's video")
        remote.put(f"{U}/mine.mp4", good_clip.read_bytes())
        async with remote_worker(store, settings, remote, good_clip):
            fake.fail_suffix = "/out.mp4"
            payload = with_path(f"{U}/out.mp4")
            job_id, _ = await store.enqueue(payload, user_id=OWNER, max_attempts=1)
            row = await status_is(store, job_id, *TERMINAL, timeout=60)
            check_row(row, Expect(attempts=1, error=("Supabase Storage failed (500",)))
            assert fake.objects[f"{BUCKET}/{U}/out.mp4"] == b"an earlier attempt's video"
            assert fake.deleted == [f"{BUCKET}/{U}/out.jpg"]
            assert f"{BUCKET}/{U}/out.jpg" not in fake.objects
            fake.fail_suffix = None
            await check_good(store, settings)
