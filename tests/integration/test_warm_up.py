"""A job process warms up (TensorFlow, data, the compiled chunk) before it takes a job: the first
job of a worker and the job its replacement process takes after a SIGKILL compile nothing."""

from __future__ import annotations

import re
import signal
import time

import pytest

from storage.records import RunStatus
from tests.cluster.compose import worker_command
from tests.integration.chaos import ChaosPlan, submit_runs
from tests.integration.harness import Cluster, wait_for
from worker.cluster.idle_cpu import idle_threads

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


_WARM = re.compile(r"job process (\d+) warm in ")


def test_a_killed_job_processes_next_job_goes_to_the_warm_standby_at_once(
    cluster: Cluster,
) -> None:
    worker = cluster.start_worker(worker_command())  # --standby 1 by default
    deadline = time.monotonic() + 240
    while len(_WARM.findall(worker.log())) < 2:  # the job process and its standby
        assert time.monotonic() < deadline and worker.alive(), worker.log()
        time.sleep(0.1)
    repository = cluster.repository()
    plan = ChaosPlan(runs=2, steps=20_000, chunk_steps=500, checkpoint_every_steps=5_000, faults=1)
    first, second = submit_runs(cluster, plan)
    while repository.get_run(first).steps_done < 1_500:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.02)
    # One job at a time: the standby holds no run while the first trains.
    assert repository.get_run(second).steps_done == 0
    killed = worker.kill_job_process()
    killed_at = time.monotonic()
    standby = next(int(pid) for pid in _WARM.findall(worker.log()) if int(pid) != killed)
    # Either run may come next (the killed one's message is requeued), to the standby.
    while not any(
        f":{standby}:" in (repository.get_run(run_id).lease_owner or "")
        for run_id in (first, second)
    ):
        assert time.monotonic() - killed_at < 30, worker.log()
        time.sleep(0.02)
    claimed_s = time.monotonic() - killed_at

    runs = [wait_for(run_id, repository, timeout_s=180) for run_id in (first, second)]

    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 2, worker.log()
    log = worker.log()
    warm_pids = [int(pid) for pid in _WARM.findall(log)]
    claims = [(m.start(), int(m.group(3))) for m in _CLAIM.finditer(log)]
    assert claims[0][1] == killed and claims[1][1] == standby, log
    assert standby in warm_pids[:2]
    # The standby claimed before the process that replaced the killed one had warmed up.
    replacement = warm_pids[2:]
    assert not replacement or log.find(f"job process {replacement[0]} warm in ") > claims[1][0]
    print(f"\nkill → next claim by the standby: {claimed_s:.2f} s")
    assert claimed_s < 10  # generous; the order of the log lines above is the real check


def test_a_stopping_worker_does_not_wait_for_its_standby_to_finish_warming_up(
    cluster: Cluster,
) -> None:
    worker = cluster.start_worker(worker_command())
    worker.wait_warm()  # the first job process is warm; its standby starts warming now
    warm_pids = _WARM.findall(worker.log())
    assert len(warm_pids) == 1, worker.log()
    stopped_at = time.monotonic()
    worker.signal_main(signal.SIGTERM)
    worker.process.wait(timeout=60)
    exit_s = time.monotonic() - stopped_at

    log = worker.log()
    # The standby left mid-warm-up instead of finishing it (it never logged being warm).
    assert _WARM.findall(log) == warm_pids, log
    print(f"\nstop → exit with a warming standby: {exit_s:.2f} s")
    assert worker.process.returncode == 0, log


def test_a_workers_spare_warms_up_on_idle_cpu_and_no_thread_stays_idle(
    cluster: Cluster,
) -> None:
    worker = cluster.start_worker(worker_command())  # --standby 1: two job processes
    deadline = time.monotonic() + 240
    while len(_WARM.findall(worker.log())) < 2:
        assert time.monotonic() < deadline and worker.alive(), worker.log()
        time.sleep(0.1)

    log = worker.log()
    first, second = (line for line in log.splitlines() if _WARM.search(line))
    # The first process is needed for the worker's one job slot: normal priority, in its turn.
    assert "for its turn" in first, log
    # The second finds one warm process per job slot: a spare, warmed on idle CPU.
    assert "a spare, on idle CPU; waited " in second, log
    # The idle thread ended with the warm-up, and the pools a job trains on were not born there.
    job_pids = worker.job_pids()
    assert len(job_pids) == 2, log
    assert {pid: idle_threads(pid) for pid in job_pids} == {pid: [] for pid in job_pids}, log
