"""Packed sweeps on a real cluster (`trainq worker` processes, Redis, PostgreSQL).

A worker SIGKILLed mid-pack: every trial resumes from its newest checkpoint on the other worker,
each metric step is stored once, no rung decision twice, and every trial ends with the very
weights of an uninterrupted packed sweep of the same file. A trial cancelled mid-pack stops
there; its pack-mates go on.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np

from storage import Repository, RunRecord, RunStatus
from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster
from tests.integration.test_sweep_faults import owned_by, start_sweep, wait_for_sweep

# Four trials in one pack of 4 (pack given: the census must not decide it here); ASHA prunes
# some at 1,000 and their slots start new trials, which form packs of their own. The kill test
# packs eight.
SWEEP = """
name: packed-faults
method: grid
seed: 11
max_concurrent: 4
pack: 4
val_size: 5000
parameters:
  lr:        {values: [0.02, 0.002, 0.5, 0.0005, 0.1, 1.0]}
  init:      {value: zeros}
  momentum:  {values: [0.9, 0.0]}
  steps:     {value: 4000}
  chunk_steps: {value: 500}
  checkpoint_every: {value: 500}
early_terminate: {type: asha, min_steps: 1000, reduction_factor: 2}
"""


def by_trial(repository: Repository, sweep_id: int) -> dict[int, RunRecord]:
    return {run.trial or 0: run for run in repository.list_runs(sweep_id=sweep_id)}


def test_a_worker_killed_mid_pack_leaves_every_trial_bit_identical_to_an_uninterrupted_sweep(
    cluster: Cluster, tmp_path: Path
) -> None:
    path = tmp_path / "sweep.yaml"
    # Packs of 8: decided together at step 1,000, 4 go on in a pack of 4 (a pack of 4 narrows to
    # trials alone at its first rung), which the kill finds past step 1,500.
    path.write_text(SWEEP.replace("max_concurrent: 4\npack: 4", "max_concurrent: 8\npack: 8"))
    first = cluster.start_worker(worker_command())
    repository = cluster.repository()
    sweep_id = start_sweep(cluster, path)
    deadline = time.monotonic() + 180
    packed: list[RunRecord] = []
    while len(packed) < 2:  # a pack of the first worker, past its first rung
        assert time.monotonic() < deadline, "no pack of the first worker got past step 1,500"
        running = repository.list_runs(sweep_id=sweep_id, statuses=[RunStatus.RUNNING])
        packed = [r for r in running if r.steps_done >= 1500 and owned_by(first.process.pid, r)]
        time.sleep(0.02)
    first.kill()
    cluster.start_worker(worker_command())
    wait_for_sweep(repository, sweep_id, timeout_s=300)

    trials = by_trial(repository, sweep_id)
    assert sorted(trials) == list(range(12))  # each trial created once
    assert all(run.status is RunStatus.SUCCEEDED for run in trials.values())
    assert all(parse_pack(run) == 8 for run in trials.values())
    for victim in packed:
        assert repository.get_run(victim.id).attempt == 2  # resumed once, elsewhere
    results = repository.list_rung_results(sweep_id)
    keys = [(r.rung_step, r.run_id) for r in results]
    assert len(keys) == len(set(keys))
    for run in trials.values():
        rows = repository.read_metrics(run.id)
        assert [row.step for row in rows] == list(range(1, run.steps_done + 1))
    first_pack = {run.id for run in trials.values() if (run.trial or 0) < 8}
    ended_in_it = [  # the first eight trials started together, in one pack
        run for run in trials.values() if run.id in first_pack and run.attempt == 1
    ]
    assert ended_in_it, "every trial of the first pack was taken over"
    for run in ended_in_it:
        assert run.train_summary is not None
        assert set(run.train_summary.packed_with) == first_pack - {run.id}, run.id

    # Asynchronous ASHA decides by what reached a rung first, which the kill reorders: a trial
    # may stop at another rung than in the reference sweep, but every checkpoint both sweeps
    # stored, final weights included, is the same to the bit.
    reference_id = start_sweep(cluster, path)
    wait_for_sweep(repository, reference_id, timeout_s=300)
    reference = by_trial(repository, reference_id)
    compared_to_the_end = 0
    for trial, run in trials.items():
        again = reference[trial]
        ours = {info.step for info in repository.list_checkpoints(run.id)}
        theirs = {info.step for info in repository.list_checkpoints(again.id)}
        common = sorted(ours & theirs)
        assert common, trial
        for step in common:
            one = repository.get_checkpoint(run.id, step).arrays
            other = repository.get_checkpoint(again.id, step).arrays
            assert sorted(one) == sorted(other)
            for name, array in one.items():
                assert np.array_equal(array, other[name]), (trial, step, name)
        compared_to_the_end += run.steps_done == again.steps_done == 4000
    assert compared_to_the_end >= 1


def parse_pack(run: RunRecord) -> int:
    return int(run.config["pack"])


def test_a_trial_cancelled_mid_pack_stops_and_its_mates_go_on(
    cluster: Cluster, tmp_path: Path
) -> None:
    path = tmp_path / "sweep.yaml"
    # Four trials (one pack) without ASHA, long enough that `trainq cancel` (a process of its
    # own) lands mid-run on a loaded machine.
    text = SWEEP.replace(
        "early_terminate: {type: asha, min_steps: 1000, reduction_factor: 2}\n", ""
    )
    text = text.replace("{value: 4000}", "{value: 12000}")
    path.write_text(text.replace("[0.02, 0.002, 0.5, 0.0005, 0.1, 1.0]", "[0.02, 0.002]"))
    cluster.start_worker(worker_command())
    repository = cluster.repository()
    sweep_id = start_sweep(cluster, path)
    deadline = time.monotonic() + 120
    running: list[RunRecord] = []
    while len(running) < 4 or min(r.steps_done for r in running) < 500:
        assert time.monotonic() < deadline, "the first pack did not start"
        running = repository.list_runs(sweep_id=sweep_id, statuses=[RunStatus.RUNNING])
        time.sleep(0.02)
    victim = min(running, key=lambda r: r.trial or 0)
    result = cluster.trainq("cancel", str(victim.id))
    assert result.returncode == 0, result.stderr
    wait_for_sweep(repository, sweep_id, timeout_s=300)
    trials = by_trial(repository, sweep_id)
    cancelled = trials[victim.trial or 0]
    assert cancelled.status is RunStatus.CANCELLED
    assert 500 <= cancelled.steps_done < 12000
    mates = [trials[r.trial or 0] for r in running if r.id != victim.id]
    assert all(m.status is RunStatus.SUCCEEDED and m.steps_done == 12000 for m in mates)


def test_a_worker_stopped_mid_pack_hands_every_trial_back_without_spending_an_attempt(
    cluster: Cluster, tmp_path: Path
) -> None:
    path = tmp_path / "sweep.yaml"
    six_trials = SWEEP.replace("{values: [0.9, 0.0]}", "{value: 0.9}")
    path.write_text(six_trials.replace("early_terminate:", "# early_terminate:"))
    stopping = cluster.start_worker(worker_command())
    repository = cluster.repository()
    sweep_id = start_sweep(cluster, path)
    deadline = time.monotonic() + 120
    running: list[RunRecord] = []
    while len(running) < 4 or min(r.steps_done for r in running) < 500:
        assert time.monotonic() < deadline, "the first pack did not start"
        running = repository.list_runs(sweep_id=sweep_id, statuses=[RunStatus.RUNNING])
        time.sleep(0.02)
    stopping.signal_main(signal.SIGTERM)  # `docker stop`: hand back at the next chunk
    stopping.process.wait(timeout=30)
    for run in running:  # every trial of the pack back in the queue, its checkpoint kept
        back = repository.get_run(run.id)
        assert back.status is RunStatus.QUEUED, (back.id, back.status)
        assert back.steps_done >= 500
    cluster.start_worker(worker_command())
    wait_for_sweep(repository, sweep_id, timeout_s=300)
    for run in running:
        done = repository.get_run(run.id)
        assert done.status is RunStatus.SUCCEEDED and done.attempt == 1, done
        rows = repository.read_metrics(run.id)
        assert [row.step for row in rows] == list(range(1, 4001))
