"""docker-compose.yml as Docker Compose resolves it, for the cluster tests and for the integration
tests, which start the worker service's exact command as local processes.

``worker_command()`` needs no Docker Compose: the command is a literal argv list in the file (the
cluster tests check that Compose resolves it to the same list).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
#: Optional override that publishes redis and postgres on the host's loopback interface.
HOST_OVERRIDE_FILE = REPO_ROOT / "deploy" / "compose.host.yml"
#: Services behind a profile are only in Compose v2's `config` output when their profile is on.
PROFILES = ("cli", "gpu")

#: Values for the required variables; distinctive so that a leak is easy to grep for.
TEST_SECRETS: Mapping[str, str] = {
    "REDIS_PASSWORD": "redis-pw-0d4c1f7e9a",
    "POSTGRES_PASSWORD": "postgres-pw-6b2e8c3d51",
    "POSTGRES_APP_PASSWORD": "app-pw-93a7f0c2be",
    "POSTGRES_DASHBOARD_PASSWORD": "dashboard-pw-4c8e1b7a2d",
    "FLOWER_BASIC_AUTH": "flower-admin:flower-pw-5e1d7a9c40",
}

ComposeConfig = dict[str, Any]


def compose_cli() -> list[str] | None:
    """The Docker Compose command here: v1 ``docker-compose`` or v2 ``docker compose``."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def run_compose_config(
    variables: Mapping[str, str],
    files: Sequence[Path] = (COMPOSE_FILE,),
    profiles: Iterable[str] = PROFILES,
) -> subprocess.CompletedProcess[str]:
    """Run ``docker compose config`` with exactly ``variables`` as its .env, nothing inherited.

    Raises:
        RuntimeError: Docker Compose is not installed.
    """
    cli = compose_cli()
    if cli is None:
        raise RuntimeError("Docker Compose is not installed (docker-compose or docker compose).")
    with tempfile.TemporaryDirectory() as directory:
        env_file = Path(directory) / "test.env"
        env_file.write_text("".join(f"{name}={value}\n" for name, value in variables.items()))
        argv = [*cli, "--env-file", str(env_file), "--project-directory", str(REPO_ROOT)]
        for path in files:
            argv += ["--file", str(path)]
        for profile in profiles:
            argv += ["--profile", profile]
        # A clean environment: a developer's real REDIS_PASSWORD etc. must not leak into the test.
        environ = {
            name: os.environ[name]
            for name in ("PATH", "HOME", "DOCKER_CONFIG")
            if name in os.environ
        }
        return subprocess.run(
            [*argv, "config"],
            cwd=REPO_ROOT,
            env=environ,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )


def resolved_config(
    variables: Mapping[str, str] = TEST_SECRETS, files: Sequence[Path] = (COMPOSE_FILE,)
) -> ComposeConfig:
    """The compose configuration after interpolation, anchors and merges, as Compose prints it.

    Raises:
        RuntimeError: Docker Compose is missing or rejects the files (its stderr is included).
    """
    result = run_compose_config(variables, files)
    if result.returncode != 0:
        raise RuntimeError(f"docker compose config failed:\n{result.stderr}")
    config: ComposeConfig = yaml.safe_load(result.stdout)
    return config


@cache
def raw_config() -> ComposeConfig:
    """docker-compose.yml parsed as YAML only: anchors and merge keys resolved, ``${…}`` kept."""
    config: ComposeConfig = yaml.safe_load(COMPOSE_FILE.read_text())
    return config


def worker_command() -> list[str]:
    """The worker service's command as an argv list, e.g. ``["trainq", "worker", "--queues", …]``.

    Raises:
        ValueError: the command is not a literal argv list starting with ``trainq``.
    """
    command = raw_config()["services"]["worker"]["command"]
    if not isinstance(command, list) or not all(isinstance(arg, str) for arg in command):
        raise ValueError(f"the worker's command must be a YAML list of strings, got {command!r}")
    if not command or command[0] != "trainq" or any("$" in arg for arg in command):
        raise ValueError(f"the worker's command must be literal and start with trainq: {command!r}")
    return list(command)


@dataclass(frozen=True)
class StopSettings:
    """How ``docker stop`` ends a worker: which signal, how long before SIGKILL, and the
    environment that tells Celery what to do with that signal."""

    stop_signal: str
    grace_s: float
    remap_sigterm: str | None


def worker_stop_settings(
    config: ComposeConfig | None = None, service_name: str = "worker"
) -> StopSettings:
    """A worker service's stop settings (from ``config``, else from the raw file)."""
    service = (config or raw_config())["services"][service_name]
    environment = environment_of(service)
    return StopSettings(
        stop_signal=str(service.get("stop_signal", "SIGTERM")),
        grace_s=duration_s(service.get("stop_grace_period", "10s")),
        remap_sigterm=environment.get("REMAP_SIGTERM"),
    )


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (Compose accepts a mapping or ``KEY=value`` lines)."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(line.split("=", 1) if "=" in line else (line, "") for line in environment)
    return {str(name): "" if value is None else str(value) for name, value in environment.items()}


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)")
_DURATION_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}


def duration_s(value: str | float) -> float:
    """Seconds in a Compose duration: ``60s``, ``1m30s`` (v1 keeps it as written, v2 prints Go's
    ``1m0s``), or a bare number of seconds.

    Raises:
        ValueError: not a duration.
    """
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a Compose duration: {value!r}")
    return sum(float(number) * _DURATION_UNIT_S[unit] for number, unit in parts)


@dataclass(frozen=True)
class PublishedPort:
    """A container port published on the host; ``host_ip`` is ``""`` for every interface."""

    host_ip: str
    published: str
    target: str


def published_ports(service: Mapping[str, Any]) -> list[PublishedPort]:
    """The ports a service publishes, from Compose's short (v1) or long (v2) syntax."""
    ports = []
    for entry in service.get("ports") or []:
        if isinstance(entry, Mapping):
            ports.append(
                PublishedPort(
                    host_ip=str(entry.get("host_ip") or ""),
                    published=str(entry.get("published") or ""),
                    target=str(entry["target"]),
                )
            )
            continue
        spec = str(entry).split("/", 1)[0]
        fields = spec.rsplit(":", 2)
        host_ip = fields[0] if len(fields) == 3 else ""
        published = fields[-2] if len(fields) >= 2 else ""
        ports.append(PublishedPort(host_ip.strip("[]"), published, fields[-1]))
    return ports


def named_volumes(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's named-volume mounts as ``{container path: volume name}``, binds left out."""
    mounts = {}
    for entry in service.get("volumes") or []:
        if isinstance(entry, Mapping):
            if entry.get("type") == "volume" and entry.get("source"):
                mounts[str(entry["target"])] = str(entry["source"])
            continue
        source, _, rest = str(entry).partition(":")
        if rest and not source.startswith(("/", ".", "~")):
            mounts[rest.split(":", 1)[0]] = source
    return mounts
