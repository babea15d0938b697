"""export, predict and evals show speak the run's dataset: its width, class names and scaling.

A run on scikit-learn's breast-cancer table (30 features, 2 named classes, standardised) is
trained and evaluated by the real job code in the embedded home; the real ``trainq`` commands
then read it back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from storage import Database, JobKind, Repository, RunStatus, Settings
from tests.cli.conftest import Trainq
from worker.config import TrainConfig
from worker.datasets import RawSplit, build_version, content_hash, iter_chunks
from worker.datasets.problems import Origin
from worker.jobs import JobContext

NAMES = ("malignant", "benign")


@pytest.fixture(scope="module")
def run_id(home: Path) -> int:
    """A finished run on breast-cancer@1, with an evaluation of its test split."""
    from worker.evaluation_job import execute_evaluation_job
    from worker.jobs import execute_job

    url = f"sqlite:///{home / 'trainq.db'}"
    database = Database(url)
    database.upgrade()
    repository = Repository(database)
    table = load_breast_cancer()

    def split(rows: slice, name: str) -> RawSplit:
        x, y = table.data[rows], table.target[rows]
        return RawSplit(x, y, Origin(None, name, "x"), Origin(None, name, "y"))

    version = build_version(split(slice(0, 400), "train"), split(slice(400, None), "test"), NAMES)
    chunks = [(c.index, c.data, c.sha256) for c in iter_chunks(version)]
    sha256 = content_hash(version)
    repository.add_dataset_version(
        name="breast-cancer",
        sha256=sha256,
        feature_kind="float32",
        features=30,
        classes=2,
        train_examples=400,
        test_examples=len(table.target) - 400,
        class_names=list(NAMES),
        size_bytes=sum(len(data) for _, data, _ in chunks),
        source={"format": "npz", "files": ["breast-cancer.npz"]},
        chunks=chunks,
    )
    config = TrainConfig(
        data_sha256=sha256,
        data_name="breast-cancer@1",
        init="zeros",
        steps=200,
        chunk_steps=100,
        batch_size=64,
        learning_rate=0.1,
        seed=1,
        xla=False,
    )
    run = repository.create_run(
        kind=JobKind.TRAIN,
        config=config.model_dump(mode="json"),
        seed=1,
        queue="train",
        max_attempts=1,
    )
    settings = Settings.from_env({"TRAINQ_HOME": str(home)})
    context = JobContext.for_this_process(repository, settings, "test")
    finished = execute_job(context, run.id)
    assert finished is not None and finished.status is RunStatus.SUCCEEDED, finished
    job = repository.create_evaluation_job(
        run_id=run.id, checkpoint_step=200, split="test", queue="eval", max_attempts=1
    )
    assert execute_evaluation_job(context, job.id) is not None
    return run.id


def test_export_carries_the_width_the_class_names_and_the_statistics(
    trainq: Trainq, run_id: int, tmp_path: Path
) -> None:
    out = tmp_path / "run.npz"
    result = trainq("export", str(run_id), "--out", str(out))
    assert result.returncode == 0, result.stderr
    with np.load(out, allow_pickle=False) as exported:
        assert exported["W"].shape == (30, 2) and exported["b"].shape == (2,)
        assert (int(exported["features"]), int(exported["classes"])) == (30, 2)
        assert tuple(exported["class_names"]) == NAMES
        assert str(exported["scaling"]) == "standardise"
        x = load_breast_cancer().data[400:]
        mean, std = exported["mean"], exported["std"]
        assert mean.shape == std.shape == (30,)
        assert np.allclose(mean, load_breast_cancer().data[:400].mean(axis=0), rtol=1e-5)
        logits = ((x - mean) / std) @ exported["W"] + exported["b"]
    accuracy = float(np.mean(logits.argmax(axis=1) == load_breast_cancer().target[400:]))
    assert accuracy > 0.9  # the file alone reproduces the model


def test_predict_and_evals_show_name_the_dataset_s_classes(trainq: Trainq, run_id: int) -> None:
    predicted = trainq("predict", str(run_id), "--samples", "5", "--seed", "0", "--format", "json")
    assert predicted.returncode == 0, predicted.stderr
    rows = json.loads(predicted.stdout)
    assert {row["true_name"] for row in rows} <= set(NAMES)
    assert all(row["predicted_name"] == NAMES[row["predicted_class"]] for row in rows)

    shown = json.loads(trainq("runs", "show", str(run_id), "--format", "json").stdout)
    evaluation_id = shown["evaluations"][0]["id"]
    detail = trainq("evals", "show", str(evaluation_id), "--format", "json")
    assert detail.returncode == 0, detail.stderr
    assert json.loads(detail.stdout)["class_names"] == list(NAMES)
    table = trainq("evals", "show", str(evaluation_id))
    assert "malignant" in table.stdout and "T-shirt" not in table.stdout
