"""The README's and docs/cluster.md's cluster commands, run verbatim against the live cluster:
from the ``cli`` service, and from the host with the documented settings."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.compose import COMPOSE_FILE, HOST_OVERRIDE_FILE, REPO_ROOT
from tests.cluster.live.live import (
    TEST_OVERRIDE_FILE,
    LiveCluster,
    assert_steps_exactly,
    report,
    run,
)

pytestmark = pytest.mark.compose

#: The first run of a fresh cluster is run 1, which the documented commands name; the tests
#: share one cluster, so they put the id `train` printed in its place.
RUN_ID_IN_DOCS = re.compile(r"(?<= )1(?= |$)")


def bash_block(markdown: Path, after_heading: str, starting_with: str) -> list[str]:
    """The lines of the first ```bash block after ``after_heading`` whose first line starts
    with ``starting_with``."""
    text = markdown.read_text().split(after_heading, 1)[1]
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        lines = [line for line in block.splitlines() if line.strip()]
        if lines and lines[0].startswith(starting_with):
            return lines
    raise AssertionError(f"{markdown.name}: no bash block starting {starting_with!r}")


def test_the_readme_cluster_commands_work_verbatim_from_the_cli_service(live: LiveCluster) -> None:
    lines = bash_block(REPO_ROOT / "README.md", "## The cluster", "cp .env.example")
    commands = [line.split("#")[0].strip() for line in lines if " run --rm cli " in line]
    assert [shlex.split(c)[5:7] for c in commands] == [
        ["train", "--wait"], ["eval", "1"], ["runs", "list"], ["metrics", "1"]]
    run_id = None
    for command in commands:
        args = shlex.split(command.removeprefix("docker compose run --rm cli trainq "))
        if run_id is not None:
            args = [str(run_id) if arg == "1" else arg for arg in args]
        start = time.monotonic()
        result = live.cli(*args)
        wall_s = time.monotonic() - start
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        if args[:1] == ["train"]:
            run_id = int(re.findall(r"\d+", result.stdout + result.stderr)[0])
            record = live.repository().get_run(run_id)
            training_s = float((record.summary or {}).get("training_s", float("nan")))
            report("trainq train --wait (seed's job, 10,000 steps) via docker-compose run --rm cli",
                   wall_s=round(wall_s, 2), summary=record.summary)
            assert record.status.value == "succeeded" and record.steps_done == 10_000
            assert_steps_exactly(live, run_id, 10_000)
            del training_s
        assert str(run_id) in result.stdout or args[0] == "train"


def test_the_documented_host_commands_reach_the_cluster_through_loopback_ports(
    live: LiveCluster,
) -> None:
    lines = bash_block(REPO_ROOT / "docs" / "cluster.md", "**From the host", "docker compose -f")
    files = [COMPOSE_FILE, HOST_OVERRIDE_FILE, TEST_OVERRIDE_FILE]
    live.up(workers=2, files=files)  # the documented first line, with this project's files
    try:
        ports = {
            service: live.compose("port", service, target, files=files).stdout.strip()
            for service, target in (("redis", "6379"), ("postgres", "5432"))
        }
        assert ports == {
            "redis": f"127.0.0.1:{live.variables['TRAINQ_HOST_REDIS_PORT']}",
            "postgres": f"127.0.0.1:{live.variables['TRAINQ_HOST_POSTGRES_PORT']}",
        }
        host_env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINQ_")}
        host_env["PATH"] = f"{Path(sys.executable).parent}:{host_env['PATH']}"
        script = "set -euo pipefail\n" + "\n".join(lines[1:]) + "\n"
        result = run(["bash", "-c", script.replace(" 1 ", " $(trainq runs list --format json"
                      " | python3 -c 'import json,sys; print(max(r[\"id\"] for r in json.load(sys.stdin)))') ")
                      .replace("--every 500", "--every 500 --format csv")],
                     env=host_env, cwd=live.directory, check=False, timeout_s=600)
        assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
        assert "500," in result.stdout and "2000," in result.stdout
    finally:
        live.up(workers=2)  # back to no published port but Flower's
    del json, subprocess
