"""The README's and docs/cluster.md's cluster commands, run verbatim against the live cluster:
from the ``cli`` service, and from the host with the documented settings."""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path

import pytest

from storage.records import RunStatus
from tests.cluster.compose import COMPOSE_FILE, HOST_OVERRIDE_FILE, REPO_ROOT
from tests.cluster.live.live import (
    TEST_OVERRIDE_FILE,
    LiveCluster,
    assert_steps_exactly,
    report,
    run,
)

pytestmark = pytest.mark.compose

CLI_PREFIX = "docker compose run --rm cli trainq "


def bash_block(markdown: Path, after_heading: str, starting_with: str) -> list[str]:
    """The non-empty lines, comments cut, of the first ```bash block after ``after_heading``
    whose first line starts with ``starting_with``."""
    text = markdown.read_text().split(after_heading, 1)[1]
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        lines = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
        if lines and lines[0].startswith(starting_with):
            return lines
    raise AssertionError(f"{markdown.name}: no bash block starting {starting_with!r}")


def with_run_id(args: list[str], run_id: int) -> list[str]:
    """The documented commands name run 1, the first run of a fresh cluster; the tests share one
    cluster, so the id that `train` printed takes its place."""
    return [str(run_id) if arg == "1" else arg for arg in args]


def printed_run_id(output: str) -> int:
    """The id in `trainq train`'s first line ("run 7 queued ...")."""
    found = re.search(r"\brun (\d+)\b", output)
    assert found, output
    return int(found.group(1))


def test_the_readme_cluster_commands_work_verbatim_from_the_cli_service(live: LiveCluster) -> None:
    lines = bash_block(REPO_ROOT / "README.md", "## The cluster", "cp .env.example")
    commands = [shlex.split(line.removeprefix(CLI_PREFIX)) for line in lines if CLI_PREFIX in line]
    assert [args[:2] for args in commands] == [
        ["train", "--wait"],
        ["eval", "1"],
        ["runs", "list"],
        ["metrics", "1"],
    ]
    start = time.monotonic()
    trained = live.cli(*commands[0])
    wall_s = time.monotonic() - start
    assert trained.returncode == 0, trained.stdout + trained.stderr
    run_id = printed_run_id(trained.stdout + trained.stderr)
    record = live.repository().get_run(run_id)
    assert record.status is RunStatus.SUCCEEDED and record.steps_done == 10_000
    assert_steps_exactly(live, run_id, 10_000)
    report(
        "docker-compose run --rm cli trainq train --wait (the seed's job, 10,000 steps)",
        wall_s=round(wall_s, 2),
        summary=record.summary,
    )
    walls_s = {}
    for args in commands[1:]:
        start = time.monotonic()
        result = live.cli(*with_run_id(args, run_id))
        walls_s[" ".join(args[:2])] = round(time.monotonic() - start, 2)
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
        assert str(run_id) in result.stdout or "10000" in result.stdout, result.stdout
    report("docker-compose run --rm cli trainq ...", wall_s=walls_s)

    # The same job again from the host, on the now warm workers: what the queue itself costs.
    start = time.monotonic()
    again = live.host_trainq("train", "--wait")
    wall_s = time.monotonic() - start
    assert again.returncode == 0, again.stderr
    summary = live.repository().get_run(printed_run_id(again.stdout + again.stderr)).train_summary
    assert summary is not None and summary.training_steps_per_s
    training_s = summary.steps_run / summary.training_steps_per_s  # compiled steps alone
    report(
        "host trainq train --wait (the seed's job) on the warm cluster",
        wall_s=round(wall_s, 2),
        worker_attempt_s=summary.wall_s,
        training_s=round(training_s, 2),
        overhead_s=round(wall_s - training_s, 2),
    )


def test_the_documented_host_commands_reach_the_cluster_through_loopback_ports(
    live: LiveCluster,
) -> None:
    lines = bash_block(REPO_ROOT / "docs" / "cluster.md", "**From the host", "docker compose -f")
    setup = [line for line in lines[1:] if not line.startswith("trainq ")]
    commands = [shlex.split(line) for line in lines if line.startswith("trainq ")]
    assert [args[1] for args in commands] == ["status", "train", "runs", "metrics", "eval"]
    files = [COMPOSE_FILE, HOST_OVERRIDE_FILE, TEST_OVERRIDE_FILE]
    live.up(workers=2, files=files)  # the block's first line, with this project's files
    try:
        for service, port in (("redis", "6379"), ("postgres", "5432")):
            published = live.compose("port", service, port, files=files).stdout.strip()
            assert published == f"127.0.0.1:{live.variables[f'TRAINQ_HOST_{service.upper()}_PORT']}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINQ_")}
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        run_id = 0
        for args in commands:
            script = "\n".join(["set -euo pipefail", *setup, shlex.join(with_run_id(args, run_id))])
            result = run(["bash", "-c", script], env=env, cwd=live.directory, check=False)
            assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
            if args[1] == "train":
                run_id = printed_run_id(result.stdout + result.stderr)
        assert_steps_exactly(live, run_id, 2000)
    finally:
        live.up(workers=2)  # back to the file's own ports: none but Flower's
