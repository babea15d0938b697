"""A real docker-compose cluster for the ``compose`` tests: one project per test session, started
from docker-compose.yml with the test secrets and the images deploy/offline-images.sh builds, and
always taken down with its volumes.

State is read from the host through the postgres container's address on the compose network (no
port is published, so the security checks see the file's own ports).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from storage import Database, Repository
from storage.errors import StorageError
from storage.records import RunRecord
from tests.cluster.compose import COMPOSE_FILE, REPO_ROOT, TEST_SECRETS, compose_cli

TEST_OVERRIDE_FILE = Path(__file__).with_name("compose.test.yml")
OFFLINE_ENV_FILE = REPO_ROOT / "deploy" / "offline-images.env"
#: Image settings the compose file reads; the values deploy/offline-images.sh wrote win over none.
IMAGE_VARIABLES = ("REDIS_IMAGE", "POSTGRES_IMAGE", "TRAINQ_IMAGE")
#: Two workers share this machine's two cores.
WORKER_CPUS = os.environ.get("TRAINQ_TEST_WORKER_CPUS", "1")


class ComposeError(AssertionError):
    """A docker/docker-compose command failed; the message holds its output."""


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def image_settings() -> dict[str, str]:
    """REDIS_IMAGE etc. from the environment, else from deploy/offline-images.env."""
    settings = {}
    if OFFLINE_ENV_FILE.exists():
        for line in OFFLINE_ENV_FILE.read_text().splitlines():
            name, _, value = line.partition("=")
            if name in IMAGE_VARIABLES and value:
                settings[name] = value
    settings.update({name: os.environ[name] for name in IMAGE_VARIABLES if os.environ.get(name)})
    return settings


def engine_problem() -> str | None:
    """Why no cluster can start here (no docker, no compose, no engine), or None."""
    if shutil.which("docker") is None or compose_cli() is None:
        return "docker and docker-compose must be installed (bash .ci/run installs them)"
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"no Docker engine answers (docker info: {probe.stderr.strip()[-300:]})"
    return None


def run(
    argv: Sequence[str],
    *,
    timeout_s: float = 300,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (``input_text`` on its stdin); raise ComposeError with its output when
    ``check`` and it fails."""
    result = subprocess.run(
        list(argv),
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    if check and result.returncode != 0:
        raise ComposeError(
            f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


@dataclass
class LiveCluster:
    """One compose project: ``compose(...)`` runs docker-compose on it."""

    project: str
    directory: Path
    variables: dict[str, str]
    files: list[Path] = field(default_factory=lambda: [COMPOSE_FILE, TEST_OVERRIDE_FILE])
    #: Where the files' relative paths start (deploy/worker-host for the worker-host file).
    project_directory: Path = REPO_ROOT
    _repositories: dict[str, Repository] = field(default_factory=dict)

    @classmethod
    def create(cls, directory: Path) -> LiveCluster:
        """Write the project's .env (test secrets, images, loopback ports nobody uses)."""
        variables = {
            **TEST_SECRETS,
            **image_settings(),
            "TRAINQ_WORKER_CPUS": WORKER_CPUS,
            "FLOWER_HOST_PORT": str(free_port()),
            "DASHBOARD_HOST_PORT": str(free_port()),
            "TRAINQ_HOST_REDIS_PORT": str(free_port()),
            "TRAINQ_HOST_POSTGRES_PORT": str(free_port()),
        }
        return cls.with_env(f"trainqtest{os.getpid()}", directory, variables)

    @classmethod
    def with_env(
        cls,
        project: str,
        directory: Path,
        variables: dict[str, str],
        files: Sequence[Path] | None = None,
        project_directory: Path = REPO_ROOT,
    ) -> LiveCluster:
        """Project ``project`` with ``variables`` written to ``directory/.env``."""
        cluster = cls(project, directory, variables, project_directory=project_directory)
        if files is not None:
            cluster.files = list(files)
        cluster.env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
        return cluster

    @property
    def env_file(self) -> Path:
        return self.directory / ".env"

    def compose_argv(self, files: Sequence[Path] | None = None) -> list[str]:
        """docker-compose with this project's name, .env and files (before the subcommand)."""
        cli = compose_cli()
        assert cli is not None
        argv = [
            *cli,
            "--project-name",
            self.project,
            "--project-directory",
            str(self.project_directory),
            "--env-file",
            str(self.env_file),
        ]
        for path in files or self.files:
            argv += ["--file", str(path)]
        return argv

    def compose(
        self,
        *args: str,
        timeout_s: float = 300,
        check: bool = True,
        files: Sequence[Path] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``docker-compose ARGS`` on this project, with no TRAINQ_*/secret from the caller."""
        env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "DOCKER_HOST"}}
        return run([*self.compose_argv(files), *args], timeout_s=timeout_s, check=check, env=env)

    def up(self, workers: int = 2, files: Sequence[Path] | None = None) -> None:
        """``up -d --scale worker=N`` and wait until N workers are ready."""
        self.compose("up", "-d", "--scale", f"worker={workers}", timeout_s=600, files=files)
        self.wait_workers_ready(workers)

    def down(self, *, volumes: bool) -> None:
        """``down`` (``-v`` deletes the queue and the database too)."""
        self.compose(
            "down",
            "--remove-orphans",
            "--timeout",
            "20",
            *(["-v"] if volumes else []),
            timeout_s=300,
            check=False,
        )

    def cli(self, *trainq_args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """``docker-compose run --rm cli trainq ARGS`` (-T: no terminal here)."""
        return self.compose(
            "run", "--rm", "-T", "cli", "trainq", *trainq_args, timeout_s=timeout_s, check=False
        )

    def containers(self, service: str) -> list[str]:
        """Ids of the service's running containers."""
        out = self.compose("ps", "-q", service).stdout.split()
        running = [c for c in out if inspect(c, "{{.State.Running}}") == "true"]
        return sorted(running)

    def container_ip(self, service: str) -> str:
        """The address of the service's (first) container on the project network."""
        ids = self.containers(service)
        if not ids:
            raise ComposeError(f"no running {service} container")
        return inspect(ids[0], "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}").split()[
            0
        ]

    def wait_workers_ready(self, count: int, timeout_s: float = 180) -> list[str]:
        """Block until ``count`` worker containers run and each logged Celery's "ready"."""
        deadline = time.monotonic() + timeout_s
        while True:
            ids = self.containers("worker")
            ready = [c for c in ids if " ready." in logs(c)]
            if len(ids) == count and len(ready) == count:
                return ids
            if time.monotonic() > deadline:
                raise ComposeError(f"{len(ready)}/{count} workers ready after {timeout_s} s")
            time.sleep(0.5)

    def database_url(self, role: str = "postgres") -> str:
        """postgresql URL of the cluster's database as ``role`` (postgres or trainq_app)."""
        name = "POSTGRES_PASSWORD" if role == "postgres" else "POSTGRES_APP_PASSWORD"
        ip = self.container_ip("postgres")
        return f"postgresql+psycopg://{role}:{self.variables[name]}@{ip}:5432/trainq"

    def repository(self) -> Repository:
        """The cluster's records, read from the host (one engine per database address)."""
        url = self.database_url("trainq_app")
        if url not in self._repositories:
            self._repositories[url] = Repository(Database(url))
        return self._repositories[url]

    def host_env(self) -> dict[str, str]:
        """Environment for `trainq` on the host, reaching redis and postgres by container address
        (the host routes to the compose network; nothing is published)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINQ_")}
        password = self.variables["REDIS_PASSWORD"]
        env.update(
            TRAINQ_BROKER_URL=f"redis://trainq:{password}@{self.container_ip('redis')}:6379/0",
            TRAINQ_DATABASE_URL=self.database_url("trainq_app"),
            TRAINQ_HOME=str(self.directory / "host-home"),
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        return env

    def host_trainq(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """The host's `trainq ARGS` on this cluster (quicker than a `run --rm cli` container)."""
        return run(
            [sys.executable, "-m", "api_cli", *args],
            env=self.host_env(),
            timeout_s=timeout_s,
            check=False,
        )

    def submit(self, *options: str) -> int:
        """Queue a run from the host; its id."""
        result = self.host_trainq("train", "--no-wait", "--json", *options)
        assert result.returncode == 0, result.stderr
        return int(json.loads(result.stdout)["run_id"])

    def worker_of(self, run_id: int) -> str:
        """Id of the worker container that claimed run ``run_id`` last."""
        host = self.repository().get_run(run_id).worker_host
        for container in self.containers("worker"):
            if inspect(container, "{{.Config.Hostname}}") == host:
                return container
        raise AssertionError(f"run {run_id}: no running worker container is {host!r}")


def inspect(container: str, template: str) -> str:
    """``docker inspect -f TEMPLATE CONTAINER`` ("" when the container is gone)."""
    result = run(["docker", "inspect", "-f", template, container], check=False)
    return result.stdout.strip()


def logs(container: str) -> str:
    """A container's output so far (stdout and stderr)."""
    result = run(["docker", "logs", container], check=False)
    return result.stdout + result.stderr


def poll(
    condition: Callable[[], bool], *, timeout_s: float, what: str, every_s: float = 0.1
) -> float:
    """Wait until ``condition()``; the seconds it took. Raises AssertionError naming ``what``."""
    start = time.monotonic()
    error: Exception | None = None
    while True:
        try:
            if condition():
                return time.monotonic() - start
        except (StorageError, ComposeError) as exc:  # a service restarting: try again
            error = exc
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what}: not after {timeout_s} s (last error: {error})")
        time.sleep(every_s)


def wait_terminal(
    cluster: LiveCluster, run_ids: Sequence[int], timeout_s: float = 300
) -> list[RunRecord]:
    """Poll the runs until every one is terminal; their records."""
    poll(
        lambda: all(cluster.repository().get_run(i).status.terminal for i in run_ids),
        timeout_s=timeout_s,
        what=f"runs {list(run_ids)} terminal",
        every_s=0.5,
    )
    repository = cluster.repository()
    return [repository.get_run(i) for i in run_ids]


def assert_steps_exactly(cluster: LiveCluster, run_id: int, steps: int) -> None:
    """Run ``run_id`` stored one metric row per step 1..steps, each once."""
    rows = cluster.repository().read_metrics(run_id)
    assert [row.step for row in rows] == list(range(1, steps + 1))


#: Where the tests append the figures they measure, one JSON object a line (bench/ is ignored).
FIGURES_FILE = REPO_ROOT / "bench" / "results" / "compose-figures.jsonl"


def report(name: str, **figures: object) -> None:
    """Record a measured figure in FIGURES_FILE (and on stderr, shown with pytest -s)."""
    line = json.dumps({"figure": name, **figures}, default=str)
    print(line, file=sys.stderr)
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES_FILE.open("a") as file:
        file.write(line + "\n")
