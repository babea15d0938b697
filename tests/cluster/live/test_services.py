"""Redis and PostgreSQL restarted under running jobs, the cluster taken down and up again, and
what the cluster exposes: checked on real containers."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from storage.records import RunStatus
from tests.cluster.live.live import (
    LiveCluster,
    assert_steps_exactly,
    poll,
    report,
    run,
    wait_terminal,
)
from tests.cluster.live.test_worker_faults import LONG_RUN

pytestmark = pytest.mark.compose


def test_restarting_redis_with_runs_queued_and_running_completes_each_exactly_once(
    live: LiveCluster,
) -> None:
    run_ids = [live.submit(*LONG_RUN, "--seed", str(30 + i)) for i in range(4)]
    repository = live.repository()
    poll(
        lambda: sum(repository.get_run(i).status is RunStatus.RUNNING for i in run_ids) == 2,
        timeout_s=120,
        what="two runs running, two queued",
    )
    time.sleep(1.5)  # the append-only file is fsynced every second
    start = time.monotonic()
    live.compose("restart", "redis")
    finals = wait_terminal(live, run_ids, timeout_s=600)
    assert [r.status for r in finals] == [RunStatus.SUCCEEDED] * 4, [r.error for r in finals]
    for run_id in run_ids:
        assert_steps_exactly(live, run_id, 60_000)
    report(
        "docker-compose restart redis with 2 runs running and 2 queued",
        all_done_after_s=round(time.monotonic() - start, 1),
        attempts=[r.attempt for r in finals],
    )


def test_restarting_postgres_mid_run_leaves_the_run_intact(live: LiveCluster) -> None:
    run_id = live.submit(*LONG_RUN, "--seed", "40")
    repository = live.repository()
    poll(
        lambda: repository.get_run(run_id).steps_done >= 10_000,
        timeout_s=180,
        what="run reaches step 10,000",
    )
    at_restart = repository.get_run(run_id).steps_done
    start = time.monotonic()
    live.compose("restart", "postgres")
    final = wait_terminal(live, [run_id], timeout_s=300)[0]
    assert final.status is RunStatus.SUCCEEDED, final.error
    assert_steps_exactly(live, run_id, 60_000)
    report(
        "docker-compose restart postgres mid-run",
        steps_at_restart=at_restart,
        done_after_s=round(time.monotonic() - start, 1),
        attempt=final.attempt,
    )


def test_down_and_up_again_keeps_the_history(live: LiveCluster) -> None:
    run_id = live.submit("--steps", "2000", "--seed", "50")
    wait_terminal(live, [run_id])
    before = live.host_trainq("runs", "list", "--format", "json")
    metrics_before = live.host_trainq("metrics", str(run_id), "--format", "csv")
    assert before.returncode == 0 and metrics_before.returncode == 0, before.stderr

    live.down(volumes=False)
    live.up(workers=2)

    after = live.host_trainq("runs", "list", "--format", "json")
    assert after.stdout == before.stdout
    assert live.host_trainq("metrics", str(run_id), "--format", "csv").stdout == (
        metrics_before.stdout
    )


def test_redis_refuses_a_client_without_the_password_from_another_container(
    live: LiveCluster,
) -> None:
    result = run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            f"{live.project}_default",
            "--entrypoint",
            "redis-cli",
            live.variables.get("REDIS_IMAGE", "redis:7-bookworm"),
            "-h",
            "redis",
            "ping",
        ],
        check=False,
    )
    output = result.stdout + result.stderr
    assert "PONG" not in output
    assert "NOAUTH" in output


def test_no_port_is_published_but_flowers_and_the_dashboards_on_loopback(
    live: LiveCluster,
) -> None:
    ids = run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={live.project}"]
    ).stdout.split()
    published = {}
    for container in ids:
        service = run(
            [
                "docker",
                "inspect",
                "-f",
                '{{ index .Config.Labels "com.docker.compose.service" }}',
                container,
            ]
        )
        ports = run(["docker", "port", container]).stdout.split("\n")
        published[service.stdout.strip()] = sorted(p for p in ports if p)
    flower_port = live.variables["FLOWER_HOST_PORT"]
    assert published.pop("flower") == [f"5555/tcp -> 127.0.0.1:{flower_port}"]
    dashboard_port = live.variables["DASHBOARD_HOST_PORT"]
    assert published.pop("dashboard") == [f"8050/tcp -> 127.0.0.1:{dashboard_port}"]
    assert all(ports == [] for ports in published.values()), published


@pytest.mark.parametrize("statement", ["DROP TABLE runs", "CREATE TABLE intruder (id int)"])
def test_the_app_database_role_cannot_change_the_schema(live: LiveCluster, statement: str) -> None:
    password = live.variables["POSTGRES_APP_PASSWORD"]
    result = live.compose(
        "exec",
        "-T",
        "postgres",
        "psql",
        "-v",
        "ON_ERROR_STOP=1",
        f"postgresql://trainq_app:{password}@127.0.0.1:5432/trainq",
        "-c",
        statement,
        check=False,
    )
    assert result.returncode != 0
    assert "permission denied" in result.stderr or "must be owner" in result.stderr


def test_the_dashboard_answers_on_the_hosts_loopback_and_its_role_cannot_write(
    live: LiveCluster,
) -> None:
    run_id = live.submit("--steps", "100")
    wait_terminal(live, [run_id])
    url = f"http://127.0.0.1:{live.variables['DASHBOARD_HOST_PORT']}"
    poll(lambda: _get(url + "/") is not None, timeout_s=120, what="the dashboard answering")
    assert f'data-run-id="{run_id}"' in (_get(url + "/") or "")
    metrics = json.loads(_get(f"{url}/api/runs/{run_id}/metrics") or "{}")
    assert metrics["steps"][-1] == 100
    password = live.variables["POSTGRES_DASHBOARD_PASSWORD"]
    for statement in ("UPDATE runs SET name = 'x'", "CREATE TABLE intruder (id int)"):
        result = live.compose(
            "exec",
            "-T",
            "postgres",
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            f"postgresql://trainq_dashboard:{password}@127.0.0.1:5432/trainq",
            "-c",
            statement,
            check=False,
        )
        assert result.returncode != 0, statement
        assert "read-only transaction" in result.stderr, result.stderr


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return None
