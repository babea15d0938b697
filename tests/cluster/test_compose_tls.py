"""docker-compose.tls.yml turns TLS on for every connection, and deploy/worker-host/ runs workers
that need only the broker URL, the database URL and the CA. Checked on the files (no Docker
engine); the checks that need Docker Compose skip without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.cluster.compose import (
    COMPOSE_FILE,
    REPO_ROOT,
    TEST_SECRETS,
    compose_cli,
    environment_of,
    raw_config,
    resolved_config,
    worker_command,
)
from tests.tls_servers import free_port, make_certificates

TLS_FILE = REPO_ROOT / "docker-compose.tls.yml"
WORKER_HOST_FILE = REPO_ROOT / "deploy" / "worker-host" / "docker-compose.yml"
PG_HBA = REPO_ROOT / "deploy" / "tls" / "pg_hba.conf"
NO_RETRY = Retry(NoBackoff(), 0)
#: The services built from trainq's image that talk to redis or postgres.
CLIENTS = ("migrate", "worker", "worker-gpu", "flower", "dashboard", "cli")


def load(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    return config


def options(command: list[str], first: str) -> dict[str, str]:
    assert command[0] == first
    return dict(zip(command[1::2], command[2::2], strict=True))


def test_redis_listens_with_tls_only_and_keeps_every_other_setting() -> None:
    base = options(raw_config()["services"]["redis"]["command"], "redis-server")
    tls = options(load(TLS_FILE)["services"]["redis"]["command"], "redis-server")
    assert base.items() <= tls.items()  # append-only file, noeviction, protected mode…
    assert tls["--port"] == "0"  # no plain-text port at all
    assert tls["--tls-port"] == "6379"
    assert tls["--tls-key-file"].startswith("/run/trainq-tls/")  # the copy the redis user owns
    assert tls["--tls-auth-clients"] == "no"  # clients log in with the ACL user's password


def test_redis_reports_healthy_only_over_tls_as_the_app_user() -> None:
    check = " ".join(load(TLS_FILE)["services"]["redis"]["healthcheck"]["test"])
    assert "redis-cli --tls --cacert /tls/ca.crt --user" in check and "REDISCLI_AUTH" in check


def test_postgres_turns_ssl_on_and_admits_tcp_over_tls_only() -> None:
    postgres = load(TLS_FILE)["services"]["postgres"]
    settings = dict(arg.split("=", 1) for arg in postgres["command"][2::2])
    assert postgres["command"][1::2] == ["-c"] * len(settings)
    assert settings["ssl"] == "on"
    assert settings["hba_file"] == "/etc/trainq/pg_hba.conf"
    assert f"./deploy/tls/pg_hba.conf:{settings['hba_file']}:ro" in postgres["volumes"]
    rules = [
        line.split()
        for line in PG_HBA.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {rule[0] for rule in rules} == {"local", "hostssl", "hostnossl"}
    assert [rule[-1] for rule in rules if rule[0] == "hostnossl"] == ["reject"]
    assert [rule[-1] for rule in rules if rule[0] == "hostssl"] == ["scram-sha-256"]


def test_the_certificates_are_made_before_redis_and_postgres_start() -> None:
    services = load(TLS_FILE)["services"]
    for name in ("redis", "postgres"):
        assert services[name]["depends_on"] == {
            "tls-certs": {"condition": "service_completed_successfully"}
        }
        assert services[name]["entrypoint"][:3] == [
            "sh",
            "/usr/local/bin/trainq-tls-entrypoint.sh",
            name,  # the key is copied for the server's own user
        ]
    assert services["tls-certs"]["restart"] == "no"
    assert services["tls-certs"]["network_mode"] == "none"


def test_every_trainq_service_verifies_both_servers_against_the_ca() -> None:
    base, tls = raw_config()["services"], load(TLS_FILE)["services"]
    for name in CLIENTS:
        environment = environment_of(tls[name])
        assert environment["TRAINQ_CA_FILE"] == "/tls/ca.crt", name
        assert any(volume.endswith(":/tls:ro") for volume in tls[name]["volumes"]), name
        if "TRAINQ_BROKER_URL" in environment_of(base[name]):
            assert environment["TRAINQ_BROKER_URL"].startswith("rediss://trainq:${REDIS_PASSWORD")


def test_redis_and_postgres_are_published_on_loopback_unless_the_operator_says() -> None:
    services = load(TLS_FILE)["services"]
    assert services["redis"]["ports"] == [
        "${TRAINQ_PUBLISH_ADDRESS:-127.0.0.1}:${TRAINQ_TLS_REDIS_PORT:-6379}:6379"
    ]
    assert services["postgres"]["ports"] == [
        "${TRAINQ_PUBLISH_ADDRESS:-127.0.0.1}:${TRAINQ_TLS_POSTGRES_PORT:-5432}:5432"
    ]


def test_the_server_certificate_names_every_host_a_client_uses(tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path, "cluster.example.org", "10.0.0.5")
    shown = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", certificates.server_cert],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in ("DNS:redis", "DNS:postgres", "DNS:localhost", "IP Address:127.0.0.1"):
        assert name in shown
    assert "DNS:cluster.example.org" in shown and "IP Address:10.0.0.5" in shown
    assert (certificates.server_key.stat().st_mode & 0o077) == 0  # the keys are root's alone
    assert (certificates.directory / "private" / "ca.key").stat().st_mode & 0o077 == 0


def test_certificates_and_worker_host_secrets_are_never_committed(tmp_path: Path) -> None:
    paths = ["deploy/tls/certs/ca.crt", "deploy/worker-host/secrets/broker_url"]
    ignored = subprocess.run(
        ["git", "check-ignore", *paths], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    assert ignored == paths


def test_a_worker_host_runs_only_workers_from_three_secrets() -> None:
    config = load(WORKER_HOST_FILE)
    assert set(config["services"]) == {"worker", "worker-gpu"}
    worker = config["services"]["worker"]
    assert worker["command"] == worker_command()  # the cluster's own worker command
    assert environment_of(worker) | {"TRAINQ_DATA_DIR": "", "TRAINQ_HOME": ""} == {
        "TRAINQ_BROKER_URL_FILE": "/run/secrets/broker_url",
        "TRAINQ_DATABASE_URL_FILE": "/run/secrets/database_url",
        "TRAINQ_CA_FILE": "/run/secrets/ca.crt",
        "TRAINQ_DATA_DIR": "",
        "TRAINQ_HOME": "",
    }
    assert all("ports" not in service for service in config["services"].values())
    assert {secret["file"] for secret in config["secrets"].values()} == {
        "${TRAINQ_SECRETS_DIR:-./secrets}/broker_url",
        "${TRAINQ_SECRETS_DIR:-./secrets}/database_url",
        "${TRAINQ_SECRETS_DIR:-./secrets}/ca.crt",
    }
    base = raw_config()["services"]["worker"]
    for key in ("stop_signal", "stop_grace_period", "init"):
        assert worker[key] == base[key], key


@pytest.mark.usefixtures("compose_installed")
def test_compose_resolves_the_tls_override_and_no_secret_reaches_a_command_line() -> None:
    config = resolved_config(TEST_SECRETS, files=(COMPOSE_FILE, TLS_FILE))
    assert "tls-certs" in config["services"]
    for name, service in config["services"].items():
        visible = json.dumps([service.get(key) for key in ("command", "entrypoint", "healthcheck")])
        for secret in TEST_SECRETS.values():
            assert secret not in visible, f"{name} shows a secret on a command line"


@pytest.mark.usefixtures("compose_installed")
def test_compose_resolves_the_worker_host_file_with_its_secrets(tmp_path: Path) -> None:
    cli = compose_cli()
    assert cli is not None
    for name in ("broker_url", "database_url", "ca.crt"):
        (tmp_path / name).write_text("x")
    result = subprocess.run(
        [*cli, "--file", str(WORKER_HOST_FILE), "--profile", "gpu", "config"],
        cwd=WORKER_HOST_FILE.parent,
        env={"PATH": os.environ["PATH"], "TRAINQ_SECRETS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    targets = {
        secret.get("target") or secret["source"]
        for secret in config["services"]["worker"]["secrets"]
    }
    assert targets == {"broker_url", "database_url", "ca.crt"}
    assert config["secrets"]["ca_cert"]["file"] == str(tmp_path / "ca.crt")


def test_the_tls_overrides_redis_command_starts_a_server_that_refuses_plain_text(
    tmp_path: Path,
) -> None:
    # The override's exact options, with the container's paths mapped into tmp_path and a free
    # port: a typo in an option name or value fails here, not on the first cluster start.
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip("redis-server is not installed")
    certificates = make_certificates(tmp_path / "tls")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for source, name in (
        (certificates.ca, "ca.crt"),
        (certificates.server_cert, "server.crt"),
        (certificates.server_key, "server.key"),
    ):
        shutil.copyfile(source, run_dir / name)
    port = free_port()
    command = [
        arg.replace("/run/trainq-tls", str(run_dir)).replace("/data", str(tmp_path))
        for arg in load(TLS_FILE)["services"]["redis"]["command"][1:]
    ]
    command[command.index("--tls-port") + 1] = str(port)
    command += ["--save", ""]  # no snapshot at exit: a test's server stops at once
    process = subprocess.Popen(
        [redis_server, *command], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        verified = redis.Redis.from_url(
            f"rediss://localhost:{port}/0?ssl_ca_certs={certificates.ca}",
            socket_timeout=5,
            retry=NO_RETRY,  # this loop retries; redis-py's backoff would only add sleeps
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                assert verified.ping()
                break
            except redis.ConnectionError:
                assert process.poll() is None, "redis-server refused the override's options"
                assert time.monotonic() < deadline
                time.sleep(0.05)
        verified.close()
        plain = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, retry=NO_RETRY)
        with pytest.raises(redis.ConnectionError):
            plain.ping()
        plain.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
