"""One error tree: every exception class in worker/ under `WorkerError`, each on a side, each
giving the sentence for the job's row; and the runner writing what the error says."""

from __future__ import annotations

import asyncio
import errno
import importlib
import inspect
import signal
from pathlib import Path

import pytest

from tests.queue.helpers import running, status_is
from tests.test_imports import module_names
from worker.db.preflight import PreflightError
from worker.errors import (
    UNEXPECTED,
    ConfigError,
    DownloadError,
    InputError,
    JobTimeout,
    LeaseLost,
    PayloadError,
    PendingLimitError,
    PermanentError,
    RetryableError,
    StorageError,
    UnexpectedError,
    WorkerError,
    as_worker_error,
)
from worker.fetch import UnsafeURLError
from worker.fetch.hostname import HostSpellingError
from worker.media.ffmpeg import FFmpegError
from worker.row_error import row_error
from worker.settings import SettingsError
from worker.storage.base import InvalidKeyError, ObjectNotFound, ObjectTooLarge
from worker.webhooks import WebhookSecretError

# Importing worker.__main__ runs the CLI; it defines no class.
NOT_IMPORTED = {"worker.__main__"}


def exception_classes() -> list[type[BaseException]]:
    """Every exception class defined at the top of a module or inside a class in worker/."""
    found: list[type[BaseException]] = []
    for name in sorted(set(module_names()) - NOT_IMPORTED):
        module = importlib.import_module(name)
        classes = [c for _, c in inspect.getmembers(module, inspect.isclass)]
        classes += [n for c in classes for _, n in inspect.getmembers(c, inspect.isclass)]
        found += [
            c
            for c in classes
            if c.__module__ == name and issubclass(c, BaseException) and c not in found
        ]
    return found


def test_the_walk_finds_the_errors_outside_errors_py_including_private_ones():
    names = {f"{c.__module__}.{c.__qualname__}" for c in exception_classes()}
    assert {
        "worker.media.ffmpeg.FFmpegError",
        "worker.fetch.guard.UnsafeURLError",
        "worker.settings.SettingsError",
        "worker.webhooks.signing.WebhookSecretError",
        "worker.fetch.download._Transient",
        "worker.storage.local._Blocked",
    } <= names


def test_every_exception_class_in_the_worker_descends_from_the_root():
    outside = [
        f"{c.__module__}.{c.__qualname__} ({', '.join(b.__name__ for b in c.__mro__[1:])})"
        for c in exception_classes()
        if not issubclass(c, WorkerError)
    ]
    assert not outside, "exceptions outside the WorkerError tree:\n" + "\n".join(outside)


def test_every_error_is_on_one_side_or_says_why_not():
    """Permanent or retryable; only a lost lease (nothing to write), configuration errors
    (never on a row; see ConfigError) and an enqueue the pending cap refused (no row was
    made) stand apart."""
    apart = (LeaseLost, ConfigError, PendingLimitError)
    for cls in exception_classes():
        if cls is WorkerError:
            continue
        sides = [issubclass(cls, side) for side in (PermanentError, RetryableError, *apart)]
        assert sides.count(True) == 1, cls
        if issubclass(cls, PermanentError):
            assert cls.retryable is False, cls
        if issubclass(cls, RetryableError):
            assert cls.retryable is True, cls


def test_the_errors_that_were_outside_keep_what_callers_catch_them_as():
    """The payload's validators and the CLI catch ValueError; these still are."""
    for cls in (UnsafeURLError, HostSpellingError, SettingsError, WebhookSecretError):
        assert issubclass(cls, ValueError), cls
    assert issubclass(FFmpegError, RetryableError) and FFmpegError.log_traceback
    assert issubclass(SettingsError, ConfigError) and issubclass(PreflightError, ConfigError)


HOME = Path("/srv/worker-home")
FFMPEG_OUTPUT = f"[mov] {HOME}/tmp/job-1/clip0.mp4: Invalid data found when processing input"


def _oserror() -> OSError:
    return OSError(errno.ENAMETOOLONG, "File name too long", f"{HOME}/{'x' * 300}")


# (error, the row's sentence, retried?)
SENTENCES = [
    (
        PayloadError("payload.clips[2].url", "must be an http(s) URL"),
        "payload.clips[2].url: must be an http(s) URL",
        False,
    ),
    (
        InputError("clips[1]", "the URL returned 404 Not Found"),
        "clips[1]: the URL returned 404 Not Found",
        False,
    ),
    (JobTimeout(600), "The job ran longer than JOB_TIMEOUT (600 s)", False),
    (JobTimeout(0.5), "The job ran longer than JOB_TIMEOUT (0.5 s)", False),
    (
        UnsafeURLError("the URL's host 10.0.0.1 is a private address"),
        "the URL's host 10.0.0.1 is a private address",
        False,
    ),
    (ObjectNotFound("media", "a/b.mp4"), "storage://media/a/b.mp4 does not exist", False),
    (
        ObjectTooLarge("media", "big.mp4", 1000),
        "storage://media/big.mp4 is larger than the 1000 byte limit",
        False,
    ),
    (InvalidKeyError("storage key ../x climbs out"), "storage key ../x climbs out", False),
    (
        DownloadError("clips[0]: the server answered 503 Service Unavailable"),
        "clips[0]: the server answered 503 Service Unavailable",
        True,
    ),
    (StorageError("S3 could not be reached"), "S3 could not be reached", True),
    (
        FFmpegError(1, FFMPEG_OUTPUT),
        "FFmpeg failed while making the video (exit status 1); the operator's log has "
        "FFmpeg's output",
        True,
    ),
    (
        FFmpegError(-signal.SIGKILL, ""),
        f"FFmpeg was stopped by signal {int(signal.SIGKILL)} while making the video (the "
        "worker may have run out of memory); the operator's log has FFmpeg's output",
        True,
    ),
    (
        FFmpegError(1, "av_interleaved_write_frame(): No space left on device"),
        "FFmpeg ran out of disk space while making the video; the operator's log has "
        "FFmpeg's output",
        True,
    ),
    (RuntimeError(f"a bug near {HOME}/x"), UNEXPECTED.format(kind="RuntimeError"), True),
    (_oserror(), UNEXPECTED.format(kind="OSError: File name too long"), True),
    (KeyError("token=abc"), UNEXPECTED.format(kind="KeyError"), True),
    (SettingsError("PORT must be a whole number"), UNEXPECTED.format(kind="SettingsError"), True),
    (PreflightError("no database at db:5432"), UNEXPECTED.format(kind="PreflightError"), True),
    (
        WebhookSecretError("WEBHOOK_SECRET is empty"),
        UNEXPECTED.format(kind="WebhookSecretError"),
        True,
    ),
]


@pytest.mark.parametrize(
    ("exc", "sentence", "retried"), SENTENCES, ids=[type(s[0]).__name__ for s in SENTENCES]
)
def test_the_error_gives_the_rows_sentence_and_its_side(exc, sentence, retried):
    error = as_worker_error(exc)
    assert error.row_sentence() == sentence
    assert row_error(exc, HOME) == sentence
    assert error.retryable is retried
    assert str(HOME) not in sentence


def test_our_own_message_has_the_workers_paths_scrubbed_on_the_row():
    assert row_error(StorageError(f"could not write {HOME}/out/v.mp4"), HOME) == (
        "could not write [worker path]"
    )


def test_an_exception_from_outside_the_tree_is_asked_through_a_stand_in():
    bug = ValueError("secret-ish text")
    error = as_worker_error(bug)
    assert isinstance(error, UnexpectedError) and error.cause is bug
    assert error.retryable and error.log_traceback and "secret" not in str(error)
    ours = DownloadError("clips[0]: timed out")
    assert as_worker_error(ours) is ours and not ours.log_traceback


def test_an_error_with_no_message_is_named_by_its_class():
    assert row_error(StorageError()) == "StorageError"


# --- the runner writes what the error says ----------------------------------------------------


def raising(exc: BaseException):
    async def handler(job, ctx):
        raise exc

    return handler


async def test_the_runner_writes_a_permanent_errors_sentence_once(store):
    job_id, _ = await store.enqueue({}, max_attempts=3)
    unsafe = UnsafeURLError("the URL's host 10.0.0.1 is a private address")
    async with running(store, raising(unsafe)):
        row = await status_is(store, job_id, "failed")
    assert row["attempts"] == 1 and row["error"] == str(unsafe)


async def test_the_runner_retries_ffmpeg_and_writes_its_public_sentence(store):
    job_id, _ = await store.enqueue({}, max_attempts=2)
    failure = FFmpegError(1, FFMPEG_OUTPUT)
    async with running(store, raising(failure)):
        row = await status_is(store, job_id, "failed")
    assert row["attempts"] == 2 and row["error"] == failure.public_message
    assert [e["error"] for e in row["errors"]] == [failure.public_message] * 2


async def test_a_configuration_error_reaching_a_job_is_handled_as_a_bug(store):
    job_id, _ = await store.enqueue({}, max_attempts=2)
    async with running(store, raising(SettingsError("PORT must be a whole number, got 'x'"))):
        row = await status_is(store, job_id, "failed")
    assert row["attempts"] == 2 and row["error"] == UNEXPECTED.format(kind="SettingsError")


async def test_a_job_that_runs_too_long_gets_the_timeout_sentence(store):
    async def slow(job, ctx):
        await asyncio.sleep(30)

    job_id, _ = await store.enqueue({}, max_attempts=3)
    async with running(store, slow, job_timeout=1):
        row = await status_is(store, job_id, "failed", timeout=10)
    assert row["attempts"] == 1
    assert (
        row["error"]
        == JobTimeout(1).row_sentence()
        == ("The job ran longer than JOB_TIMEOUT (1 s)")
    )
