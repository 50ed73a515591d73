"""Getting a job's inputs onto local disk, safely: downloads and the SSRF guard.

- `download(...)` fetches one http(s) URL: streamed, capped, timed, retried, redirect hops
  checked, partial files removed.
- `DownloadBatch` fetches a job's inputs together (bounded, duplicates once) and reads
  `storage://` inputs through the storage backend.
- `check_url`, `make_session` and `UnsafeURLError` are the SSRF guard, for the webhook
  sender too: check a URL up front and send through a session that connects only to
  checked addresses.
"""

from worker.fetch.batch import DownloadBatch, InputSpec, fetch_from_storage
from worker.fetch.download import DEFAULT_POLICY, FetchPolicy, download
from worker.fetch.guard import (
    GuardedResolver,
    UnsafeURLError,
    check_url,
    check_url_syntax,
    make_session,
    non_global_reason,
    redact,
)

__all__ = [
    "DEFAULT_POLICY",
    "DownloadBatch",
    "FetchPolicy",
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
]
