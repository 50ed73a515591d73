"""Fixtures for the storage tests: a real S3-compatible server (moto) and a Supabase Storage
API fake, both on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import pytest
from fake_supabase import FakeSupabase, serving
from moto.server import ThreadedMotoServer


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session; each test works in buckets of its own."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_admin(moto_endpoint: str) -> Any:
    """A plain boto3 client the tests use to look behind the backend's back."""
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing-secret",
    )


@pytest.fixture
def bucket(s3_admin: Any) -> str:
    """A fresh, empty bucket for this test alone."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_admin.create_bucket(Bucket=name)
    return name


@pytest.fixture
async def supabase() -> AsyncIterator[FakeSupabase]:
    """A fake Supabase Storage API on 127.0.0.1 (fake_supabase.py), fresh for each test."""
    async with serving() as fake:
        yield fake
