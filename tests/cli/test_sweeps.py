"""`trainq sweep` embedded: trials run here through the job code; bad files store nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Trainq, embedded_env

SWEEP = """
name: cli-sweep
metric: {name: val_accuracy, goal: maximize}
method: random
seed: 3
run_cap: 5
max_concurrent: 4
val_size: 2000
parameters:
  lr:         {distribution: log_uniform, min: 0.001, max: 0.5}
  init:       {values: [normal, zeros]}
  steps:      {value: 400}
  chunk_steps: {value: 100}
  checkpoint_every: {value: 100}
early_terminate: {type: asha, min_steps: 100, reduction_factor: 2}
"""


def as_json(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def finished_sweep(trainq: Trainq, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("sweep") / "sweep.yaml"
    path.write_text(SWEEP)
    return as_json(trainq("sweep", "start", str(path), "--json"))  # type: ignore[no-any-return]


def test_an_embedded_sweep_runs_every_trial_here_and_prunes_with_asha(
    finished_sweep: dict[str, Any],
) -> None:
    sweep = finished_sweep
    assert sweep["status"] == "succeeded"
    assert len(sweep["trials"]) == 5
    assert all(t["status"] == "succeeded" for t in sweep["trials"])
    pruned = [t for t in sweep["trials"] if t["pruned"]]
    assert pruned and all(t["steps_done"] < 400 for t in pruned)
    assert sweep["steps_budget"] == 5 * 400
    assert sweep["steps_trained"] == sum(t["steps_done"] for t in sweep["trials"]) < 2000
    best = max(sweep["trials"], key=lambda t: t["objective"])
    assert sweep["best_run_id"] == best["run_id"]
    assert {r["step"] for r in sweep["rungs"]} <= {100, 200}
    assert sweep["pack"] == 4  # pack: auto, embedded: max_concurrent 4 trials side by side


def test_trials_are_ordinary_runs_listed_by_sweep_and_evaluated_on_their_holdout(
    trainq: Trainq, finished_sweep: dict[str, Any]
) -> None:
    sweep_id = str(finished_sweep["sweep_id"])
    runs = as_json(trainq("runs", "list", "--sweep", sweep_id, "--format", "json"))
    assert sorted(run["trial"] for run in runs) == [0, 1, 2, 3, 4]
    best = str(finished_sweep["best_run_id"])
    evaluation = as_json(trainq("eval", best, "--split", "val", "--json"))["evaluations"][0]
    assert evaluation["split"] == "val"
    assert evaluation["accuracy"] == pytest.approx(finished_sweep["best_objective"], abs=1e-6)
    shown = as_json(trainq("sweep", "show", sweep_id, "--format", "json"))
    assert shown["best_run_id"] == finished_sweep["best_run_id"]


def test_the_best_trial_exports_and_the_sweep_plots(
    trainq: Trainq, finished_sweep: dict[str, Any], tmp_path: Path
) -> None:
    sweep_id = str(finished_sweep["sweep_id"])
    weights, figure = tmp_path / "best.npz", tmp_path / "sweep.png"
    best = as_json(trainq("sweep", "best", sweep_id, "--export", str(weights), "--json"))
    assert best["run_id"] == finished_sweep["best_run_id"] and weights.stat().st_size > 30_000
    assert trainq("sweep", "plot", sweep_id, "--out", str(figure)).returncode == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_out_the_sweep_is_drawn_in_the_terminal_with_pruned_trials_marked(
    trainq: Trainq, finished_sweep: dict[str, Any]
) -> None:
    result = trainq("sweep", "plot", str(finished_sweep["sweep_id"]))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    pruned = sum(t["pruned"] for t in finished_sweep["trials"])
    assert lines[0].startswith(f"sweep {finished_sweep['sweep_id']} val_accuracy: 5 trials")
    assert (
        f"pruned ({pruned})" in lines[0] and f"best run {finished_sweep['best_run_id']}" in lines[0]
    )
    chart = lines[1 : lines.index("", 1)]
    assert any("\u00d7" in line for line in chart)  # where a pruned trial stopped
    assert sum(line.count("\u25cf") for line in chart) == 1  # the best trial's end
    assert any(chr(0x2801) <= char <= chr(0x28FF) for line in chart for char in line)
    assert any(line.startswith("lr (log scale) against final val_accuracy") for line in lines)
    assert any(line.startswith("init against final val_accuracy") for line in lines)
    assert max(len(line) for line in lines) <= 80


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("method: random\nseed: 1\nrun_cap: 0\n", "run_cap"),
        (
            "seed: 1\nrun_cap: 2\nparameters: {lr: {distribution: log_uniform, min: 0, max: 1}}\n",
            "parameters.lr.min",
        ),
        ("- not\n- a mapping\n", "mapping"),
    ],
)
def test_a_bad_sweep_file_exits_2_naming_the_key_and_stores_nothing(
    trainq: Trainq, tmp_path: Path, body: str, key: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    before = as_json(trainq("sweep", "list", "--format", "json"))
    result = trainq("sweep", "start", str(path))
    assert result.returncode == 2, result.stderr
    assert key in result.stderr and "Traceback" not in result.stderr
    assert as_json(trainq("sweep", "list", "--format", "json")) == before


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_sweep_file_nested_50000_levels_deep_exits_2_and_stores_nothing(
    trainq: Trainq, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text('{"parameters": ' + "[" * 50_000 + "]" * 50_000 + "}")
    before = as_json(trainq("sweep", "list", "--format", "json"))
    result = trainq("sweep", "start", str(path))
    assert result.returncode == 2, result.stderr
    assert f"{path}: values nested more than 32 levels deep" in result.stderr
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert as_json(trainq("sweep", "list", "--format", "json")) == before


def test_eval_on_the_val_split_of_a_run_without_one_exits_2(trainq: Trainq) -> None:
    run = as_json(
        trainq(
            "train", "--steps", "100", "--chunk-steps", "100", "--checkpoint-every", "100", "--json"
        )
    )
    result = trainq("eval", str(run["id"]), "--split", "val")
    assert result.returncode == 2 and "--val-size" in result.stderr


def test_a_validation_split_larger_than_the_training_set_exits_2_naming_the_option(
    trainq: Trainq,
) -> None:
    result = trainq("train", "--val-size", "60000")
    assert result.returncode == 2 and "--val-size" in result.stderr


def test_runs_list_of_a_sweep_marks_its_pruned_trials_and_says_what_pruned_means(
    trainq: Trainq, finished_sweep: dict[str, Any]
) -> None:
    result = trainq("runs", "list", "--sweep", str(finished_sweep["sweep_id"]))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for trial in finished_sweep["trials"]:
        [row] = [line for line in lines if line.split()[:1] == [str(trial["run_id"])]]
        assert ("pruned" if trial["pruned"] else "succeeded") in row.split(), row
    assert "pruned: stopped early by its sweep's ASHA at a rung (status succeeded)" in lines


PACK_PRUNES_THREE = """
name: lines-as-they-end
method: grid
seed: 3
val_size: 2000
max_concurrent: 4
parameters:
  lr:    {values: [0.1, 0.001, 0.0005, 0.0001]}
  steps: {value: 30000}
  chunk_steps: {value: 500}
  checkpoint_every: {value: 500}
early_terminate: {type: asha, min_steps: 500, reduction_factor: 4}
"""


def test_a_trial_its_pack_pruned_is_told_while_its_mates_still_train(tmp_path: Path) -> None:
    from storage import Database, Repository
    from storage.records import RunStatus

    path, home = tmp_path / "sweep.yaml", tmp_path / "home"
    path.write_text(PACK_PRUNES_THREE)
    # One pack of 4; at step 500 it keeps 1, which trains 29,500 steps more. Its mates' lines
    # used to come only once the whole pack was done.
    command = [sys.executable, "-m", "api_cli", "sweep", "start", str(path)]
    with subprocess.Popen(
        command,
        env=embedded_env(home),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    ) as process:
        assert process.stderr is not None
        first_line = next(line for line in process.stderr if line.startswith("trial "))
        runs = Repository(Database(f"sqlite:///{home / 'trainq.db'}")).list_runs(sweep_id=1)
        rest = process.stderr.read()
    assert process.returncode == 0, rest
    assert "pruned after 500 steps" in first_line
    assert [run.status for run in runs].count(RunStatus.RUNNING) == 1, runs
    assert rest.count("pruned after 500 steps") == 2
    assert "succeeded after 30000 steps" in rest


def test_the_standing_line_says_how_many_trials_ended_train_and_steps_so_far() -> None:
    from api_cli.sweep_run import standing_line

    line = standing_line(7, ended=1, planned=30, training=20, steps=12_500, elapsed_s=75.2)
    assert line == "sweep 7: 1 of 30 trials ended, 20 training, 12,500 steps trained, elapsed 1:15"
