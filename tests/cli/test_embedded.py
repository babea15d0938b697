"""`trainq` with nothing configured: jobs run in-process on SQLite, through the worker's code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli.conftest import Trainq, embedded_env
from worker.data import CLASS_NAMES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(trainq: Trainq) -> dict[str, object]:
    result = trainq(
        "train",
        "--steps",
        "1200",
        "--chunk-steps",
        "200",
        "--checkpoint-every",
        "400",
        "--seed",
        "7",
        "--name",
        "first",
        "--tag",
        "team=vision",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_train_runs_in_process_and_reports_one_json_object(
    trained: dict[str, object], home: Path
) -> None:
    assert trained["status"] == "succeeded"
    assert trained["steps_done"] == 1200
    assert isinstance(trained["run_id"], int)
    summary = trained["summary"]
    assert isinstance(summary, dict) and 0.0 < summary["final_accuracy"] <= 1.0
    assert (home / "trainq.db").exists()


def test_runs_show_has_every_hyperparameter_and_the_seed(
    trainq: Trainq, trained: dict[str, object]
) -> None:
    result = trainq("runs", "show", str(trained["run_id"]), "--format", "json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["config"]["seed"] == 7 and shown["config"]["learning_rate"] == 0.01
    assert shown["config"]["batch_size"] == 128 and shown["attempts"] == 1
    # This process trained only this short run: no XLA compilation, and the choice is stored.
    assert shown["config"]["xla"] is False
    assert shown["device"] and shown["tags"] == {"team": "vision"}
    assert [c["step"] for c in shown["checkpoints"]] == [400, 800, 1200]


def test_metrics_csv_has_one_row_per_step(trainq: Trainq, trained: dict[str, object]) -> None:
    result = trainq("metrics", str(trained["run_id"]), "--format", "csv")
    lines = result.stdout.splitlines()
    assert lines[0] == "step,loss,accuracy"
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(1, 1201))
    every = trainq("metrics", str(trained["run_id"]), "--format", "json", "--every", "100")
    assert [row["step"] for row in json.loads(every.stdout)] == list(range(100, 1201, 100))


def test_runs_list_filters_by_tag_and_status(trainq: Trainq, trained: dict[str, object]) -> None:
    found = json.loads(trainq("runs", "list", "--tag", "team=vision", "--format", "json").stdout)
    assert [run["id"] for run in found] == [trained["run_id"]]
    none = json.loads(trainq("runs", "list", "--tag", "team=audio", "--format", "json").stdout)
    assert none == []
    csv_lines = trainq(
        "runs", "list", "--status", "succeeded", "--format", "csv"
    ).stdout.splitlines()
    assert csv_lines[0].startswith("id,kind,name,status")


def test_eval_every_checkpoint_stores_one_evaluation_each(
    trainq: Trainq, trained: dict[str, object]
) -> None:
    result = trainq("eval", str(trained["run_id"]), "--checkpoint", "all", "--json")
    assert result.returncode == 0, result.stderr
    evaluations = json.loads(result.stdout)["evaluations"]
    assert [e["checkpoint_step"] for e in evaluations] == [400, 800, 1200]
    for evaluation in evaluations:
        assert evaluation["split"] == "test"
        assert len(evaluation["per_class_accuracy"]) == 10
        assert sum(map(sum, evaluation["confusion"])) == 10_000
    shown = json.loads(trainq("runs", "show", str(trained["run_id"]), "--format", "json").stdout)
    assert len(shown["evaluations"]) == 3


def test_export_writes_float32_weights_that_match_the_evaluated_accuracy(
    trainq: Trainq, trained: dict[str, object], tmp_path: Path
) -> None:
    from worker.data import load_fashion_mnist

    out = tmp_path / "weights.npz"
    result = trainq("export", str(trained["run_id"]), "--out", str(out))
    assert result.returncode == 0, result.stderr
    arrays = np.load(out)
    assert arrays["W"].shape == (784, 10) and arrays["W"].dtype == np.float32
    assert arrays["b"].shape == (10,) and arrays["b"].dtype == np.float32
    data = load_fashion_mnist()
    logits = (data.test_images.astype(np.float32) / 255.0) @ arrays["W"] + arrays["b"]
    accuracy = float(np.mean(np.argmax(logits, axis=1) == data.test_labels))
    shown = json.loads(trainq("runs", "show", str(trained["run_id"]), "--format", "json").stdout)
    latest = [e for e in shown["evaluations"] if e["checkpoint_step"] == 1200]
    assert latest and abs(latest[0]["accuracy"] - accuracy) < 1e-3
    again = trainq("export", str(trained["run_id"]), "--out", str(out))
    assert again.returncode == 2 and "--force" in again.stderr


def test_predict_shows_true_and_predicted_class_names(
    trainq: Trainq, trained: dict[str, object]
) -> None:
    result = trainq("predict", str(trained["run_id"]), "--samples", "3", "--seed", "1", "--json")
    assert result.returncode == 0, result.stderr
    predictions = json.loads(result.stdout)
    assert len(predictions) == 3
    names = set(CLASS_NAMES)
    for prediction in predictions:
        assert prediction["true_name"] in names and prediction["predicted_name"] in names
        assert 0.0 <= prediction["probability"] <= 1.0


def test_cancelling_a_finished_run_is_refused(trainq: Trainq, trained: dict[str, object]) -> None:
    result = trainq("cancel", str(trained["run_id"]))
    assert result.returncode == 3
    assert "succeeded" in result.stderr


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (("--lr", "nan"), "--lr"),
        (("--lr", "inf"), "--lr"),
        (("--lr", "0"), "--lr"),
        (("--batch-size", "60001"), "--batch-size"),
        (("--steps", "0"), "--steps"),
        (("--checkpoint-every", "300", "--chunk-steps", "200"), "multiple"),
        (("--tag", "novalue"), "KEY=VALUE"),
        (("--tag", "bad key=1"), "--tag"),
    ],
)
def test_bad_options_exit_2_with_a_message_and_store_nothing(
    trainq: Trainq, options: tuple[str, ...], complaint: str
) -> None:
    before = json.loads(trainq("runs", "list", "--format", "json", "--limit", "1000").stdout)
    result = trainq("train", *options)
    assert result.returncode == 2
    assert complaint in result.stderr and "Traceback" not in result.stderr
    after = json.loads(trainq("runs", "list", "--format", "json", "--limit", "1000").stdout)
    assert after == before


def test_a_missing_run_is_exit_code_4_without_traceback(trainq: Trainq) -> None:
    result = trainq("runs", "show", "987654")
    assert result.returncode == 4
    assert "987654" in result.stderr and "Traceback" not in result.stderr


def test_a_diverging_run_fails_with_its_reason_and_no_retry(trainq: Trainq) -> None:
    # lr * l2 = 100 multiplies W by -99 every step: float32 overflows within a few dozen steps.
    result = trainq(
        "train", "--steps", "400", "--chunk-steps", "100", "--lr", "10", "--l2", "10", "--json"
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["status"] == "failed"
    assert report["attempts"] == 1
    assert "nan" in report["error"].lower() or "inf" in report["error"].lower()
    assert report["summary"] is None


def test_help_is_fast_and_imports_neither_tensorflow_nor_celery(home: Path) -> None:
    probe = (
        "import sys; from api_cli.main import app; "
        "heavy = ('tensorflow', 'celery', 'sqlalchemy', 'numpy'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
    for command in ((), ("train",), ("eval",), ("runs", "list"), ("worker",)):
        shown = subprocess.run(
            [sys.executable, "-m", "api_cli", *command, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert shown.returncode == 0 and "Usage" in shown.stdout


def test_runs_list_reads_the_database_without_importing_celery_tensorflow_or_numpy(
    home: Path, trainq: Trainq
) -> None:
    # What a listing must not pay for at start-up: the broker client, the training stack, and
    # NumPy (records are read, never arrays). Alembic only creates a new database's schema.
    assert trainq("runs", "list").returncode == 0
    probe = (
        "import runpy, sys; sys.argv = ['trainq', 'runs', 'list']\n"
        "try:\n    runpy.run_module('api_cli', run_name='__main__')\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "heavy = ('tensorflow', 'celery', 'kombu', 'redis', 'numpy', 'alembic')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    listed = subprocess.run(
        [sys.executable, "-c", probe],
        env=embedded_env(home),
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.strip().splitlines()[-1] == "[]"


def test_a_database_error_while_tensorflow_imports_still_reaches_stderr(tmp_path: Path) -> None:
    # The embedded train imports TensorFlow in a thread, with stderr captured, while it opens the
    # database: an error from that must still be printed, not swallowed by the capture.
    not_a_directory = tmp_path / "home"
    not_a_directory.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "api_cli", "train", "--steps", "10"],
        env=embedded_env(not_a_directory),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 69
    assert f"cannot create {not_a_directory}" in " ".join(result.stderr.split())
