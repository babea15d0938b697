"""A job process warms up (TensorFlow, data, the compiled chunk) before it takes a job: the first
job of a worker and the job its replacement process takes after a SIGKILL compile nothing."""

from __future__ import annotations

import re
import time

import pytest

from storage.records import RunStatus
from tests.cluster.compose import worker_command
from tests.integration.chaos import ChaosPlan, submit_runs
from tests.integration.harness import Cluster, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

_CLAIM = re.compile(r"run (\d+): claimed as attempt (\d+) by [^:]+:(\d+):")
_FIRST_CHUNK = re.compile(r"run (\d+): first chunk done at step \d+, .* (\d+) new compilations?\)")


def test_a_job_process_and_its_replacement_after_a_kill_are_warm_before_their_first_job(
    cluster: Cluster,
) -> None:
    worker = cluster.start_worker(worker_command())
    worker.wait_warm()
    repository = cluster.repository()
    plan = ChaosPlan(runs=1, steps=20_000, chunk_steps=500, checkpoint_every_steps=5_000, faults=1)
    (run_id,) = submit_runs(cluster, plan)
    deadline = time.monotonic() + 120
    while repository.get_run(run_id).steps_done < 1_500:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.02)
    killed = worker.kill_job_process()

    run = wait_for(run_id, repository, timeout_s=180)

    assert run.status is RunStatus.SUCCEEDED, worker.log()
    log = worker.log()
    claims = [(m.start(), int(m.group(2)), int(m.group(3))) for m in _CLAIM.finditer(log)]
    assert [attempt for _, attempt, _ in claims] == [1, 2], log
    assert claims[0][2] == killed and claims[1][2] != killed, log
    for position, _, pid in claims:
        # The pool gave the job to a process only after its warm-up had finished.
        warm = log.find(f"job process {pid} warm in ")
        assert 0 <= warm < position, f"process {pid} took a job before its warm-up:\n{log}"
    # Each attempt's start-up line is there (no log line lost) and says it compiled nothing.
    compilations = [int(m.group(2)) for m in _FIRST_CHUNK.finditer(log)]
    assert compilations == [0, 0], log
