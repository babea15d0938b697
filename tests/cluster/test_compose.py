"""docker-compose.yml holds the settings reliability.md asks for (Redis table, soft shutdown,
S1-S4), checked on the configuration Docker Compose itself resolves; no Docker engine needed."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.cluster.compose import (
    COMPOSE_FILE,
    HOST_OVERRIDE_FILE,
    REPO_ROOT,
    TEST_SECRETS,
    ComposeConfig,
    environment_of,
    named_volumes,
    published_ports,
    raw_config,
    resolved_config,
    run_compose_config,
    worker_command,
    worker_stop_settings,
)

ENV_EXAMPLE = REPO_ROOT / ".env.example"
SERVICES = {"redis", "postgres", "migrate", "worker", "worker-gpu", "flower", "dashboard", "cli"}
WORKER_SERVICES = ("worker", "worker-gpu")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH", re.IGNORECASE)


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert isinstance(command, list), f"command must be an argv list, got {command!r}"
    return [str(arg) for arg in command]


def redis_options(config: ComposeConfig) -> dict[str, str]:
    """``--name value`` pairs after ``redis-server`` in the redis service's command."""
    command = command_of(config["services"]["redis"])
    assert command[0] == "redis-server"
    pairs = zip(command[1::2], command[2::2], strict=True)
    return {name.removeprefix("--"): value for name, value in pairs}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service["depends_on"].items()}


def test_compose_accepts_the_file_when_every_secret_is_set(config: ComposeConfig) -> None:
    assert set(config["services"]) == SERVICES


@pytest.mark.usefixtures("compose_installed")
@pytest.mark.parametrize("name", sorted(TEST_SECRETS))
@pytest.mark.parametrize("how", ["missing", "empty"])
def test_compose_refuses_a_missing_secret_and_says_where_to_set_it(name: str, how: str) -> None:
    variables = {key: value for key, value in TEST_SECRETS.items() if key != name}
    if how == "empty":
        variables[name] = ""

    result = run_compose_config(variables)

    assert result.returncode != 0
    assert f"set {name}" in result.stderr
    assert ".env" in result.stderr


def test_redis_appends_every_write_to_a_file_fsynced_every_second(config: ComposeConfig) -> None:
    options = redis_options(config)

    assert options["appendonly"] == "yes"
    assert options["appendfsync"] == "everysec"
    assert options["no-appendfsync-on-rewrite"] == "no"


def test_redis_never_evicts_queue_keys(config: ComposeConfig) -> None:
    assert redis_options(config)["maxmemory-policy"] == "noeviction"


def test_redis_and_postgres_keep_their_data_in_named_volumes(config: ComposeConfig) -> None:
    redis_volume = named_volumes(config["services"]["redis"])["/data"]
    postgres_volume = named_volumes(config["services"]["postgres"])["/var/lib/postgresql/data"]

    assert {redis_volume, postgres_volume} <= set(config["volumes"])


def test_redis_requires_the_app_users_password_and_keeps_protected_mode_on(
    config: ComposeConfig,
) -> None:
    redis = config["services"]["redis"]
    options = redis_options(config)

    # The entrypoint renders the ACL (default user off, app user with this password's hash).
    assert "/usr/local/bin/trainq-redis-entrypoint.sh" in redis["entrypoint"]
    assert environment_of(redis)["REDIS_PASSWORD"] == TEST_SECRETS["REDIS_PASSWORD"]
    assert options["protected-mode"] == "yes"
    assert "requirepass" not in options


def test_redis_reports_healthy_only_when_the_app_user_can_log_in(config: ComposeConfig) -> None:
    test = " ".join(config["services"]["redis"]["healthcheck"]["test"])

    assert "redis-cli --user" in test
    assert "REDISCLI_AUTH=" in test
    assert "PONG" in test


def test_postgres_reports_healthy_only_when_it_accepts_tcp_connections(
    config: ComposeConfig,
) -> None:
    test = " ".join(config["services"]["postgres"]["healthcheck"]["test"])

    assert "pg_isready -h 127.0.0.1" in test


def test_only_flower_and_the_dashboard_publish_a_port_and_only_on_loopback(
    config: ComposeConfig,
) -> None:
    published = {
        name: published_ports(service)
        for name, service in config["services"].items()
        if published_ports(service)
    }

    assert sorted(published) == ["dashboard", "flower"]
    [flower_port] = published["flower"]
    assert flower_port.host_ip == "127.0.0.1"
    assert flower_port.target == "5555"
    [dashboard_port] = published["dashboard"]
    assert (dashboard_port.host_ip, dashboard_port.target) == ("127.0.0.1", "8050")


def test_the_dashboard_serves_on_every_container_address_as_the_read_only_role(
    config: ComposeConfig,
) -> None:
    dashboard = config["services"]["dashboard"]
    assert command_of(dashboard) == ["trainq", "dashboard", "--host", "0.0.0.0", "--port", "8050"]
    assert environment_of(dashboard)["TRAINQ_DATABASE_URL"] == (
        f"postgresql+psycopg://trainq_dashboard:{TEST_SECRETS['POSTGRES_DASHBOARD_PASSWORD']}"
        "@postgres:5432/trainq"
    )
    assert depends_on(dashboard) == {
        "postgres": "service_healthy",
        "migrate": "service_completed_successfully",
    }
    initdb = (REPO_ROOT / "deploy/postgres/initdb/20-trainq-dashboard-role.sql").read_text()
    assert "default_transaction_read_only = on" in initdb
    assert "GRANT SELECT ON TABLES TO trainq_dashboard" in initdb


@pytest.mark.usefixtures("compose_installed")
def test_the_host_override_publishes_redis_and_postgres_on_loopback_only() -> None:
    config = resolved_config(files=(COMPOSE_FILE, HOST_OVERRIDE_FILE))

    ports = {name: published_ports(service) for name, service in config["services"].items()}

    assert {port.target for port in ports["redis"]} == {"6379"}
    assert {port.target for port in ports["postgres"]} == {"5432"}
    assert {port.host_ip for service_ports in ports.values() for port in service_ports} == {
        "127.0.0.1"
    }


def test_migrate_upgrades_the_schema_once_postgres_is_healthy(config: ComposeConfig) -> None:
    migrate = config["services"]["migrate"]

    assert command_of(migrate) == ["trainq", "db", "upgrade"]
    assert depends_on(migrate) == {"postgres": "service_healthy"}
    assert migrate["restart"] == "no"
    # Alembic runs as the owner; everything else connects as the DML-only trainq_app role.
    assert environment_of(migrate)["TRAINQ_DATABASE_URL"].startswith(
        "postgresql+psycopg://postgres:"
    )


@pytest.mark.parametrize("name", [*WORKER_SERVICES, "cli"])
def test_workers_and_the_cli_wait_for_redis_postgres_and_the_migration(
    config: ComposeConfig, name: str
) -> None:
    assert depends_on(config["services"][name]) == {
        "redis": "service_healthy",
        "postgres": "service_healthy",
        "migrate": "service_completed_successfully",
    }


@pytest.mark.parametrize("name", WORKER_SERVICES)
def test_docker_stop_gives_a_worker_time_to_hand_its_run_back(
    config: ComposeConfig, name: str
) -> None:
    stop = worker_stop_settings(config, name)

    assert stop.stop_signal == "SIGTERM"
    # A warm shutdown: REMAP_SIGTERM=SIGQUIT would make it cold and kill the job mid-chunk.
    assert stop.remap_sigterm is None
    # The job hands back at its next chunk; one still starting up needs longer than that.
    assert stop.grace_s >= 30


@pytest.mark.parametrize("name", WORKER_SERVICES)
def test_workers_can_be_scaled_and_restart_on_their_own(config: ComposeConfig, name: str) -> None:
    service = config["services"][name]

    assert "container_name" not in service
    assert "hostname" not in service
    assert service["restart"] == "unless-stopped"


def test_the_worker_command_is_the_argv_list_the_integration_tests_start(
    config: ComposeConfig,
) -> None:
    assert worker_command() == command_of(config["services"]["worker"])
    assert worker_command() == ["trainq", "worker", "--queues", "train,eval", "--concurrency", "1"]


def test_the_gpu_worker_takes_the_gpu_queue_and_only_starts_on_demand(
    config: ComposeConfig,
) -> None:
    service = config["services"]["worker-gpu"]

    assert command_of(service)[:5] == ["trainq", "worker", "--queues", "gpu", "--device"]
    assert service["profiles"] == ["gpu"]
    assert service["build"]["args"]["TRAINQ_EXTRAS"] == "flower,gpu"


def test_the_cli_service_only_starts_on_demand(config: ComposeConfig) -> None:
    cli = config["services"]["cli"]

    assert cli["profiles"] == ["cli"]
    assert command_of(cli)[0] == "trainq"


@pytest.mark.parametrize("name", [*WORKER_SERVICES, "flower", "cli"])
def test_trainq_services_use_the_least_privileged_redis_and_postgres_users(
    config: ComposeConfig, name: str
) -> None:
    environment = environment_of(config["services"][name])

    assert environment["TRAINQ_BROKER_URL"] == (
        f"redis://trainq:{TEST_SECRETS['REDIS_PASSWORD']}@redis:6379/0"
    )
    assert environment["TRAINQ_DATABASE_URL"] == (
        f"postgresql+psycopg://trainq_app:{TEST_SECRETS['POSTGRES_APP_PASSWORD']}"
        "@postgres:5432/trainq"
    )
    assert environment["TRAINQ_DATA_DIR"] == "/usr/share/datasets/fashion-mnist"


def test_flower_serves_the_celery_app_behind_basic_auth_from_the_environment(
    config: ComposeConfig,
) -> None:
    flower = config["services"]["flower"]

    assert command_of(flower) == [
        "celery",
        "--app",
        "worker.cluster.celery_app:app",
        "flower",
        "--port=5555",
    ]
    assert environment_of(flower)["FLOWER_BASIC_AUTH"] == TEST_SECRETS["FLOWER_BASIC_AUTH"]
    assert depends_on(flower) == {"redis": "service_healthy"}


def test_no_secret_reaches_a_command_line_a_health_check_or_a_build(
    config: ComposeConfig,
) -> None:
    for name, service in config["services"].items():
        visible = json.dumps(
            [service.get(key) for key in ("command", "entrypoint", "healthcheck", "build")]
        )
        for secret in TEST_SECRETS.values():
            assert secret not in visible, f"{name} shows a secret on a command line"


def test_no_password_is_written_in_the_compose_files() -> None:
    for path in (COMPOSE_FILE, HOST_OVERRIDE_FILE):
        text = path.read_text()
        for secret in TEST_SECRETS.values():
            assert secret not in text
    for name, service in raw_config()["services"].items():
        for key, value in environment_of(service).items():
            if SECRET_NAME.search(key) or re.search(r"://[^/]*@", value):
                assert "${" in value, f"{name}: {key} must come from .env, not the file"


def test_the_env_example_sets_every_variable_the_compose_files_require() -> None:
    required = set()
    for path in (COMPOSE_FILE, HOST_OVERRIDE_FILE):
        required |= set(re.findall(r"\$\{([A-Z0-9_]+):\?", path.read_text()))
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )

    assert required == set(TEST_SECRETS)
    assert required <= set(example)
    assert all("change-me" in example[name] for name in required), "placeholders only"


@pytest.mark.usefixtures("compose_installed")
def test_the_env_example_is_a_valid_env_file_once_copied() -> None:
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )

    result = run_compose_config(example)

    assert result.returncode == 0, result.stderr
