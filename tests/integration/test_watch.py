"""`trainq runs watch` follows queued runs on a real worker to the end, never in silence."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from storage.records import RunStatus
from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def test_runs_watch_says_nobody_takes_the_queue_then_follows_both_runs_to_their_summaries(
    cluster: Cluster,
) -> None:
    for _ in range(2):
        assert cluster.trainq("train", "--no-wait", "--steps", "2000").returncode == 0
    watch = subprocess.Popen(
        [sys.executable, "-m", "api_cli", "runs", "watch", "1", "2", "--timeout", "240"],
        env=cluster.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)  # the census answered: no worker yet
        cluster.start_worker(worker_command())
        stdout, stderr = watch.communicate(timeout=300)
    finally:
        watch.kill()
        watch.wait()
    assert watch.returncode == 0, stderr
    assert "no online worker consumes queue 'train'" in stderr
    assert "run 1 queued: 1st in queue 'train'" in stderr
    for run_id in (1, 2):
        run = cluster.repository().get_run(run_id)
        assert run.status is RunStatus.SUCCEEDED
        summary = run.train_summary
        assert summary is not None and summary.final_loss is not None
        assert f"run {run_id} succeeded: 2,000 steps" in stdout
        assert f"final loss {summary.final_loss:.4f}" in stdout
