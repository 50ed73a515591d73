"""Getting a job's inputs onto local disk, safely: downloads and the SSRF guard.

- `download(...)` fetches one http(s) URL: streamed, capped, timed, retried, redirect hops
  checked, partial files removed.
- `DownloadBatch` fetches a job's inputs together (bounded, duplicates once) and reads
  `storage://` inputs through the storage backend.
- `check_url`, `make_session`, `UnsafeURLError` and `unsafe_cause` are the SSRF guard, for
  the webhook sender too: check a URL up front, send through a session whose resolver and
  connector reach only checked addresses, and recognise a refusal however aiohttp wraps it.
- `session_scope` and `status_text` are the client pieces downloads and webhooks share.
"""

from worker.fetch.batch import DownloadBatch, InputSpec, fetch_from_storage
from worker.fetch.download import DEFAULT_POLICY, FetchPolicy, download
from worker.fetch.guard import (
    GuardedConnector,
    GuardedResolver,
    UnsafeURLError,
    check_url,
    check_url_syntax,
    make_session,
    non_global_reason,
    redact,
    unsafe_cause,
)
from worker.fetch.session import session_scope, status_text

__all__ = [
    "DEFAULT_POLICY",
    "DownloadBatch",
    "FetchPolicy",
    "GuardedConnector",
    "GuardedResolver",
    "InputSpec",
    "UnsafeURLError",
    "check_url",
    "check_url_syntax",
    "download",
    "fetch_from_storage",
    "make_session",
    "non_global_reason",
    "redact",
    "session_scope",
    "status_text",
    "unsafe_cause",
]
