"""`video-worker cleanup --delete-files` on S3: the moto server, the CLI as a real process."""

from __future__ import annotations

from typing import Any

from tests.cleanup_helpers import finished_job, job_ids, stored
from tests.test_cli import cli


def keys(s3_admin: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3_admin.list_objects_v2(Bucket=bucket).get("Contents", [])}


async def test_delete_files_removes_old_objects_from_the_bucket(
    store, db_url, s3_admin, bucket, moto_endpoint
):
    for key, size in [("u/old.mp4", 4000), ("u/old.jpg", 100), ("u/new.mp4", 10)]:
        s3_admin.put_object(Bucket=bucket, Key=key, Body=b"x" * size)
    await finished_job(store, days_ago=8, result=stored("u/old.mp4", 4000, bucket, "u/old.jpg"))
    recent = await finished_job(store, days_ago=2, result=stored("u/new.mp4", 10, bucket))
    missing_bucket = await finished_job(
        store, days_ago=9, result=stored("x/gone.mp4", 5, f"{bucket}-deleted")
    )
    proc = cli(
        db_url,
        "cleanup",
        "--delete-files",
        check=False,
        STORAGE_BACKEND="s3",
        S3_BUCKET=bucket,
        S3_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing-secret",
        AWS_REGION="us-east-1",
    )
    assert proc.stdout.startswith(
        "removed 1 finished job(s) older than 7 day(s) and 2 stored object(s), "
        "freeing 4000 bytes (plus 1 poster(s) of unknown size); "
        "kept 1 job(s) whose files could not be deleted: "
    ), proc.stdout + proc.stderr
    assert proc.returncode == 1  # one job's bucket is gone: said, and its row kept
    assert keys(s3_admin, bucket) == {"u/new.mp4"}
    assert await job_ids(store) == {recent, missing_bucket}
