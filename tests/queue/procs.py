"""Worker replicas as real processes (`python -m worker run`), for crash and deploy tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class Replica:
    def __init__(
        self,
        db_url: str,
        name: str,
        tmp: Path,
        *,
        handler: str = "tests.handlers:scripted",
        args: Sequence[str] = (),
        **env: Any,
    ) -> None:
        self.name = name
        self.log_path = tmp / f"{name}.log"
        settings = {
            "DATABASE_URL": db_url,
            "WORKER_ID": name,
            "PORT": "0",
            "LOG_FORMAT": "json",
            "LEASE_SECONDS": "2",
            "POLL_INTERVAL": "200",
            "RETRY_BASE_MS": "50",
            "VW_RUN_LOG": str(tmp / "runs.log"),
            "VIDEO_WORKER_HOME": str(tmp / "home"),
        }
        settings.update({k: str(v) for k, v in env.items()})
        full_env = {**os.environ, **settings, "PYTHONPATH": str(ROOT)}
        self.log_file = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "run", "--handler", handler, *args],
            cwd=ROOT,
            env=full_env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def wait_event(self, name: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get("event") == name and all(event.get(k) == v for k, v in match.items()):
                    return event
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited {self.proc.returncode}:\n"
                    + self.log_path.read_text()[-3000:]
                )
            time.sleep(0.05)
        raise AssertionError(
            f"{self.name}: no {name} {match} within {timeout} s:\n"
            + self.log_path.read_text()[-3000:]
        )

    def port(self) -> int:
        return int(self.wait_event("http_listening")["port"])

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def terminate_timed(self, timeout: float = 30.0) -> float:
        """SIGTERM, as a deploy sends it; the seconds until the process exited 0."""
        t0 = time.monotonic()
        self.signal(signal.SIGTERM)
        code = self.wait(timeout)
        assert code == 0, f"{self.name} exited {code}:\n" + self.log_path.read_text()[-3000:]
        return time.monotonic() - t0

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.log_file.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def runs(tmp: Path) -> list[tuple[str, int, str]]:
    path = tmp / "runs.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        job_id, attempt, worker = line.split()
        out.append((job_id, int(attempt), worker))
    return out


class OwnPostgres:
    """An embedded Postgres of a test's own, which the test may stop and start at will.

    Its data folder is a temporary folder of its own under the system's temp dir, not under
    pytest's `tmp_path`: run as root, pgserver starts Postgres as the user `pgserver`, which
    must be able to reach the folder, and pytest keeps its folders private to their owner.
    """

    def __init__(self) -> None:
        import tempfile

        import pgserver

        self._tmp = tempfile.TemporaryDirectory(prefix="vw-own-pg-")
        self.server = pgserver.get_server(Path(self._tmp.name) / "pgdata", cleanup_mode="delete")
        self.url: str = self.server.get_uri()

    def stop(self) -> None:
        """A fast shutdown, as a restart does: clients are disconnected, nothing is lost."""
        from pgserver._commands import pg_ctl

        pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user
        )

    def start(self) -> None:
        """Start it again with its own socket and options. On a loaded machine pg_ctl sometimes
        reports a failed start while the old postmaster is still letting go: retry."""
        for attempt in range(5):
            try:
                self.server.ensure_postgres_running()
                return
            except subprocess.CalledProcessError:
                if attempt == 4:
                    raise
                time.sleep(1)

    def close(self) -> None:
        try:
            self.server.cleanup()  # stops it (if running) and removes the data folder
        finally:
            self._tmp.cleanup()
