"""The embedded database's lifetime, with real processes and real signals.

Every test here checks that the servers it caused to start are stopped again (no postgres
process for its pgdata remains, and the handle list is empty), and stops any left over in
`finally` so that a failing test leaks nothing either.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import psutil
import pytest

from tests.queue.procs import ROOT
from worker.db.preflight import deployment
from worker.settings import Settings

DEADLINE = 60.0


def env_for(home: Path | None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {"DATABASE_URL", "VIDEO_WORKER_HOME", "S3_BUCKET", "STORAGE_BACKEND"}
        | set(PLATFORM_VARS)
    }
    env.update(PYTHONPATH=str(ROOT), LOG_FORMAT="json", PORT="0")
    if home is not None:
        env["VIDEO_WORKER_HOME"] = str(home)
    env.update(extra)
    return env


PLATFORM_VARS = ["RENDER", "KUBERNETES_SERVICE_HOST", "FLY_APP_NAME", "DYNO"]


def servers_on(pgdata: Path) -> list[psutil.Process]:
    """Running postgres postmasters whose data folder is `pgdata`."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata.resolve()) in cmdline:
            found.append(proc)
    return found


def handles(pgdata: Path) -> list[int]:
    path = pgdata / ".handle_pids.json"
    return json.loads(path.read_text()) if path.exists() else []


def wait_until(check, timeout: float = DEADLINE) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.05)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder outside pytest's basetemp: run as root, pgserver runs postgres as another
    user and opens the folder's parents to it, and a concurrent pytest session resets its
    basetemp to mode 0700 (as tests/pg.py does, for the same reason)."""
    with tempfile.TemporaryDirectory(prefix="vw-cli-") as tmp:
        yield Path(tmp)


@pytest.fixture
def home(scratch: Path) -> Iterator[Path]:
    home = scratch / "home"
    try:
        yield home
    finally:
        for proc in servers_on(home / "pgdata"):  # only after a failure: never leak a server
            proc.terminate()
            proc.wait(10)


def start(home: Path | None, *args: str, cwd: Path = ROOT, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        cwd=cwd,
        env=env_for(home, **env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(proc: subprocess.Popen[str], stream: str, needle: str) -> str:
    """Text of stdout or stderr up to the line that contains `needle` (within the deadline).

    Reads the file descriptor itself: a text wrapper's readline may buffer lines that a
    select() on the descriptor then never reports."""
    fd = getattr(proc, stream).fileno()
    seen = b""
    deadline = time.monotonic() + DEADLINE
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while time.monotonic() < deadline and needle.encode() not in seen:
            if sel.select(0.2):
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                seen += chunk
    text = seen.decode(errors="replace")
    if needle not in text:
        raise AssertionError(f"no {needle!r} on {stream} (exit {proc.poll()}); saw:\n{text}")
    return text


def run_cli(home: Path | None, *args: str, cwd: Path = ROOT, **env: str):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=cwd,
        env=env_for(home, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


def test_the_default_home_is_one_folder_per_user_wherever_the_command_runs(scratch):
    tmp_path = scratch
    assert Settings.from_env({}).home == Path(platformdirs.user_data_dir("video-worker"))
    assert Settings.from_env({}).home.is_absolute()
    assert Settings.from_env({"VIDEO_WORKER_HOME": "rel/dir"}).home.is_absolute()
    data = tmp_path / "xdg"
    pgdata = data / "video-worker" / "pgdata"
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    try:
        migrated = run_cli(None, "migrate", cwd=one, XDG_DATA_HOME=str(data))
        assert migrated.returncode == 0, migrated.stderr
        assert f"database: embedded Postgres in {pgdata}" in migrated.stderr
        # from another folder: the same, migrated database (before: a second, empty one)
        status = run_cli(None, "status", cwd=two, XDG_DATA_HOME=str(data))
        assert status.returncode == 0 and status.stdout.startswith("pending 0"), status.stderr
        assert not (one / ".video-worker").exists() and not (two / ".video-worker").exists()
        assert servers_on(pgdata) == [] and handles(pgdata) == []
    finally:
        for proc in servers_on(pgdata):
            proc.terminate()


def test_no_server_outlives_a_command_ended_by_sigterm_sighup_or_sigkill(home):
    """SIGTERM and SIGHUP: the command stops the server itself. SIGKILL: nothing can run in
    the process, so its handle stays behind; the next command prunes it and, being the last
    user, stops the server the killed one leaked."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGKILL):
        proc = start(home, "enqueue", "https://cdn.example.com/a.mp4", "--wait")
        try:
            read_until(proc, "stdout", "enqueued ")
            assert len(servers_on(home / "pgdata")) == 1
            proc.send_signal(sig)
            assert proc.wait(DEADLINE) == (128 + sig if sig != signal.SIGKILL else -sig)
        finally:
            proc.kill()
            proc.wait()
        assert "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
        if sig == signal.SIGKILL:
            assert len(servers_on(home / "pgdata")) == 1
            assert handles(home / "pgdata") == [proc.pid]
            after = run_cli(home, "status")
            assert after.returncode == 0 and after.stdout.startswith("pending 3"), after.stderr
        assert servers_on(home / "pgdata") == [] and handles(home / "pgdata") == [], sig


def test_run_refuses_the_embedded_database_without_a_terminal(home):
    proc = run_cli(home, "run")
    assert proc.returncode == 2
    assert "DATABASE_URL is not set" in proc.stderr and "no terminal" in proc.stderr
    assert "--embedded-ok" in proc.stderr and "ALLOW_EMBEDDED_DATABASE=true" in proc.stderr
    assert not (home / "pgdata").exists()  # refused before the server was started


def test_run_refuses_the_embedded_database_on_a_container_platform(home):
    proc = run_cli(home, "run", RENDER="true")
    assert proc.returncode == 2 and "Render (RENDER is set)" in proc.stderr
    assert not (home / "pgdata").exists()
    for variable, platform in [
        ("KUBERNETES_SERVICE_HOST", "Kubernetes"),
        ("FLY_APP_NAME", "Fly.io"),
        ("DYNO", "Heroku"),
    ]:
        assert deployment({variable: "x"}) == f"{platform} ({variable} is set)"


def test_run_on_the_embedded_database_when_allowed_then_stopped_by_a_signal(home):
    """--embedded-ok (or ALLOW_EMBEDDED_DATABASE) runs it, with a warning naming the
    database; SIGTERM and SIGHUP stop the worker gracefully and the server with it."""
    args = ["run", "--handler", "tests.handlers:scripted"]
    for sig, proc in [
        (signal.SIGTERM, lambda: start(home, *args, "--embedded-ok")),
        (signal.SIGHUP, lambda: start(home, *args, ALLOW_EMBEDDED_DATABASE="true")),
    ]:
        worker = proc()
        try:
            seen = read_until(worker, "stderr", "http_listening")
            assert '"event": "embedded_database"' in seen and str(home / "pgdata") in seen
            assert len(servers_on(home / "pgdata")) == 1
            worker.send_signal(sig)
            assert worker.wait(DEADLINE) == 0
        finally:
            worker.kill()
            worker.wait()
        assert servers_on(home / "pgdata") == [] and handles(home / "pgdata") == [], sig


async def test_the_demo_gets_a_database_of_its_own_on_the_embedded_server(home):
    """`demo` enqueues into `video_worker_demo`, never into the database a local worker on the
    same home uses, created once and found again."""
    from psycopg.conninfo import conninfo_to_dict

    from worker.db.embedded import embedded_database_url, embedded_url, stop_all

    try:
        url = await embedded_database_url(home, "video_worker_demo")
        assert conninfo_to_dict(url)["dbname"] == "video_worker_demo"
        assert conninfo_to_dict(embedded_url(home))["dbname"] != "video_worker_demo"
        assert await embedded_database_url(home, "video_worker_demo") == url
    finally:
        stop_all()
