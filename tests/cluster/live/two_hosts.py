"""Two "hosts" on one Docker engine, for the compose tests and bench/tls_bench.py.

- The server host: docker-compose.yml with docker-compose.tls.yml, only ``redis``, ``postgres`` and
  ``dashboard`` started (``tls-certs`` and ``migrate`` run first as their dependencies). Redis and
  PostgreSQL are published, TLS only, on the engine's default bridge address (docker0, e.g.
  172.17.0.1) and named in the certificate by that address (``TRAINQ_TLS_NAMES``).
- The worker host: deploy/worker-host/docker-compose.yml as shipped, in a project of its own, so
  on a network of its own: Docker drops traffic between two projects' networks, and the only way
  in is what the server publishes on the host. Its three secrets (broker URL, database URL, CA)
  are files in a directory of its own; it shares no volume, network or file with the server.

The test's own reads and submissions go, like a third host's, through the published TLS ports
with the CA.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.compose import COMPOSE_FILE, REPO_ROOT, TEST_SECRETS
from tests.cluster.live.live import (
    TEST_OVERRIDE_FILE,
    WORKER_CPUS,
    ComposeError,
    LiveCluster,
    free_port,
    image_settings,
    inspect,
    poll,
    run,
)

TLS_FILE = REPO_ROOT / "docker-compose.tls.yml"
WORKER_HOST_FILE = REPO_ROOT / "deploy" / "worker-host" / "docker-compose.yml"
#: What the server host starts; tls-certs and migrate come as their dependencies.
SERVER_SERVICES = ("redis", "postgres", "dashboard")
#: Where the worker host's secrets lie inside its containers (the worker-host file's targets).
WORKER_SECRETS = ("/run/secrets/broker_url", "/run/secrets/database_url", "/run/secrets/ca.crt")


def bridge_address() -> str:
    """The host's address on Docker's default bridge (docker0): reachable from every project's
    network, and not the loopback, which a container cannot reach."""
    shown = run(["docker", "network", "inspect", "-f", "{{json .}}", "bridge"]).stdout
    bridge = json.loads(shown)
    for entry in bridge["IPAM"]["Config"] or []:
        if entry.get("Gateway"):  # set when the daemon was given one
            return str(entry["Gateway"])
    # Otherwise the daemon gave the bridge's interface the subnet's first address.
    name = bridge["Options"].get("com.docker.network.bridge.name", "docker0")
    addresses = run(["ip", "-4", "-o", "address", "show", "dev", name]).stdout
    found = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", addresses)
    if found is None:
        raise ComposeError(f"Docker's bridge {name} has no IPv4 address: {addresses}")
    return found.group(1)


def networks_of(container: str) -> set[str]:
    """The names of the networks a container is attached to."""
    shown = inspect(container, "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}")
    return set(shown.split())


def project_containers(project: str) -> list[str]:
    """Every container of a compose project, running or not (by Compose's label)."""
    label = f"label=com.docker.compose.project={project}"
    return run(["docker", "ps", "-aq", "--filter", label]).stdout.split()


def published_ports(container: str) -> set[str]:
    """What a container publishes on the host: ``{"6379/tcp -> 172.17.0.1:40123", ...}``."""
    return set(filter(None, run(["docker", "port", container]).stdout.splitlines()))


def mounts_of(container: str) -> set[str]:
    """Where a container has something mounted (binds and volumes)."""
    return set(inspect(container, "{{range .Mounts}}{{.Destination}} {{end}}").split())


@dataclass
class TlsServer(LiveCluster):
    """The server host's project, read and used from outside through its published TLS ports.

    ``workers`` is the worker host's project: ``worker_of`` looks there."""

    address: str = ""
    workers: LiveCluster | None = None

    @property
    def tls_dir(self) -> Path:
        return Path(self.variables["TRAINQ_TLS_DIR"])

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.crt"

    @property
    def redis_port(self) -> int:
        return int(self.variables["TRAINQ_TLS_REDIS_PORT"])

    @property
    def postgres_port(self) -> int:
        return int(self.variables["TRAINQ_TLS_POSTGRES_PORT"])

    def broker_url(self) -> str:
        """The published broker, as a worker host names it (the CA comes from TRAINQ_CA_FILE)."""
        password = self.variables["REDIS_PASSWORD"]
        return f"rediss://trainq:{password}@{self.address}:{self.redis_port}/0"

    def published_database_url(self, role: str = "trainq_app") -> str:
        """The published database as ``role``, without the TLS parameters TRAINQ_CA_FILE adds."""
        name = "POSTGRES_PASSWORD" if role == "postgres" else "POSTGRES_APP_PASSWORD"
        password = self.variables[name]
        return f"postgresql+psycopg://{role}:{password}@{self.address}:{self.postgres_port}/trainq"

    def database_url(self, role: str = "postgres") -> str:
        """The published database as ``role``, verified against the cluster's CA."""
        return f"{self.published_database_url(role)}?sslmode=verify-full&sslrootcert={self.ca_file}"

    def host_env(self) -> dict[str, str]:
        """`trainq` on this machine as on any other host: the published ports and the CA."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINQ_")}
        env.update(
            TRAINQ_BROKER_URL=self.broker_url(),
            TRAINQ_DATABASE_URL=self.published_database_url(),
            TRAINQ_CA_FILE=str(self.ca_file),
            TRAINQ_HOME=str(self.directory / "host-home"),
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        return env

    def worker_of(self, run_id: int) -> str:
        """Id of the worker-host container that claimed run ``run_id`` last."""
        assert self.workers is not None
        host = self.repository().get_run(run_id).worker_host
        for container in self.workers.containers("worker"):
            if inspect(container, "{{.Config.Hostname}}") == host:
                return container
        raise AssertionError(f"run {run_id}: no running worker container is {host!r}")

    def start(self) -> None:
        """``up -d`` the server services: returns once migrate has ended and the dashboard's
        container started (it answers a little later: :meth:`dashboard_page`)."""
        self.compose("up", "-d", *SERVER_SERVICES, timeout_s=600)

    def dashboard_page(self, path: str = "/", timeout_s: float = 120) -> str:
        """The dashboard's page at ``path``, from its loopback port, once it answers."""
        url = f"http://127.0.0.1:{self.variables['DASHBOARD_HOST_PORT']}{path}"
        pages: list[str] = []

        def answered() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    pages.append(response.read().decode())
                return True
            except OSError:  # not listening yet, or reset while it starts
                return False

        poll(answered, timeout_s=timeout_s, what=f"the dashboard answers {path}", every_s=0.2)
        return pages[-1]


def server_host(directory: Path, project: str, address: str) -> TlsServer:
    """The server host's project (not started): TLS files, certificates in ``directory/tls``."""
    tls_dir = directory / "tls"
    tls_dir.mkdir()
    variables = {
        **TEST_SECRETS,
        **image_settings(),
        "TRAINQ_TLS_DIR": str(tls_dir),
        "TRAINQ_TLS_NAMES": address,
        "TRAINQ_PUBLISH_ADDRESS": address,
        "TRAINQ_TLS_REDIS_PORT": str(free_port()),
        "TRAINQ_TLS_POSTGRES_PORT": str(free_port()),
        "FLOWER_HOST_PORT": str(free_port()),
        "DASHBOARD_HOST_PORT": str(free_port()),
    }
    server = TlsServer(project, directory, variables, address=address)
    server.files = [COMPOSE_FILE, TLS_FILE, TEST_OVERRIDE_FILE]
    server.env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
    return server


def worker_host(directory: Path, project: str, server: TlsServer) -> LiveCluster:
    """The worker host's project (not started): its three secrets written from ``server``'s
    published URLs and CA, readable by the image's user only, as docs/cluster.md says."""
    secrets = directory / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "broker_url").write_text(server.broker_url())
    (secrets / "database_url").write_text(server.published_database_url())
    shutil.copyfile(server.ca_file, secrets / "ca.crt")
    for path in secrets.iterdir():
        if os.geteuid() == 0:
            os.chown(path, 10001, 10001)  # the image's trainq user
            path.chmod(0o400)
        else:  # a rootless engine maps ids differently: readable by all, in a 0700 directory
            path.chmod(0o444)
    variables = {
        "TRAINQ_SECRETS_DIR": str(secrets),
        "TRAINQ_WORKER_CPUS": WORKER_CPUS,
        **{k: v for k, v in image_settings().items() if k == "TRAINQ_IMAGE"},
    }
    workers = LiveCluster.with_env(
        project,
        directory,
        variables,
        files=[WORKER_HOST_FILE, TEST_OVERRIDE_FILE],
        project_directory=WORKER_HOST_FILE.parent,
    )
    server.workers = workers
    return workers


#: Run inside a worker-host container (``python -c``, the settings as JSON on stdin): every way in
#: that must be refused, and the right one as the control. Prints {attempt: outcome}.
PROBE_SCRIPT = r"""
import json, socket, sys, time
import psycopg, redis
from redis.backoff import NoBackoff
from redis.retry import Retry
p = json.load(sys.stdin)
out, seconds = {}, {}
def attempt(name, action):
    start = time.monotonic()
    try:
        action()
        out[name] = "accepted"
    except Exception as exc:
        out[name] = (type(exc).__name__ + ": " + str(exc).strip())[:300]
    seconds[name] = round(time.monotonic() - start, 2)
def ping(**options):
    client = redis.Redis(host=p["host"], port=p["redis_port"], socket_timeout=3,
                         socket_connect_timeout=3, retry=Retry(NoBackoff(), 0), **options)
    try:
        client.ping()
    finally:
        client.close()
tls = {"ssl": True, "ssl_ca_certs": p["ca"], "ssl_cert_reqs": "required"}
app = {"username": "trainq", "password": p["redis_password"]}
attempt("redis: plain text, right password", lambda: ping(**app))
attempt("redis: TLS, no password", lambda: ping(**tls))
attempt("redis: TLS, wrong password", lambda: ping(username="trainq", password="wrong", **tls))
attempt("redis: TLS, right password", lambda: ping(**app, **tls))
def connect(sslmode, password):
    options = {"sslrootcert": p["ca"]} if sslmode != "disable" else {}
    psycopg.connect(host=p["host"], port=p["postgres_port"], dbname="trainq", user="trainq_app",
                    password=password, sslmode=sslmode, connect_timeout=3, **options).close()
attempt("postgres: plain text, right password", lambda: connect("disable", p["app_password"]))
attempt("postgres: TLS, no password", lambda: connect("verify-full", ""))
attempt("postgres: TLS, wrong password", lambda: connect("verify-full", "wrong"))
attempt("postgres: TLS, right password", lambda: connect("verify-full", p["app_password"]))
def direct(address):
    with socket.create_connection(address, timeout=1):  # dropped, so it can only time out
        pass
for name, address in p["direct"].items():
    attempt("direct: " + name, lambda: direct(tuple(address)))
print(json.dumps({"outcomes": out, "seconds": seconds}))
"""


def probe_from(container: str, server: TlsServer) -> dict[str, dict[str, Any]]:
    """PROBE_SCRIPT's outcomes and the seconds each took, run in ``container`` (a worker
    host's) against ``server``: ``{"outcomes": {...}, "seconds": {...}}``."""
    settings = {
        "host": server.address,
        "redis_port": server.redis_port,
        "postgres_port": server.postgres_port,
        "ca": "/run/secrets/ca.crt",
        "redis_password": server.variables["REDIS_PASSWORD"],
        "app_password": server.variables["POSTGRES_APP_PASSWORD"],
        # The servers' own addresses on the server host's network: unreachable from here.
        "direct": {
            "redis container": [server.container_ip("redis"), 6379],
            "postgres container": [server.container_ip("postgres"), 5432],
        },
    }
    result = run(
        ["docker", "exec", "-i", container, "python", "-c", PROBE_SCRIPT],
        input_text=json.dumps(settings),
        timeout_s=60,
    )
    found: dict[str, dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    return found
