"""A sweep on a real cluster (2 `trainq worker` processes): a worker SIGKILLed mid-sweep."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import redis

from storage import Repository, RunRecord, RunStatus
from storage.sweep_records import SweepStatus
from tests.cluster.compose import worker_command
from tests.integration.harness import REDIS_HOST_URL, REDIS_TEST_DB, Cluster

# One configuration (zeros, momentum 0.9, lr 0.02, cosine) leads at every rung and at the end, so
# ASHA keeps it whatever order the trials reach their rungs in; trials are deterministic.
SWEEP = """
name: faults
method: grid
seed: 5
max_concurrent: 2
val_size: 5000
parameters:
  lr:        {values: [0.02, 0.002, 0.5, 0.0005, 0.1, 1.0]}
  init:      {value: zeros}
  momentum:  {value: 0.9}
  schedule:  {value: cosine}
  steps:     {value: 6000}
  chunk_steps: {value: 500}
  checkpoint_every: {value: 1000}
early_terminate: {type: asha, min_steps: 1000, reduction_factor: 2}
"""


def start_sweep(cluster: Cluster, path: Path) -> int:
    result = cluster.trainq("sweep", "start", str(path), "--no-wait", "--json")
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["sweep_id"])


def wait_for_sweep(repository: Repository, sweep_id: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not repository.get_sweep(sweep_id).status.terminal:
        assert time.monotonic() < deadline, "the sweep did not finish"
        time.sleep(0.2)


def owned_by(worker_pid: int, run: RunRecord) -> bool:
    """Whether ``run``'s lease is held by a job process of the worker whose main pid is given."""
    if not run.lease_owner:
        return False
    children = Path(f"/proc/{worker_pid}/task/{worker_pid}/children").read_text().split()
    return run.lease_owner.split(":")[1] in children


def report(cluster: Cluster, sweep_id: int) -> dict[str, object]:
    result = cluster.trainq("sweep", "show", str(sweep_id), "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_sweep_survives_a_killed_worker_and_picks_the_same_best_trial(
    cluster: Cluster, tmp_path: Path
) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    workers = [cluster.start_worker(worker_command()) for _ in range(2)]
    repository = cluster.repository()
    sweep_id = start_sweep(cluster, path)
    # Whichever worker holds a trial past step 1,500 is killed: which worker claims which trial
    # (and whether one claims both in a pack) depends on timing, so waiting for a given worker's
    # trial could wait for one it never gets.
    deadline = time.monotonic() + 180
    victim = owner = None
    while victim is None or owner is None:
        assert time.monotonic() < deadline, "no running trial got past step 1,500"
        running = repository.list_runs(sweep_id=sweep_id, statuses=[RunStatus.RUNNING])
        victim = next((r for r in running if r.steps_done >= 1500), None)
        if victim is not None:
            owner = next((w for w in workers if owned_by(w.process.pid, victim)), None)
        time.sleep(0.02)
    owner.kill()
    wait_for_sweep(repository, sweep_id, timeout_s=300)

    runs = repository.list_runs(sweep_id=sweep_id)
    assert sorted(run.trial for run in runs) == list(range(6))  # each trial created once
    assert all(run.status is RunStatus.SUCCEEDED for run in runs), [r.error for r in runs]
    assert repository.get_run(victim.id).attempt == 2  # resumed once, by the other worker
    results = repository.list_rung_results(sweep_id)
    keys = [(r.rung_step, r.run_id) for r in results]
    assert len(keys) == len(set(keys))
    for run in runs:  # a trial stops exactly at the rung that pruned it, or trains to the end
        pruned = [r.rung_step for r in results if r.run_id == run.id and not r.continued]
        assert run.steps_done == (pruned[0] if pruned else 6000)
        assert bool((run.summary or {}).get("pruned")) == bool(pruned)
        rows = repository.read_metrics(run.id)
        assert [row.step for row in rows] == list(range(1, run.steps_done + 1))

    killed = report(cluster, sweep_id)
    reference_id = start_sweep(cluster, path)
    wait_for_sweep(repository, reference_id, timeout_s=300)
    reference = report(cluster, reference_id)
    assert repository.get_sweep(reference_id).status is SweepStatus.SUCCEEDED
    best = {key: killed[key] for key in ("best_objective", "best_params")}
    assert best == {key: reference[key] for key in ("best_objective", "best_params")}


def queue_length(queue: str = "train") -> int:
    client = redis.Redis.from_url(f"{REDIS_HOST_URL}/{REDIS_TEST_DB}")
    try:
        return int(client.llen(queue))
    finally:
        client.close()


def test_sweep_resume_on_a_cluster_publishes_a_trial_whose_publisher_died(
    cluster: Cluster, tmp_path: Path
) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    sweep_id = start_sweep(cluster, path)  # no worker: the first 2 trials wait in the queue
    assert queue_length() == 2
    repository = cluster.repository()
    first = repository.list_runs(sweep_id=sweep_id, statuses=[RunStatus.QUEUED])[-1]
    claimed = repository.claim_run(first.id, owner="gone", worker_host="h", lease_ttl_s=30)
    assert claimed is not None
    repository.finish_run(first.id, claimed.attempt, RunStatus.SUCCEEDED)  # then the job died
    [new] = [run for run in repository.list_runs(sweep_id=sweep_id) if run.trial == 2]
    assert new.published_at is None and queue_length() == 2

    result = cluster.trainq("sweep", "resume", str(sweep_id))
    assert result.returncode == 0, result.stderr
    assert "the workers carry it on" in result.stdout
    assert repository.get_run(new.id).published_at is not None and queue_length() == 3


def test_sweep_start_wait_on_a_cluster_tells_each_trial_as_it_ends(
    cluster: Cluster, tmp_path: Path
) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "name: follow\nmethod: grid\nseed: 5\nmax_concurrent: 3\nval_size: 2000\n"
        "parameters:\n  lr: {values: [0.1, 0.01, 0.001]}\n  steps: {value: 600}\n"
    )
    cluster.start_worker(worker_command())
    result = cluster.trainq("sweep", "start", str(path), "--wait")
    assert result.returncode == 0, result.stderr
    ended = re.findall(r"^trial (\d) \(run \d+\): succeeded after 600 steps$", result.stderr, re.M)
    assert sorted(ended) == ["0", "1", "2"], result.stderr
    assert "best: trial" in result.stdout
