"""Waiting on a cluster never hangs in silence: no consumer is named, --timeout, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Cluster, cluster_environment
from tests.services import require_postgres, require_redis
from worker.gpu_probe import nvidia_driver_loaded

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A database and a Redis database, and no worker at all."""
    require_postgres()
    require_redis()
    name = f"trainq_cli_{os.getpid()}_{request.node.name[:30].lower()}"
    with cluster_environment(tmp_path, name) as environment:
        yield environment


def test_a_wait_on_a_queue_no_worker_consumes_says_so_and_ends_at_the_timeout_with_exit_75(
    cluster: Cluster,
) -> None:
    started = time.monotonic()
    result = cluster.trainq(
        "train", "--device", "gpu", "--wait", "--steps", "100", "--timeout", "3"
    )
    assert time.monotonic() - started < 30
    assert result.returncode == 75, result.stderr
    assert "no online worker consumes queue 'gpu'" in result.stderr
    assert "trainq worker --queues gpu --device gpu" in result.stderr
    assert "1st in queue 'gpu'" in result.stderr
    assert "is still queued after --timeout 3 s; it goes on" in result.stderr
    assert cluster.repository().get_run(1).status.value == "queued"


def test_runs_watch_with_a_timeout_prints_the_run_json_and_exits_75(cluster: Cluster) -> None:
    import json

    assert cluster.trainq("train", "--no-wait", "--steps", "100").returncode == 0
    result = cluster.trainq("runs", "watch", "1", "--timeout", "1", "--json")
    assert result.returncode == 75, result.stderr
    assert json.loads(result.stdout)["status"] == "queued"


def test_ctrl_c_during_a_cluster_wait_says_the_run_goes_on_and_how_to_attach_again(
    cluster: Cluster,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "api_cli", "train", "--wait", "--steps", "100"],
        env=cluster.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("run 1 queued on queue 'train'")
        time.sleep(1.0)  # inside the wait
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, stderr
    assert "run 1 goes on without this terminal" in stderr
    assert "`trainq runs watch 1`" in stderr
    assert "Traceback" not in stderr
    assert cluster.repository().get_run(1).status.value == "queued"


def test_runs_show_on_postgresql_shows_every_hyperparameter_in_config_order(
    cluster: Cluster,
) -> None:
    from api_cli.views import HOW_IT_RAN, SAID_BY_THE_DATA_ROW
    from worker.config import TrainConfig

    assert cluster.trainq("train", "--no-wait", "--lr", "0.05").returncode == 0
    shown = cluster.trainq("runs", "show", "1").stdout
    names = [line.split()[0] for line in shown.splitlines() if line.startswith("  ")]
    # How it ran (xla) stands beside the device, and the data row names the dataset.
    hidden = (*HOW_IT_RAN, *SAID_BY_THE_DATA_ROW)
    assert names == [name for name in TrainConfig.model_fields if name not in hidden]
    assert any(line.split() == ["learning_rate", "0.05"] for line in shown.splitlines())


def test_a_gpu_worker_refuses_to_start_on_a_machine_without_a_gpu(cluster: Cluster) -> None:
    if nvidia_driver_loaded():
        pytest.skip("this machine has an NVIDIA driver")
    result = cluster.trainq("worker", "--device", "gpu", timeout_s=60)
    assert result.returncode == 2
    assert "--device gpu: no NVIDIA GPU driver is loaded" in result.stderr
    assert "--device cpu" in result.stderr and "Traceback" not in result.stderr


def test_a_gpu_worker_refuses_a_standby_process(cluster: Cluster) -> None:
    # A warm spare would map the GPU's memory beside the running job (worker.cluster.standby).
    result = cluster.trainq("worker", "--device", "gpu", "--standby", "1", timeout_s=60)
    assert result.returncode == 78
    assert "--standby 1 with --device gpu" in result.stderr
    assert "--standby 0" in result.stderr and "Traceback" not in result.stderr
