"""Claim poisoning and payload size: a payload Postgres stores but no JSON parser should take
(thousands of levels deep, numbers of thousands of digits), or one over MAX_PAYLOAD_BYTES, is
claimed in the same statement as an innocent job. The poisoned job fails alone, at attempt 1,
with an error naming the payload; the innocent one completes; nothing is left `processing`;
and the worker then completes a good job.

The payloads go in as JSON text (Python's json cannot even write most of them), and the rows
are read without their payload: psycopg's JSON loader is what these payloads used to break.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.harness import (
    GOOD_KEY,
    Expect,
    check_good,
    check_row,
    corpus_settings,
    corpus_worker,
)
from tests.queue.helpers import wait_for
from worker.queue.postgres import PostgresJobStore

MIB = 1024**2
GOOD_URL = f"storage://generated-videos/{GOOD_KEY}"
DEPTH = ("payload: is nested more than 64 levels deep",)


def clip_with(field: str, value: str) -> str:
    """A well-formed payload whose first clip carries `value` (raw JSON text) as `field`."""
    return f'{{"clips": [{{"url": "{GOOD_URL}", "{field}": {value}}}]}}'


def long_number(chars: int) -> tuple[str, ...]:
    return (f"payload: has a number {chars} characters long; at most 400 are allowed",)


# (JSON text of the hostile payload, words its row's error must hold)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "arrays 3000 deep": ("[" * 3000 + "]" * 3000, DEPTH),
    "objects 3000 deep": ('{"a": ' * 3000 + "1" + "}" * 3000, DEPTH),
    "arrays 10000 deep": ("[" * 10_000 + "]" * 10_000, DEPTH),
    "arrays 65 deep in a transcript": (clip_with("transcript", "[" * 65 + "]" * 65), DEPTH),
    "objects 3000 deep in a clip": (
        clip_with("audio", '{"a": ' * 3000 + "1" + "}" * 3000),
        DEPTH,
    ),
    "integer of 5000 digits": (clip_with("start", "1" * 5000), long_number(5000)),
    "negative integer of 5000 digits": (clip_with("end", "-" + "9" * 5000), long_number(5001)),
    # Postgres writes jsonb numbers without an exponent: 1e5000 comes back as 5001 digits
    "huge float exponent": (clip_with("start", "1e5000"), long_number(5001)),
    "huge negative float exponent": (clip_with("start", "-1.5e4000"), long_number(4002)),
    "tiny float exponent": (clip_with("start", "1e-5000"), long_number(5002)),
    "fraction of 3000 digits": (clip_with("start", "0." + "3" * 3000), long_number(3002)),
    "float beyond a double": (
        clip_with("start", "9" * 350 + ".5"),
        ("payload: has a number too large to use",),
    ),
    "number deep inside the output": (
        f'{{"clips": [{{"url": "{GOOD_URL}"}}], "output": {{"fps": {"7" * 4500}}}}}',
        long_number(4500),
    ),
}


async def insert_text(store: PostgresJobStore, payload: str) -> uuid.UUID:
    async with store.pool.connection() as conn:
        cur = await conn.execute(
            "insert into video_jobs (payload) values (%s::jsonb) returning id", (payload,)
        )
        row = await cur.fetchone()
    assert row is not None
    return uuid.UUID(str(row["id"]))


async def ended(store: PostgresJobStore, *ids: uuid.UUID, timeout: float = 60) -> dict[Any, Any]:
    """The rows once none is pending or processing, read without the payload."""

    async def check() -> dict[Any, Any] | None:
        async with store.pool.connection() as conn:
            cur = await conn.execute(
                "select id, status, attempts, error, started_at, "
                "octet_length(payload::text) as payload_bytes from video_jobs "
                "where id = any(%s)",
                (list(ids),),
            )
            rows = {r["id"]: r for r in await cur.fetchall()}
        busy = [r for r in rows.values() if r["status"] in ("pending", "processing")]
        return None if busy else rows

    rows: dict[Any, Any] = await wait_for(check, timeout)
    return rows


async def poisoned_beside_an_innocent_job(
    store: PostgresJobStore, tmp_path: Path, good_clip: Path, payload: str, **settings: Any
) -> dict[str, Any]:
    """Both rows exist before the worker starts, so its first claim (two free slots) takes
    both in one statement; then a good job must still complete."""
    opts = corpus_settings(tmp_path, concurrency=2, **settings)
    hostile = await insert_text(store, payload)
    innocent, _ = await store.enqueue({"clips": [{"url": GOOD_URL}]})
    async with corpus_worker(store, opts, good_clip) as runner:
        rows = await ended(store, hostile, innocent)
        await check_good(store, opts)
    assert rows[innocent]["status"] == "completed", rows[innocent]["error"]
    assert rows[hostile]["started_at"] == rows[innocent]["started_at"], "not one claim"
    assert runner.db_ok, runner.db_error  # the claim itself never failed
    assert (await store.counts())["processing"] == 0
    result: dict[str, Any] = rows[hostile]
    return result


@pytest.mark.parametrize("name", list(CASES))
async def test_a_poisoned_payload_fails_alone(store, tmp_path, good_clip, name):
    payload, words = CASES[name]
    row = await poisoned_beside_an_innocent_job(store, tmp_path, good_clip, payload)
    check_row(row, Expect(status="failed", attempts=1, error=words))


@pytest.mark.parametrize(
    ("limit", "pad"),
    [(MIB, MIB), (MIB, 5 * MIB), (4096, 4096)],
    ids=["just over 1 MiB", "5 MiB", "MAX_PAYLOAD_BYTES=4096"],
)
async def test_a_payload_over_the_size_limit_fails_alone(store, tmp_path, good_clip, limit, pad):
    payload = f'{{"clips": [{{"url": "{GOOD_URL}"}}], "note": "{"x" * pad}"}}'
    row = await poisoned_beside_an_innocent_job(
        PostgresJobStore(store.pool, max_payload_bytes=limit),
        tmp_path,
        good_clip,
        payload,
        max_payload_bytes=limit,
    )
    size = row["payload_bytes"]
    assert size > limit
    message = f"payload: is {size} bytes; at most {limit} are allowed"
    check_row(row, Expect(status="failed", attempts=1, error=(message,)))
    assert row["error"] == message


async def test_a_payload_at_the_size_limit_runs(store, tmp_path, good_clip):
    base = f'{{"clips": [{{"url": "{GOOD_URL}"}}], "note": ""}}'
    size = 4096
    payload = base.replace('""', '"' + "x" * (size - len(base)) + '"')
    job_id = await insert_text(store, payload)
    small = PostgresJobStore(store.pool, max_payload_bytes=size)
    opts = corpus_settings(tmp_path, max_payload_bytes=size)
    async with corpus_worker(small, opts, good_clip):
        rows = await ended(small, job_id)
        await check_good(small, opts)
    assert rows[job_id]["payload_bytes"] == size
    check_row(rows[job_id], Expect(status="completed", attempts=1))
