"""A worker that is still alive says when it gives a run up, and the run is taken over at once:
a graceful stop hands it back at the next chunk, a dead job process is released by its worker."""

from __future__ import annotations

import re
import signal
import time
from dataclasses import dataclass
from datetime import datetime

import pytest

from storage.records import RunRecord, RunStatus
from tests.cluster.compose import worker_command
from tests.integration.chaos import ChaosPlan, submit_runs
from tests.integration.harness import Cluster, WorkerProcess, wait_for
from tests.integration.test_cluster import assert_steps_exactly, submit

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

#: From the fault (SIGTERM, SIGKILL of the job process) to the run training on another process.
TAKEOVER_LIMIT_S = 5.0
CHUNK_STEPS = 500
LONG_RUN = ("--steps", "40000", "--chunk-steps", str(CHUNK_STEPS), "--checkpoint-every", "10000")


@dataclass(frozen=True)
class Takeover:
    """How a run moved from one job process to the next."""

    claimed_s: float  # fault → claimed by a new job process (from the claimer's log)
    training_s: float  # fault → the new process's first chunk seen in the database (polled)
    after: RunRecord  # the run when that chunk was seen


def two_warm_workers(cluster: Cluster) -> list[WorkerProcess]:
    """Two workers whose job processes have trained once (TensorFlow imported, data loaded, the
    chunk function of LONG_RUN's shape compiled), so that a takeover measures the queue."""
    workers = [cluster.start_worker(worker_command()) for _ in range(2)]
    for worker in workers:
        worker.wait_warm()  # observed: while its job process warms up, a worker takes no job
    repository = cluster.repository()
    # Two runs published at once: a worker holds one job at a time, so the other takes the second.
    warmups = ChaosPlan(runs=2, steps=4 * CHUNK_STEPS, chunk_steps=CHUNK_STEPS, faults=0)
    for _ in range(4):
        for run_id in submit_runs(cluster, warmups):
            assert wait_for(run_id, repository, timeout_s=120).status is RunStatus.SUCCEEDED
        if all("claimed as attempt" in worker.log() for worker in workers):
            break
    assert all("claimed as attempt" in worker.log() for worker in workers), [
        worker.log() for worker in workers
    ]
    return workers


def worker_training(cluster: Cluster, workers: list[WorkerProcess], run_id: int) -> WorkerProcess:
    """Wait until run ``run_id`` has trained a few chunks; return the worker that trains it."""
    repository = cluster.repository()
    deadline = time.monotonic() + 120
    while repository.get_run(run_id).steps_done < 6 * CHUNK_STEPS:
        assert time.monotonic() < deadline, "the run never started training"
        time.sleep(0.02)
    owners = [w for w in workers if f"run {run_id}: claimed as attempt" in w.log()]
    assert len(owners) == 1, [w.log() for w in workers]
    return owners[0]


def logged_step(worker: WorkerProcess, text: str) -> int:
    """The step a worker logged after ``text`` (e.g. ``resuming from checkpoint at step``)."""
    found = re.findall(re.escape(text) + r" (\d+)", worker.log())
    assert found, f"{text!r} not in the log of {worker.name}:\n{worker.log()}"
    return int(found[-1])


_LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): [^]]*\] (.*)$", re.MULTILINE)


def logged_at(workers: list[WorkerProcess], text: str, after: float) -> float | None:
    """Epoch seconds of the first log line containing ``text`` at or after ``after``."""
    times = []
    for worker in workers:
        for stamp, message in _LOG_LINE.findall(worker.log()):
            moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if text in message and moment >= after - 0.001:
                times.append(moment)
    return min(times, default=None)


def watch_takeover(
    cluster: Cluster, workers: list[WorkerProcess], before: RunRecord, inject: float
) -> Takeover:
    """After a fault at ``inject`` (epoch s), wait until another job process trains ``before``'s
    run. Polling runs on the same two busy cores as the workers, so the claim time is read from
    the claimer's log instead."""
    repository = cluster.repository()
    while time.time() < inject + 60:
        run = repository.get_run(before.id)
        moved = run.lease_owner not in (None, before.lease_owner)
        if (moved and run.steps_done > before.steps_done) or run.status.terminal:
            training_s = time.time() - inject
            claimed = logged_at(workers, f"run {before.id}: claimed as attempt", inject)
            assert claimed is not None
            return Takeover(claimed - inject, training_s, run)
        time.sleep(0.01)
    raise AssertionError(f"run {before.id} was not taken over within 60 s")


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_a_stopped_worker_hands_its_run_to_another_worker_at_once_without_spending_an_attempt(
    cluster: Cluster, how: str
) -> None:
    workers = two_warm_workers(cluster)
    repository = cluster.repository()
    # One attempt only: a hand-back that spent it would leave the run FAILED.
    run_id = submit(cluster, *LONG_RUN, "--seed", "7", "--max-attempts", "1")
    stopping = worker_training(cluster, workers, run_id)

    before = repository.get_run(run_id)
    inject = time.time()
    if how == "sigterm":
        stopping.signal_main(signal.SIGTERM)  # `kill PID`, `docker stop` through tini
    else:
        stopping.press_ctrl_c()  # reaches the job process too, which must ignore it
    takeover = watch_takeover(cluster, workers, before, inject)
    stopping.process.wait(timeout=15)
    exit_s = time.time() - inject

    finished = wait_for(run_id, repository, timeout_s=240)
    assert finished.status is RunStatus.SUCCEEDED, finished.error
    assert finished.attempt == 1
    assert_steps_exactly(cluster, run_id, 40_000)
    handed_back_at = logged_step(stopping, "handed back at step")
    resumed_at = logged_step(
        next(w for w in workers if w is not stopping), "resuming from checkpoint at step"
    )
    assert resumed_at == handed_back_at
    recomputed = max(0, before.steps_done - resumed_at)
    print(
        f"\nstop→claimed {takeover.claimed_s:.2f} s, stop→training {takeover.training_s:.2f} s, "
        f"worker exited after {exit_s:.2f} s, steps recomputed {recomputed}"
    )
    assert takeover.claimed_s <= TAKEOVER_LIMIT_S
    assert takeover.training_s <= TAKEOVER_LIMIT_S
    assert recomputed <= CHUNK_STEPS
    assert exit_s <= 10
    # The hand-back stored a checkpoint where it stopped, off the 10,000-step interval if need be.
    assert handed_back_at in {info.step for info in repository.list_checkpoints(run_id)}


def test_a_killed_job_process_is_released_by_its_worker_and_taken_over_at_once(
    cluster: Cluster,
) -> None:
    workers = two_warm_workers(cluster)
    repository = cluster.repository()
    run_id = submit(cluster, *LONG_RUN, "--seed", "8")
    owner = worker_training(cluster, workers, run_id)

    before = repository.get_run(run_id)
    inject = time.time()
    owner.kill_job_process()
    takeover = watch_takeover(cluster, workers, before, inject)

    finished = wait_for(run_id, repository, timeout_s=240)
    assert finished.status is RunStatus.SUCCEEDED, finished.error
    assert finished.attempt == 2  # a lost process spends its attempt
    assert_steps_exactly(cluster, run_id, 40_000)
    recomputed = before.steps_done % 10_000
    print(
        f"\nkill→claimed {takeover.claimed_s:.2f} s, kill→training {takeover.training_s:.2f} s, "
        f"steps recomputed ≤ {recomputed + CHUNK_STEPS}"
    )
    assert takeover.claimed_s <= TAKEOVER_LIMIT_S
    assert owner.alive() and "job process" in owner.log() and "was lost" in owner.log()
