"""deploy/kubernetes: every overlay renders with kubectl's own kustomize, and every object it makes
is valid offline: built-in kinds against the Kubernetes schemas (kubernetes-validate, strict),
KEDA's against the schema in deploy/kubernetes/schemas/. Then what the manifests promise: the same
commands, users and settings as docker-compose.yml, restricted pods, Secrets that exist, and KEDA
triggers that count what trainq queues (checked against the real Redis and PostgreSQL).

No cluster is needed: nothing here is applied anywhere (docs/cluster.md says what was not run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from storage import Database, Repository, Settings
from storage.records import JobKind
from tests.services import (
    REDIS_HOST,
    REDIS_PORT,
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_postgres,
    require_redis,
)
from worker.queues import ALL_QUEUES

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("small", "external")
KEDA_SCHEMAS = KUBERNETES / "schemas" / "keda-2.16"
#: The oldest and the newest Kubernetes release the manifests are checked against.
KUBERNETES_VERSIONS = ("1.29", "1.37")
#: A Redis database no other test uses (the harness takes 11, or TRAINQ_TEST_REDIS_DB), for the
#: list-name check.
REDIS_TEST_DB = 7

Object = dict[str, Any]


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        message = "kubectl is not installed (the dev extra installs it: pip install -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _render(overlay: str, workdir: Path) -> list[Object]:
    """``kubectl kustomize`` of ``overlay``, in a copy of deploy/kubernetes whose secrets/ are
    the committed examples (the real ones are never in git)."""
    tree = workdir / "kubernetes"
    shutil.copytree(KUBERNETES, tree, ignore=shutil.ignore_patterns("secrets"))
    shutil.copytree(
        tree / "overlays" / overlay / "secrets.example", tree / "overlays" / overlay / "secrets"
    )
    result = subprocess.run(
        [_kubectl(), "kustomize", str(tree / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize overlays/{overlay} failed:\n{result.stderr}"
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[Object]:
    """Every object one overlay makes."""
    return _render(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> list[Object]:
    """Every object the small overlay (in-cluster Redis and PostgreSQL) makes."""
    return _render("small", tmp_path_factory.mktemp("small-only"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as written (its x- anchors resolved by the YAML parser)."""
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded["services"]


def _of_kind(objects: list[Object], kind: str) -> list[Object]:
    return [item for item in objects if item["kind"] == kind]


def _named(objects: list[Object], kind: str, name: str) -> Object:
    (found,) = [item for item in _of_kind(objects, kind) if item["metadata"]["name"] == name]
    return found


def _pod_templates(objects: list[Object]) -> Iterator[tuple[str, Object]]:
    for item in objects:
        if item["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield item["metadata"]["name"], item["spec"]["template"]


def _containers(pod: Object) -> list[Object]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def _main_container(objects: list[Object], kind: str, name: str) -> Object:
    container: Object = _named(objects, kind, name)["spec"]["template"]["spec"]["containers"][0]
    return container


def _keda_schema(kind: str) -> dict[str, Any]:
    path = KEDA_SCHEMAS / f"{kind.lower()}-keda-v1alpha1.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


# --- rendering and schemas ---------------------------------------------------------------------


def test_every_overlay_renders_the_whole_install(rendered: list[Object]) -> None:
    kinds = {item["kind"] for item in rendered}
    assert {
        "Namespace",
        "Job",
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "NetworkPolicy",
        "ScaledObject",
        "TriggerAuthentication",
    } <= kinds
    assert {item["metadata"].get("namespace", "trainq") for item in rendered} == {"trainq"}


def test_every_built_in_object_is_valid_for_the_oldest_and_newest_kubernetes(
    rendered: list[Object],
) -> None:
    import kubernetes_validate

    checked = 0
    for item in rendered:
        if item["apiVersion"].startswith("keda.sh/"):
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(item, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = "/".join(str(part) for part in error.path)
                pytest.fail(
                    f"{item['kind']}/{item['metadata']['name']} ({version}) {path}: {error.message}"
                )
            checked += 1
    assert checked >= len(KUBERNETES_VERSIONS) * 15  # every built-in object, none skipped


def test_every_keda_object_is_valid_against_kedas_schema(rendered: list[Object]) -> None:
    keda = [item for item in rendered if item["apiVersion"].startswith("keda.sh/")]
    assert {item["kind"] for item in keda} == {"ScaledObject", "TriggerAuthentication"}
    for item in keda:
        jsonschema.validate(item, _keda_schema(item["kind"]), cls=jsonschema.Draft202012Validator)


def test_kedas_schema_refuses_a_misspelt_field_and_an_unknown_scaler_parameter(
    small: list[Object],
) -> None:
    scaled = _named(small, "ScaledObject", "trainq-worker-cpu")
    schema = _keda_schema("ScaledObject")
    misspelt = json.loads(json.dumps(scaled))
    misspelt["spec"]["cooldownPeriods"] = 300
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(misspelt, schema, cls=jsonschema.Draft202012Validator)
    unknown = json.loads(json.dumps(scaled))
    unknown["spec"]["triggers"][0]["metadata"]["listname"] = "train"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(unknown, schema, cls=jsonschema.Draft202012Validator)


def test_every_secret_and_config_map_a_pod_or_trigger_names_is_rendered(
    rendered: list[Object],
) -> None:
    secrets = {item["metadata"]["name"] for item in _of_kind(rendered, "Secret")}
    config_maps = {item["metadata"]["name"] for item in _of_kind(rendered, "ConfigMap")}
    named_secrets: set[str] = set()
    named_config_maps: set[str] = set()
    for _, pod in _pod_templates(rendered):
        for container in _containers(pod):
            for source in container.get("envFrom", []):
                named_config_maps.add(source["configMapRef"]["name"])
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {})
                if "secretKeyRef" in reference:
                    named_secrets.add(reference["secretKeyRef"]["name"])
                if "configMapKeyRef" in reference:
                    named_config_maps.add(reference["configMapKeyRef"]["name"])
        for volume in pod["spec"].get("volumes", []):
            if "configMap" in volume:
                named_config_maps.add(volume["configMap"]["name"])
    for authentication in _of_kind(rendered, "TriggerAuthentication"):
        named_secrets |= {ref["name"] for ref in authentication["spec"]["secretTargetRef"]}
    assert named_secrets and named_secrets <= secrets
    assert named_config_maps and named_config_maps <= config_maps


def test_no_password_is_committed_only_the_examples_are() -> None:
    for overlay in OVERLAYS:
        directory = KUBERNETES / "overlays" / overlay
        assert (directory / ".gitignore").read_text().split() == ["secrets/"]
        for example in (directory / "secrets.example").iterdir():
            values = dict(line.split("=", 1) for line in example.read_text().split())
            assert values["password"].startswith("REPLACE-WITH"), example


# --- the same cluster as docker-compose.yml ----------------------------------------------------


def test_workers_dashboard_and_migration_run_compose_s_commands(
    small: list[Object], compose: dict[str, Any]
) -> None:
    pairs = {
        ("Deployment", "trainq-worker-cpu"): "worker",
        ("Deployment", "trainq-worker-gpu"): "worker-gpu",
        ("Deployment", "trainq-dashboard"): "dashboard",
        ("Job", "trainq-migrate"): "migrate",
    }
    for (kind, name), service in pairs.items():
        assert _main_container(small, kind, name)["command"] == compose[service]["command"], name


def test_redis_and_postgres_run_compose_s_images_settings_and_role_scripts(
    small: list[Object], compose: dict[str, Any]
) -> None:
    redis_container = _main_container(small, "StatefulSet", "trainq-redis")
    assert redis_container["image"] == "redis:7-bookworm"
    assert redis_container["args"] == compose["redis"]["command"]
    assert (
        _main_container(small, "StatefulSet", "trainq-postgres")["image"] == "postgres:16-bookworm"
    )
    component = KUBERNETES / "components" / "in-cluster-services"
    assert (component / "redis-entrypoint.sh").read_bytes() == (
        ROOT / "deploy" / "redis" / "entrypoint.sh"
    ).read_bytes()
    originals = sorted((ROOT / "deploy" / "postgres" / "initdb").iterdir())
    copies = sorted((component / "initdb").iterdir())
    assert [path.name for path in copies] == [path.name for path in originals]
    assert all(
        copy.read_bytes() == original.read_bytes()
        for copy, original in zip(copies, originals, strict=True)
    )


def test_every_store_keeps_its_data_on_a_volume_claim(small: list[Object]) -> None:
    for name, mount in (("trainq-redis", "/data"), ("trainq-postgres", "/var/lib/postgresql/data")):
        stateful = _named(small, "StatefulSet", name)
        (claim,) = stateful["spec"]["volumeClaimTemplates"]
        mounts = stateful["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        assert {"name": claim["metadata"]["name"], "mountPath": mount} in mounts


def test_the_dashboard_logs_in_as_the_select_only_role_and_holds_no_broker_password(
    rendered: list[Object],
) -> None:
    endpoints = _endpoints(rendered)
    container = _main_container(rendered, "Deployment", "trainq-dashboard")
    variables = {variable["name"]: variable for variable in container["env"]}
    assert variables["TRAINQ_DATABASE_URL"]["value"].startswith(
        "postgresql+psycopg://$(POSTGRES_DASHBOARD_USER):"
    )
    assert endpoints["POSTGRES_DASHBOARD_USER"] == "trainq_dashboard"
    assert "TRAINQ_BROKER_URL" not in variables
    assert not any("trainq-redis" in json.dumps(variable) for variable in container["env"])


def test_a_stopping_worker_gets_compose_s_grace_for_its_hand_back_and_no_delay_before_it(
    rendered: list[Object], compose: dict[str, Any]
) -> None:
    for name, service in (("trainq-worker-cpu", "worker"), ("trainq-worker-gpu", "worker-gpu")):
        pod = _named(rendered, "Deployment", name)["spec"]["template"]["spec"]
        grace = int(str(compose[service]["stop_grace_period"]).removesuffix("s"))
        assert pod["terminationGracePeriodSeconds"] == grace == 60
        assert "lifecycle" not in pod["containers"][0]  # a preStop sleep would take new jobs
        assert pod["shareProcessNamespace"] is True  # a PID 1 that reaps, as compose's tini


def test_the_gpu_worker_asks_for_one_gpu_on_a_gpu_node(rendered: list[Object]) -> None:
    pod = _named(rendered, "Deployment", "trainq-worker-gpu")["spec"]["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] and pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    cpu_pod = _named(rendered, "Deployment", "trainq-worker-cpu")["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in cpu_pod["containers"][0]["resources"]["limits"]


# --- restricted pods ----------------------------------------------------------------------------


def test_every_pod_meets_the_restricted_pod_security_standard(rendered: list[Object]) -> None:
    namespace = _named(rendered, "Namespace", "trainq")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, pod in _pod_templates(rendered):
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["enableServiceLinks"] is False, name  # no TRAINQ_*_PORT=tcp://… variables
        for container in _containers(pod):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, container["name"])


def test_every_container_has_requests_and_limits_and_every_server_its_probes(
    rendered: list[Object],
) -> None:
    for name, pod in _pod_templates(rendered):
        for container in _containers(pod):
            resources = container["resources"]
            for key in ("cpu", "memory"):
                assert key in resources["requests"] and key in resources["limits"], (name, key)
        main = pod["spec"]["containers"][0]
        if name != "trainq-migrate":
            assert "livenessProbe" in main, name
    worker = _main_container(rendered, "Deployment", "trainq-worker-cpu")
    assert "inspect ping" in worker["livenessProbe"]["exec"]["command"][-1]
    assert "startupProbe" in worker


# --- network policies ---------------------------------------------------------------------------


def _selects(policy: Object, labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(key) == value for key, value in wanted.items())


def _allowed_ports(policies: list[Object], labels: dict[str, str], direction: str) -> set[int]:
    ports: set[int] = set()
    for policy in policies:
        if _selects(policy, labels):
            for rule in policy["spec"].get(direction, []):
                ports |= {port["port"] for port in rule.get("ports", [])}
    return ports


def test_by_default_nothing_moves_and_each_pod_reaches_only_its_servers(
    rendered: list[Object],
) -> None:
    policies = _of_kind(rendered, "NetworkPolicy")
    deny = _named(rendered, "NetworkPolicy", "trainq-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    labels = {name: pod["metadata"]["labels"] for name, pod in _pod_templates(rendered)}
    assert _allowed_ports(policies, labels["trainq-worker-cpu"], "egress") == {53, 5432, 6379}
    assert _allowed_ports(policies, labels["trainq-worker-gpu"], "egress") == {53, 5432, 6379}
    assert _allowed_ports(policies, labels["trainq-dashboard"], "egress") == {53, 5432}
    assert _allowed_ports(policies, labels["trainq-migrate"], "egress") == {53, 5432}
    assert _allowed_ports(policies, labels["trainq-dashboard"], "ingress") == {8050}
    assert _allowed_ports(policies, labels["trainq-worker-cpu"], "ingress") == set()


def test_the_in_cluster_servers_take_their_clients_and_kedas_operator_only(
    small: list[Object],
) -> None:
    for name, port, client_label in (
        ("trainq-redis-ingress", 6379, "trainq.io/redis-client"),
        ("trainq-postgres-ingress", 5432, "trainq.io/postgres-client"),
    ):
        (rule,) = _named(small, "NetworkPolicy", name)["spec"]["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]
        sources = [source["podSelector"]["matchLabels"] for source in rule["from"]]
        assert sources == [{client_label: "true"}, {"app": "keda-operator"}]


# --- KEDA: trainq's own queue depth --------------------------------------------------------------


def _endpoints(objects: list[Object]) -> dict[str, str]:
    (config_map,) = [
        item
        for item in _of_kind(objects, "ConfigMap")
        if item["metadata"]["name"].startswith("trainq-endpoints")
    ]
    data: dict[str, str] = config_map["data"]
    return data


def _queues_consumed(container: Object) -> set[str]:
    command: list[str] = container["command"]
    return set(command[command.index("--queues") + 1].split(","))


def test_every_queue_scales_the_one_deployment_that_consumes_it(rendered: list[Object]) -> None:
    seen: list[str] = []
    for scaled in _of_kind(rendered, "ScaledObject"):
        target = scaled["spec"]["scaleTargetRef"]["name"]
        consumed = _queues_consumed(_main_container(rendered, "Deployment", target))
        lists = [
            t["metadata"]["listName"] for t in scaled["spec"]["triggers"] if t["type"] == "redis"
        ]
        assert set(lists) == consumed, target
        seen += lists
        spec = scaled["spec"]
        assert spec["minReplicaCount"] == 0  # nothing queued or running: no pod
        names = [trigger["name"] for trigger in spec["triggers"]]
        assert spec["advanced"]["scalingModifiers"]["formula"] == " + ".join(names)
        down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        assert down["stabilizationWindowSeconds"] >= 300
    assert sorted(seen) == sorted(ALL_QUEUES)


def test_keda_reaches_the_same_servers_as_the_workers(rendered: list[Object]) -> None:
    endpoints = _endpoints(rendered)
    in_cluster = "." not in endpoints["REDIS_HOST"]
    suffix = ".trainq.svc.cluster.local" if in_cluster else ""  # KEDA runs in its own namespace
    for scaled in _of_kind(rendered, "ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            metadata = trigger["metadata"]
            if trigger["type"] == "redis":
                assert (
                    metadata["address"]
                    == f"{endpoints['REDIS_HOST']}{suffix}:{endpoints['REDIS_PORT']}"
                )
                assert metadata["databaseIndex"] == endpoints["REDIS_DB"]
            else:
                assert metadata["host"] == f"{endpoints['POSTGRES_HOST']}{suffix}"
                assert metadata["port"] == endpoints["POSTGRES_PORT"]
                assert metadata["dbName"] == endpoints["POSTGRES_DB"]
                assert metadata["sslmode"] == endpoints["POSTGRES_SSLMODE"]
                assert metadata["userName"] == endpoints["POSTGRES_DASHBOARD_USER"]


def _running_query(objects: list[Object], deployment: str) -> str:
    scaled = _named(objects, "ScaledObject", deployment)
    (query,) = [
        t["metadata"]["query"] for t in scaled["spec"]["triggers"] if t["type"] == "postgresql"
    ]
    return str(query)


@pytest.fixture
def keda_database() -> Iterator[Database]:
    """A migrated PostgreSQL database of its own, dropped after the test."""
    require_postgres()
    name = f"trainq_test_keda_{os.getpid()}"
    create_postgres_database(name)
    database = Database(postgres_url(name))
    database.upgrade()
    yield database
    database.dispose(close=True)
    drop_postgres_database(name)


@pytest.mark.postgres
def test_the_running_trigger_counts_jobs_that_hold_a_worker_or_have_no_message(
    small: list[Object], keda_database: Database
) -> None:
    import psycopg

    repository = Repository(keda_database)

    def run(queue: str) -> int:
        return repository.create_run(
            kind=JobKind.TRAIN, config={}, seed=1, queue=queue, max_attempts=3
        ).id

    published = run("train")
    repository.mark_published(published)  # its message is in the list: counted there
    run("train")  # QUEUED, never published (the broker was down): counted here
    running = run("train")
    assert repository.claim_run(running, owner="w", worker_host="h", lease_ttl_s=60) is not None
    evaluation = repository.create_evaluation_job(
        run_id=running, checkpoint_step=None, split="test", queue="eval", max_attempts=3
    )
    assert repository.claim_evaluation_job(
        evaluation.id, owner="w", worker_host="h", lease_ttl_s=60
    )
    gpu = run("gpu")
    assert repository.claim_run(gpu, owner="g", worker_host="h", lease_ttl_s=60) is not None
    cancelled = repository.cancel_job(run("train"), kind=JobKind.TRAIN)
    assert cancelled.status.terminal  # a QUEUED run cancelled never published: not counted

    database_name = f"trainq_test_keda_{os.getpid()}"
    with psycopg.connect(postgres_url(database_name).replace("+psycopg", "")) as connection:
        cpu_count = connection.execute(_running_query(small, "trainq-worker-cpu")).fetchone()
        gpu_count = connection.execute(_running_query(small, "trainq-worker-gpu")).fetchone()
    assert cpu_count == (3,)  # the unpublished run, the running run, the running evaluation
    assert gpu_count == (1,)


@pytest.mark.redis
def test_a_published_job_lands_in_the_list_its_scaled_object_watches(
    small: list[Object], tmp_path: Path
) -> None:
    import redis

    from storage.records import RunStatus
    from worker.cluster.publisher import Dispatcher

    require_redis()
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_TEST_DB)
    client.delete(*ALL_QUEUES)
    settings = Settings.from_env(
        {
            "TRAINQ_BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}",
            "TRAINQ_HOME": str(tmp_path),
        }
    )
    database = Database(settings.database_url)
    database.upgrade()
    repository = Repository(database)
    watched = {
        trigger["metadata"]["listName"]
        for scaled in _of_kind(small, "ScaledObject")
        for trigger in scaled["spec"]["triggers"]
        if trigger["type"] == "redis"
    }
    dispatcher = Dispatcher(settings)
    try:
        for queue in ALL_QUEUES:
            stored = repository.create_run(
                kind=JobKind.TRAIN, config={}, seed=1, queue=queue, max_attempts=3
            )
            assert stored.status is RunStatus.QUEUED
            dispatcher.publish(repository, stored)
        assert {name: client.llen(name) for name in watched} == dict.fromkeys(ALL_QUEUES, 1)
    finally:
        dispatcher.close()
        database.dispose(close=True)
        client.delete(*ALL_QUEUES)
        client.close()


def test_the_kubernetes_docs_say_that_nothing_ran_on_a_live_cluster() -> None:
    text = (ROOT / "docs" / "cluster.md").read_text()
    section = text[text.index("## Kubernetes") :]
    assert re.search(r"not (been )?(run|applied) on a live cluster", section, re.IGNORECASE)
