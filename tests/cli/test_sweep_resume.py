"""An embedded sweep survives its process: SIGKILL or Ctrl-C mid-trial, then `sweep resume`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from storage import Database, Repository, StorageError
from storage.records import RunRecord, RunStatus
from tests.cli.conftest import embedded_env

pytestmark = pytest.mark.slow

INTERRUPTED = 130
STEPS = 4000

# Rungs at 500, 1000 and 2000 steps (eta 2); a checkpoint every 500 steps, chunks of 100. Trials
# run in order; trial 1 (lr 0.05) beats trial 0 at every rung, so it trains to the end and is the
# one interrupted past its first rung.
SWEEP = f"""
name: resumable
metric: {{name: val_accuracy, goal: maximize}}
method: grid
seed: 11
max_concurrent: 2
val_size: 2000
parameters:
  lr:          {{values: [0.002, 0.05, 0.01, 0.5]}}
  init:        {{value: zeros}}
  momentum:    {{value: 0.9}}
  steps:       {{value: {STEPS}}}
  chunk_steps: {{value: 100}}
  checkpoint_every: {{value: 500}}
early_terminate: {{type: asha, min_steps: 500, reduction_factor: 2}}
"""


def trainq(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def start_sweep(env: dict[str, str], path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "api_cli", "sweep", "start", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def second_trial_past_its_first_checkpoint(
    repository: Repository, process: subprocess.Popen[str]
) -> RunRecord:
    """Wait until one trial ended and a later one trained past step 500 (its first rung)."""
    deadline = time.monotonic() + 240
    while True:
        assert time.monotonic() < deadline, "no second trial got past its first checkpoint"
        assert process.poll() is None, "the sweep ended before it could be interrupted"
        try:
            runs = repository.list_runs()
        except StorageError:  # the file or its schema does not exist yet
            runs = []
        if any(run.status.terminal for run in runs):
            for run in runs:
                if run.status is RunStatus.RUNNING and run.steps_done >= 600:
                    return run
        time.sleep(0.01)


def check_every_trial_ended_once(repository: Repository, sweep_id: int) -> None:
    runs = repository.list_runs(sweep_id=sweep_id)
    assert sorted(run.trial for run in runs) == [0, 1, 2, 3]  # each trial created once
    assert all(run.status is RunStatus.SUCCEEDED for run in runs), [r.error for r in runs]
    results = repository.list_rung_results(sweep_id)
    keys = [(r.rung_step, r.run_id) for r in results]
    assert len(keys) == len(set(keys))  # no rung decided twice
    for run in runs:
        pruned = [r.rung_step for r in results if r.run_id == run.id and not r.continued]
        assert run.steps_done == (pruned[0] if pruned else STEPS)
        steps = [row.step for row in repository.read_metrics(run.id)]
        assert steps == list(range(1, run.steps_done + 1))


def best_of(env: dict[str, str], sweep_id: int) -> dict[str, Any]:
    shown = trainq(env, "sweep", "show", str(sweep_id), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    return {key: report[key] for key in ("best_objective", "best_params")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The best trial of the same sweep run without interruption."""
    home = tmp_path_factory.mktemp("reference")
    path = home / "sweep.yaml"
    path.write_text(SWEEP)
    env = embedded_env(home)
    result = trainq(env, "sweep", "start", str(path), "--json")
    assert result.returncode == 0, result.stderr
    return best_of(env, json.loads(result.stdout)["sweep_id"])


def test_a_sigkilled_embedded_sweep_resumes_its_trial_and_picks_the_same_best_trial(
    tmp_path: Path, reference: dict[str, Any]
) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    env = embedded_env(tmp_path)
    repository = Repository(Database(f"sqlite:///{tmp_path / 'trainq.db'}"))
    process = start_sweep(env, path)
    try:
        victim = second_trial_past_its_first_checkpoint(repository, process)
    finally:
        process.kill()
        process.communicate()
    assert repository.get_run(victim.id).status is RunStatus.RUNNING  # stranded

    resumed = trainq(env, "sweep", "resume", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert (
        f"trial {victim.trial} (run {victim.id}) resumes from its checkpoint at step 500"
        in resumed.stdout
    )
    check_every_trial_ended_once(repository, 1)
    assert repository.get_run(victim.id).attempt == 2  # taken over once, from its checkpoint
    assert repository.get_sweep(1).status.value == "succeeded"
    assert best_of(env, 1) == reference
    again = trainq(env, "sweep", "resume", "1")
    assert again.returncode == 3 and "already ended" in again.stderr


def test_ctrl_c_leaves_an_embedded_sweep_resumable_and_says_how(
    tmp_path: Path, reference: dict[str, Any]
) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    env = embedded_env(tmp_path)
    repository = Repository(Database(f"sqlite:///{tmp_path / 'trainq.db'}"))
    process = start_sweep(env, path)
    try:
        victim = second_trial_past_its_first_checkpoint(repository, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == INTERRUPTED, stderr
    assert "trainq sweep resume 1" in stderr and "Traceback" not in stderr
    handed_back = repository.get_run(victim.id)
    assert handed_back.status is RunStatus.QUEUED and handed_back.attempt == 0  # not spent
    assert repository.get_sweep(1).status.value == "running"

    resumed = trainq(env, "sweep", "resume", "1", "--json")
    assert resumed.returncode == 0, resumed.stderr
    check_every_trial_ended_once(repository, 1)
    assert json.loads(resumed.stdout)["best_params"] == reference["best_params"]
