"""The worker's exceptions, one root, split by what the queue does with a job that raises them.

    WorkerError
    ├── PermanentError            the job fails at once, no retry
    │   ├── PayloadError          a malformed payload field (names it: payload.clips[2].url: …)
    │   ├── InputError            one input is unusable: a 404, not a video (names it: clips[1]: …)
    │   └── JobTimeout            the job ran longer than JOB_TIMEOUT
    ├── RetryableError            the attempt failed for a passing reason; retried with backoff
    │   ├── DownloadError         network trouble, 5xx or 429 while fetching an input
    │   └── StorageError          the storage backend failed or is unreachable
    └── LeaseLost                 this replica no longer holds the job: stop and write nothing

Any other exception a handler raises is treated as retryable: a bug or an outage we did not
foresee should not burn a user's job on its first attempt, and `max_attempts` bounds it.
Lower layers' errors (aiohttp, botocore, psycopg) are mapped to these at the edge with
`raise … from exc`, so the queue decides on one tree only.
"""

from __future__ import annotations


class WorkerError(Exception):
    """Root of every error the worker raises on purpose."""


class PermanentError(WorkerError):
    """Retrying cannot help: the job fails at once with this message as its `error`."""


class PayloadError(PermanentError):
    """A payload field is malformed; the message starts with the field's path."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class InputError(PermanentError):
    """One input (a clip, a voice-over, the music) cannot be used; the message names it."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class JobTimeout(PermanentError):
    """The job ran past JOB_TIMEOUT."""


class RetryableError(WorkerError):
    """A passing failure: the job goes back to pending with backoff while attempts remain."""


class DownloadError(RetryableError):
    """Fetching an input failed for a reason that may pass (network, 5xx, 429)."""


class StorageError(RetryableError):
    """The storage backend failed or could not be reached."""


class ConfigError(WorkerError):
    """A setting the worker cannot use; placeholder, see the error tree."""


class LeaseLost(WorkerError):
    """The job's lease was taken back (expired, or the row changed): write nothing more."""
