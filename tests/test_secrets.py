"""DATABASE_URL's password, in every form libpq takes, never reaches a log line, an error or
/stats; a row's error never shows a server path or FFmpeg's stderr.

The start-up tests run the real `video-worker run` against the test's Postgres with the
password written into DATABASE_URL each way (the test server trusts local connections, so the
password is carried but not checked) and read everything the process printed.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.queue.helpers import running, status_is
from tests.queue.procs import ROOT, Replica
from worker import log as worker_log
from worker.errors import PermanentError, StorageError
from worker.media.ffmpeg import run_ffmpeg
from worker.row_error import PATH_MARK, UNEXPECTED, row_error
from worker.settings import Settings, SettingsError, redact_url

# Each password has characters that need quoting or encoding somewhere.
URL_PW = "Sekr3t-in-the-userinfo"
ENCODED_PW = "p@ss w/rd:%é-Sekr3t"  # percent-encoded in the URI; both spellings must go
QUERY_PW = "qu&ry=Sekr3t"
QUOTED_PW = "it's a \\ Sekr3t"  # keyword form: password = 'it\'s a \\ Sekr3t'
PLAIN_PW = "plainSekr3tWord"


def forms(url: str) -> dict[str, tuple[str, list[str]]]:
    """DATABASE_URL spellings of the test database, each with the strings that must not show."""
    p = conninfo_to_dict(url)
    host, user, db = p.get("host", "127.0.0.1"), p.get("user", "postgres"), p["dbname"]
    port = p.get("port", "5432")
    q_host = quote(host, safe="")
    quoted = "'" + QUOTED_PW.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return {
        "uri": (
            f"postgresql://{user}:{URL_PW}@/{db}?host={q_host}&port={port}",
            [URL_PW],
        ),
        "percent-encoded": (
            f"postgresql://{user}:{quote(ENCODED_PW, safe='')}@/{db}?host={q_host}&port={port}",
            [ENCODED_PW, quote(ENCODED_PW, safe=""), "Sekr3t"],
        ),
        "query-string": (
            f"postgresql:///{db}?host={q_host}&port={port}&user={user}"
            f"&password={quote(QUERY_PW, safe='')}",
            [QUERY_PW, quote(QUERY_PW, safe=""), "Sekr3t"],
        ),
        "keyword-quoted": (
            f"host={host} port={port} user={user} dbname={db} password = {quoted}",
            [QUOTED_PW, quoted, "Sekr3t"],
        ),
        "keyword": (
            f"host={host} port={port} user={user} password={PLAIN_PW} dbname={db}",
            [PLAIN_PW],
        ),
    }


FORM_NAMES = ["uri", "percent-encoded", "query-string", "keyword-quoted", "keyword"]


@pytest.mark.parametrize("form", FORM_NAMES)
def test_each_form_is_parsed_and_shown_masked(form):
    url, hidden = forms("host=/tmp/pg port=5432 user=postgres dbname=app")[form]
    settings = Settings.from_env({"DATABASE_URL": url})
    shown = json.dumps(settings.describe())
    assert "***" in settings.describe()["database_url"]
    for word in hidden:
        assert word not in shown
        assert word not in redact_url(url)
    # every spelling is a known secret, so the log masker and the row's masker catch it too
    masker = worker_log.SecretMasker(settings.secrets())
    assert all(word not in masker.mask(f"echo: {url}") for word in hidden)
    assert conninfo_to_dict(url)["dbname"] == "app"  # libpq reads what we describe


@pytest.mark.parametrize("form", FORM_NAMES)
async def test_a_running_worker_never_logs_the_password(db_url, store, tmp_path, form):
    url, hidden = forms(db_url)[form]
    replica = Replica(url, f"worker-{form}", tmp_path)
    try:
        settings_line = replica.wait_event("settings")
        replica.wait_event("worker_started")
        script = [{"raise": f"the database said {url}"}]
        job_id, _ = await store.enqueue({"script": script}, max_attempts=1)
        row = await status_is(store, job_id, "failed", timeout=30)
        assert row["error"] == UNEXPECTED.format(kind="RuntimeError")
        replica.wait_event("job_attempt_failed")
    finally:
        replica.stop()
    text = replica.log_path.read_text()
    assert "***" in settings_line["database_url"]
    assert conninfo_to_dict(db_url)["dbname"] in settings_line["database_url"]
    for word in hidden:
        assert word not in text, f"{word!r} in the log of the {form} form"


def test_an_unreachable_database_never_logs_the_password(tmp_path):
    # `run` checks the database before it starts (worker/db/preflight.py) and refuses with one
    # line naming where it tried, the password masked; psycopg's own messages never get out
    url = f"host=127.0.0.1 port=1 user=app dbname=app password={PLAIN_PW} connect_timeout=2"
    env = {"DATABASE_URL": url, "PORT": "0", "LOG_FORMAT": "json", "POLL_INTERVAL": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "run", "--no-migrate"],
        cwd=ROOT,
        env={**os.environ, **env, "VIDEO_WORKER_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "cannot connect to DATABASE_URL" in text, text
    assert "app@127.0.0.1:1/app" in text and PLAIN_PW not in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("url", "pieces"),
    [
        ("postgresql://app:Hunter2Sekr3t@[::1/db", ["Hunter2Sekr3t"]),
        ("host=db password=Hunter2 Sekr3tTail dbname", ["Hunter2", "Sekr3tTail"]),
        ("host=db password='Hunter2 Sekr3t", ["Hunter2", "Sekr3t"]),
    ],
)
def test_a_malformed_url_is_refused_at_start_with_the_password_masked(tmp_path, url, pieces):
    with pytest.raises(
        SettingsError, match="DATABASE_URL is not a Postgres connection string"
    ) as caught:
        Settings.from_env({"DATABASE_URL": url})
    assert all(piece not in str(caught.value) for piece in pieces)
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "run"],
        cwd=ROOT,
        env={"DATABASE_URL": url, "VIDEO_WORKER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "DATABASE_URL is not a Postgres connection string" in out
    assert "Traceback" not in out
    assert all(piece not in out for piece in pieces), out


def test_library_log_lines_and_odd_fields_are_masked():
    import logging

    out = io.StringIO()
    worker_log.configure("json", ["Sekr3tValue"], stream=out)
    try:
        logging.getLogger("psycopg.pool").warning("error connecting: password Sekr3tValue")
        worker_log.get_logger().warning(
            "odd_fields",
            nested={"deep": ["x Sekr3tValue y"]},
            exc=RuntimeError("Sekr3tValue"),
            path=Path("/srv/Sekr3tValue"),
        )
    finally:
        worker_log.configure("console")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [x["event"] for x in lines] == ["library_log", "odd_fields"]
    assert lines[0]["logger"] == "psycopg.pool" and "***" in lines[0]["message"]
    assert "Sekr3tValue" not in out.getvalue()


# ---- row errors -------------------------------------------------------------------------


def test_row_error_sentences():
    home = Path("/var/lib/video-worker")
    try:
        open("/tmp/" + "x" * 300)  # a real OSError, filename and all
    except OSError as exc:
        text = row_error(exc, home)
    assert text == UNEXPECTED.format(kind="OSError: File name too long")
    own = StorageError("could not write /var/lib/video-worker/storage/b/k.mp4: disk full")
    assert row_error(own, home) == f"could not write {PATH_MARK}: disk full"
    quoted = StorageError(
        "local storage could not write v.mp4: [Errno 21] Is a directory: "
        "'/var/lib/video-worker/storage/b/v.mp4' -> '/var/lib/video-worker/storage/b/.v.part'"
    )
    assert row_error(quoted, home) == "local storage could not write v.mp4: Is a directory"
    user_words = PermanentError("clips[0]: https://example.com/tmp/a.mp4 returned 404")
    assert row_error(user_words, home) == str(user_words)  # a URL's path is not ours


async def test_an_unexpected_oserror_shows_no_path_on_the_row(store, tmp_path):
    home = tmp_path / "home"

    async def handler(job, ctx):
        (home / "storage").mkdir(parents=True, exist_ok=True)
        (home / "storage" / ("x" * 300)).write_bytes(b"")  # File name too long

    job_id, _ = await store.enqueue({}, max_attempts=1)
    async with running(store, handler, home=home):
        row = await status_is(store, job_id, "failed")
    assert row["error"] == UNEXPECTED.format(kind="OSError: File name too long")
    assert "/" not in row["error"]


async def test_an_ffmpeg_failure_shows_no_stderr_and_no_path_on_the_row(store, tmp_path):
    home = tmp_path / "home"
    out = io.StringIO()

    async def handler(job, ctx):
        target = home / "tmp" / "out.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        args = ["-f", "lavfi", "-i", "testsrc2=d=1", "-vf", "no_such_filter", str(target)]
        await run_ffmpeg(args, expected_duration=1.0, on_progress=None)

    job_id, _ = await store.enqueue({}, max_attempts=1)
    worker_log.configure("json", stream=out)
    try:
        async with running(store, handler, home=home):
            row = await status_is(store, job_id, "failed")
    finally:
        worker_log.configure("console")
    error = row["error"]
    assert error.startswith("FFmpeg failed while making the video (exit status ")
    assert "no_such_filter" not in error and str(tmp_path) not in error and "/" not in error
    # the detail is in the operator's log
    [failed] = [json.loads(x) for x in out.getvalue().splitlines() if "job_attempt_failed" in x]
    assert "no_such_filter" in failed["exception"] and failed["error"] == error
