"""A logistic regression of any width, trained through the real job code on real data.

scikit-learn's breast-cancer (30 features, 2 classes) and digits (64 features, 10 classes) tables
ship inside its wheel. Each is stored as a dataset version in a real SQLite store, trained by
``execute_job`` (claim, fetch through the worker's cache, compiled chunks, checkpoints) and
evaluated by an evaluation job, then compared with an independent fit: scikit-learn's
``LogisticRegression`` on the same split and the same standardised features.

The recipe trainq follows to the same optimum: zeros init, full-batch steps (batch = every
training example), L2 of ``1 / n_train`` (scikit-learn's ``C = 1`` penalty per example), momentum
0.9, learning rate 0.1 on a cosine schedule, 3,000 steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from storage import Database, JobKind, Repository, RunStatus, Settings
from worker.config import TrainConfig, parse_train_config
from worker.datasets import (
    DatasetVersionData,
    RawSplit,
    build_version,
    content_hash,
    iter_chunks,
    read_fashion_mnist,
)
from worker.datasets.problems import Origin
from worker.errors import IncompatibleWeightsError, InvalidConfigError
from worker.evaluation_job import execute_evaluation_job
from worker.jobs import JobContext, execute_job
from worker.training import TrainingState, train
from worker.training.state import ModelDims, initial_state
from worker.training_data import FeatureKind, from_fashion_mnist, from_version, load_training_data


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.upgrade()
    return Repository(database)


def settings_in(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "TRAINQ_HOME": str(tmp_path / "home"),
            "TRAINQ_DATABASE_URL": f"sqlite:///{tmp_path / 'trainq.db'}",
            "TRAINQ_DATA_CACHE": str(tmp_path / "cache"),
        }
    )


def context(repository: Repository, tmp_path: Path) -> JobContext:
    return JobContext.for_this_process(repository, settings_in(tmp_path), "test")


def version_of(x: Any, y: Any, names: tuple[str, ...]) -> tuple[DatasetVersionData, Any]:
    """A version of ``x``/``y`` split 60/40 (stratified, fixed), and the split itself."""
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.4, random_state=0, stratify=y
    )

    def split(features: Any, labels: Any, name: str) -> RawSplit:
        return RawSplit(features, labels, Origin(None, name, "x"), Origin(None, name, "y"))

    version = build_version(
        split(x_train, y_train, "train"), split(x_test, y_test, "test"), class_names=names
    )
    return version, (x_train, x_test, y_train, y_test)


def store(repository: Repository, name: str, version: DatasetVersionData) -> str:
    """Store ``version`` as ``name``'s next number; return its content hash."""
    chunks = [(c.index, c.data, c.sha256) for c in iter_chunks(version)]
    sha256 = content_hash(version)
    repository.add_dataset_version(
        name=name,
        sha256=sha256,
        feature_kind=version.x_train.dtype.name,
        features=version.num_features,
        classes=version.num_classes,
        train_examples=version.x_train.shape[0],
        test_examples=0 if version.x_test is None else version.x_test.shape[0],
        class_names=list(version.class_names),
        size_bytes=sum(len(data) for _, data, _ in chunks),
        source={"format": "npz", "files": [f"{name}.npz"]},
        chunks=chunks,
    )
    return sha256


def recipe(sha256: str, name: str, n_train: int, **fields: Any) -> TrainConfig:
    settings: dict[str, Any] = {
        "data_sha256": sha256,
        "data_name": name,
        "init": "zeros",
        "batch_size": n_train,
        "l2": 1.0 / n_train,
        "momentum": 0.9,
        "learning_rate": 0.1,
        "schedule": "cosine",
        "steps": 3_000,
        "chunk_steps": 500,
        "checkpoint_every_steps": 1_000,
        "seed": 3,
        "xla": False,
    }
    return TrainConfig(**(settings | fields))


def submit(repository: Repository, config: TrainConfig) -> int:
    run = repository.create_run(
        kind=JobKind.TRAIN,
        config=config.model_dump(mode="json"),
        seed=config.seed_value,
        queue="train",
        max_attempts=1,
    )
    return run.id


def scikit_learn_accuracy(split: Any) -> float:
    """The independent fit: scikit-learn on the same features, standardised the same way."""
    x_train, x_test, y_train, y_test = split
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    model = LogisticRegression(max_iter=5_000).fit((x_train - mean) / std, y_train)
    return float(model.score((x_test - mean) / std, y_test))


@pytest.mark.parametrize(
    ("loader", "name", "dims"),
    [(load_breast_cancer, "breast-cancer@1", (30, 2)), (load_digits, "digits@1", (64, 10))],
    ids=["breast-cancer", "digits"],
)
def test_a_job_on_a_stored_table_matches_scikit_learn_within_one_point(
    repository: Repository, tmp_path: Path, loader: Any, name: str, dims: tuple[int, int]
) -> None:
    table = loader()
    names = tuple(str(label) for label in table.target_names)
    version, split = version_of(table.data, table.target, names)
    sha256 = store(repository, name.split("@", maxsplit=1)[0], version)
    config = recipe(sha256, name, n_train=len(split[2]))
    run_id = submit(repository, config)

    finished = execute_job(context(repository, tmp_path), run_id)

    assert finished is not None and finished.status is RunStatus.SUCCEEDED, finished
    weights = repository.latest_checkpoint(run_id)
    assert weights is not None and weights.arrays["W"].shape == dims
    job = repository.create_evaluation_job(
        run_id=run_id, checkpoint_step=config.steps, split="test", queue="eval", max_attempts=1
    )
    assert execute_evaluation_job(context(repository, tmp_path), job.id) is not None
    (evaluation,) = repository.list_evaluations(run_id)
    assert len(evaluation.confusion) == dims[1]
    assert sum(map(sum, evaluation.confusion)) == len(split[3])
    assert abs(evaluation.accuracy - scikit_learn_accuracy(split)) <= 0.01


def test_a_job_whose_batch_exceeds_the_dataset_fails_naming_both(
    repository: Repository, tmp_path: Path
) -> None:
    table = load_breast_cancer()
    version, split = version_of(table.data, table.target, ("malignant", "benign"))
    sha256 = store(repository, "breast-cancer", version)
    run_id = submit(repository, recipe(sha256, "breast-cancer@1", n_train=len(split[2]) + 1))

    finished = execute_job(context(repository, tmp_path), run_id)

    assert finished is not None and finished.status is RunStatus.FAILED
    assert finished.error is not None
    assert f"batch_size ({len(split[2]) + 1})" in finished.error
    assert f"{len(split[2])} training examples of breast-cancer@1" in finished.error


def test_resume_refuses_a_checkpoint_of_another_width_and_names_the_dataset() -> None:
    table = load_breast_cancer()
    version, _ = version_of(table.data, table.target, ("malignant", "benign"))
    data = from_version(version, label="breast-cancer@1 (abc)")
    fashion_state = initial_state(TrainConfig(seed=1).resolved())  # 784 x 10
    config = TrainConfig(steps=10, chunk_steps=5, seed=1, xla=False)

    with pytest.raises(IncompatibleWeightsError) as refused:
        train(config, data, resume_from=TrainingState(5, fashion_state.arrays))

    message = str(refused.value)
    assert "shape (784, 10), expected (30, 2)" in message
    assert "breast-cancer@1 (abc) (30 features x 2 classes)" in message


def test_the_fashion_mnist_draw_of_initial_weights_is_the_one_before_datasets() -> None:
    state = initial_state(TrainConfig(seed=123).resolved())
    rng = np.random.default_rng((123, 1))  # what the draw always was: W (784, 10), then b
    assert np.array_equal(state.arrays["W"], rng.standard_normal((784, 10), dtype=np.float32))
    assert np.array_equal(state.arrays["b"], rng.standard_normal(10, dtype=np.float32))
    wide = initial_state(TrainConfig(seed=123).resolved(), ModelDims(5, 3))
    assert wide.arrays["W"].shape == (5, 3) and wide.arrays["b"].shape == (3,)


def test_fashion_mnist_as_a_stored_version_trains_bit_identical_to_the_built_in_one(
    fashion_mnist: Any,
) -> None:
    config = TrainConfig(steps=40, chunk_steps=20, seed=9, momentum=0.5, val_size=500).resolved()
    version = from_version(read_fashion_mnist(fashion_mnist.source_dir), label="fashion-mnist@1")
    assert version.feature_kind is FeatureKind.UINT8 and version.dims == ModelDims()

    built_in = train(config, fashion_mnist).state.arrays
    stored = train(config, version).state.arrays

    for name in ("W", "b", "vW", "vb"):
        assert np.array_equal(built_in[name], stored[name]), name


def test_a_wide_model_trains_evaluates_and_predicts(tmp_path: Path) -> None:
    """D = 10,000 features by C = 100 classes (a million weights), a few steps."""
    rng = np.random.default_rng(0)
    features, classes, rows = 10_000, 100, 400
    labels = np.arange(rows) % classes
    x = rng.normal(size=(rows, features)).astype(np.float32)
    x[np.arange(rows), labels] += 4.0  # each class has a feature of its own
    version = build_version(
        RawSplit(x, labels, Origin(None, "train", "x"), Origin(None, "train", "y")),
        RawSplit(x[:100], labels[:100], Origin(None, "test", "x"), Origin(None, "test", "y")),
    )
    data = from_version(version, label="wide@1")
    config = TrainConfig(
        steps=30, chunk_steps=10, batch_size=64, momentum=0.9, learning_rate=0.5, seed=2, xla=False
    ).resolved()

    result = train(config, data)

    assert result.state.arrays["W"].shape == (features, classes)
    assert result.state.arrays["vW"].shape == (features, classes)
    from worker.evaluation import evaluate
    from worker.prediction import sample_predictions

    x_test, y_test = data.split("test")
    evaluated = evaluate(
        result.state.arrays, x_test, y_test, dims=data.dims, feature_kind=data.feature_kind
    )
    assert evaluated.confusion.shape == (classes, classes) and evaluated.accuracy > 0.5
    (guess,) = sample_predictions(result.state.arrays, data, n=1, seed=0)
    assert guess.true_name == str(guess.true_class)  # no class names: the numbers stand in


def test_the_built_in_dataset_needs_no_store_and_is_wrapped_once(
    fashion_mnist: Any, tmp_path: Path, repository: Repository
) -> None:
    settings = settings_in(tmp_path)
    config = TrainConfig(seed=1)
    loaded = load_training_data(config, settings, repository)
    assert loaded is from_fashion_mnist(fashion_mnist) or loaded.sha256 is None
    assert loaded is load_training_data(config, settings, repository)  # device copy reused
    assert loaded.class_names[0] == "T-shirt/top"


def test_a_config_names_its_dataset_by_a_content_hash() -> None:
    with pytest.raises(InvalidConfigError, match="data_sha256"):
        parse_train_config({"data_sha256": "ABC"})
    with pytest.raises(InvalidConfigError, match="data_sha256 is missing"):
        parse_train_config({"data_name": "iris@1"})
    with pytest.raises(InvalidConfigError, match=r"batch_size \(60001\).*Fashion-MNIST"):
        parse_train_config({"batch_size": 60_001})
    config = parse_train_config(
        {"data_sha256": "a" * 64, "data_name": "iris@2", "batch_size": 10**5}
    )
    assert config.batch_size == 100_000  # checked against the dataset's count, where known
