"""The worker's exceptions: one root, split by what the queue does with a job that raises them.

    WorkerError                       the root; every exception class in worker/ descends from it
    ├── PermanentError                the job fails at once, no retry
    │   ├── PayloadError              a malformed payload field (names it: payload.clips[2].url: …)
    │   ├── InputError                one input is unusable: a 404, not a video (clips[1]: …)
    │   ├── JobTimeout                the job ran longer than JOB_TIMEOUT
    │   ├── UnsafeURLError            the SSRF guard refused a URL (fetch/guard.py)
    │   ├── HostSpellingError         a host written in a form we refuse to read (fetch/hostname.py)
    │   └── StorageConfigError, InvalidKeyError, ObjectNotFound, ObjectTooLarge (storage/base.py)
    ├── RetryableError                the attempt failed for a passing reason; retried with backoff
    │   ├── DownloadError             network trouble, 5xx or 429 while fetching an input
    │   ├── StorageError              the storage backend failed or is unreachable
    │   ├── FFmpegError               FFmpeg exited non-zero (media/ffmpeg.py)
    │   └── UnexpectedError           stands for any exception from outside this tree
    ├── LeaseLost                     this replica no longer holds the job: stop and write nothing
    ├── PendingLimitError             an enqueue refused: the user has MAX_PENDING_PER_USER waiting
    └── ConfigError                   the worker cannot start as configured; never on a row
        ├── SettingsError             an environment variable (settings.py)
        ├── PreflightError            the database cannot be used (db/preflight.py)
        └── WebhookSecretError        WEBHOOK_SECRET cannot be a key (webhooks/signing.py)

Modules keep a few private ones for their own control flow (a download attempt to retry, a
file that will not decode); they sit on the side they would take if they ever escaped.

The runner asks the error, never its module: `as_worker_error(exc)` gives the error itself, or
an `UnexpectedError` standing for an exception from elsewhere (a bug, or an outage nobody
foresaw); then `row_sentence()` is the job's `error`, `retryable` decides whether the job is
tried again, and `log_traceback` whether the operator's log gets the traceback (the row never
does). Any exception from outside the tree is retryable: a bug should not burn a user's job on
its first attempt, and `max_attempts` bounds it. Lower layers' errors (aiohttp, botocore,
psycopg) are mapped to these at the edge with `raise … from exc`.
"""

from __future__ import annotations

from typing import ClassVar

UNEXPECTED = (
    "An unexpected error occurred in the worker ({kind}); the operator's log has the details"
)


class WorkerError(Exception):
    """Root of every error the worker raises on purpose."""

    retryable: ClassVar[bool] = True
    log_traceback: ClassVar[bool] = False

    def row_sentence(self) -> str:
        """What the job's `error` says: our own errors are written for the job's owner, so
        their message is the sentence (worker.row_error still scrubs the worker's paths)."""
        return str(self) or type(self).__name__


class PermanentError(WorkerError):
    """Retrying cannot help: the job fails at once with this message as its `error`."""

    retryable = False


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
    """The job ran past JOB_TIMEOUT. The runner records it when it stops a job for running too
    long: the handler is cancelled (so it cannot raise anything itself), and this error says
    what goes on the row."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"The job ran longer than JOB_TIMEOUT ({seconds} s)")


class RetryableError(WorkerError):
    """A passing failure: the job goes back to pending with backoff while attempts remain."""

    retryable = True


class DownloadError(RetryableError):
    """Fetching an input failed for a reason that may pass (network, 5xx, 429)."""


class StorageError(RetryableError):
    """The storage backend failed or could not be reached."""


class UnexpectedError(RetryableError):
    """Stands for an exception from outside this tree that reached the runner: a bug, or an
    outage nobody foresaw. Never raised; `as_worker_error` wraps the exception in one so the
    runner asks every failure the same questions. The row names only the exception's kind;
    the detail goes to the operator's log with the traceback."""

    log_traceback = True

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(type(cause).__name__)  # not its text: that can hold paths or secrets

    def row_sentence(self) -> str:
        return UNEXPECTED.format(kind=kind_of(self.cause))


class LeaseLost(WorkerError):
    """The job's lease was taken back (expired, or the row changed): write nothing more.

    On neither side: it is not the job's failure, and the replica that holds the job now
    decides its outcome."""


class PendingLimitError(WorkerError):
    """An insert refused by the database: the job's user already has MAX_PENDING_PER_USER jobs
    pending (sql/007_fair_share.sql raises it with SQLSTATE `PENDING_LIMIT_SQLSTATE`). The
    message is the database's, written for the end user.

    On neither side: no job was created, so there is no row to fail; `video-worker enqueue`
    prints it and exits non-zero."""

    retryable = False


PENDING_LIMIT_SQLSTATE = "VJ001"


class ConfigError(WorkerError):
    """The worker cannot start as configured; the message names the setting and never holds a
    secret.

    Outside the job sides because it never reaches a job's row: these are raised while the
    worker starts (settings, the database check, the webhook key), where the CLI prints them
    and exits with status 2, or, for WEBHOOK_SECRET, recorded as the webhook delivery's
    `webhook_error` and never as the job's. Should one reach the runner all the same, that is
    a bug and it is treated as one: retried, logged with its traceback, and the row gets the
    unexpected-error sentence rather than words meant for the operator."""

    retryable = True
    log_traceback = True

    def row_sentence(self) -> str:
        return UNEXPECTED.format(kind=kind_of(self))


def as_worker_error(exc: BaseException) -> WorkerError:
    """`exc` itself when it is one of ours, else an `UnexpectedError` standing for it."""
    return exc if isinstance(exc, WorkerError) else UnexpectedError(exc)


def kind_of(exc: BaseException) -> str:
    """The exception's class, and for an OSError the C library's fixed wording of its errno
    (`File name too long`), never its filename."""
    name = type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return f"{name}: {exc.strerror}"
    return name
