"""Real data nobody here wrote, through the queue: scikit-learn's digits (NPZ) and breast-cancer
(CSV) tables are added with `trainq data add`, trained on by a real `trainq worker` with
`trainq train --data ... --wait`, evaluated with `trainq eval`, and land within one point of
scikit-learn's own ``LogisticRegression`` fitted on the same split. A version removed with
`trainq data rm --force` then fails the next job on it with the clear error, even in a worker
that holds it in its cache.

One cluster and one warm worker serve the whole module: starting workers is the slow part.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from tests.cluster.compose import worker_command
from tests.integration.harness import Cluster, cluster_environment
from tests.services import require_postgres, require_redis

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

#: The split every fit here uses: 60/40, stratified, fixed.
TEST_SIZE, SPLIT_SEED = 0.4, 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A fresh cluster for the module with one worker, warm before the first job."""
    require_postgres()
    require_redis()
    with cluster_environment(
        tmp_path_factory.mktemp("own-data"), f"trainq_it_{os.getpid()}_own_data"
    ) as environment:
        environment.start_worker(worker_command()).wait_warm()
        yield environment


def split(table: Any) -> tuple[Any, Any, Any, Any]:
    """x_train, x_test, y_train, y_test of a scikit-learn table."""
    return train_test_split(  # type: ignore[no-any-return]
        table.data,
        table.target,
        test_size=TEST_SIZE,
        random_state=SPLIT_SEED,
        stratify=table.target,
    )


def scikit_learn_accuracy(x_train: Any, x_test: Any, y_train: Any, y_test: Any) -> float:
    """The independent fit, on the features standardised as trainq does (train statistics)."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0
    model = LogisticRegression(max_iter=5_000).fit((x_train - mean) / std, y_train)
    return float(model.score((x_test - mean) / std, y_test))


def write_csv(path: Path, features: Any, labels: Any) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*(f"f{i}" for i in range(features.shape[1])), "label"])
        writer.writerows(
            [*map(repr, map(float, row)), int(label)]
            for row, label in zip(features, labels, strict=True)
        )
    return path


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def train_the_recipe(cluster: Cluster, data: str, n_train: int) -> dict[str, Any]:
    """The recipe that reaches scikit-learn's optimum: zeros, full batch, l2 = 1/n, momentum."""
    return ok(  # type: ignore[no-any-return]
        cluster.trainq(
            "train",
            "--data",
            data,
            "--init",
            "zeros",
            "--batch-size",
            str(n_train),
            "--l2",
            repr(1.0 / n_train),
            "--momentum",
            "0.9",
            "--lr",
            "0.1",
            "--schedule",
            "cosine",
            "--steps",
            "3000",
            "--checkpoint-every",
            "1000",
            "--seed",
            "3",
            "--wait",
            "--json",
        )
    )


def test_digits_from_an_npz_trains_through_the_queue_within_a_point_of_scikit_learn(
    cluster: Cluster, tmp_path: Path
) -> None:
    x_train, x_test, y_train, y_test = split(load_digits())
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    version = ok(cluster.trainq("data", "add", "digits", str(path), "--json"))

    run = train_the_recipe(cluster, "digits", len(y_train))
    evaluated = ok(cluster.trainq("eval", str(run["id"]), "--wait", "--format", "json"))

    assert run["status"] == "succeeded", run["error"]
    assert run["config"]["data_sha256"] == version["sha256"]
    assert run["worker_host"] and run["worker_host"] != "embedded"
    (evaluation,) = evaluated["evaluations"]
    assert sum(map(sum, evaluation["confusion"])) == len(y_test)
    expected = scikit_learn_accuracy(x_train, x_test, y_train, y_test)
    assert abs(evaluation["accuracy"] - expected) <= 0.01, (evaluation["accuracy"], expected)


def test_breast_cancer_from_csv_trains_through_the_queue_within_a_point_of_scikit_learn(
    cluster: Cluster, tmp_path: Path
) -> None:
    x_train, x_test, y_train, y_test = split(load_breast_cancer())
    train_csv = write_csv(tmp_path / "train.csv", x_train, y_train)
    test_csv = write_csv(tmp_path / "test.csv", x_test, y_test)
    added = cluster.trainq(
        "data", "add", "breast-cancer", str(train_csv), "--test", str(test_csv),
        "--class-names", "malignant,benign", "--json",
    )  # fmt: skip
    version = ok(added)
    assert (version["features"], version["classes"]) == (30, 2)

    run = train_the_recipe(cluster, "breast-cancer@1", len(y_train))
    evaluated = ok(cluster.trainq("eval", str(run["id"]), "--wait", "--format", "json"))

    assert run["status"] == "succeeded", run["error"]
    (evaluation,) = evaluated["evaluations"]
    assert evaluation["class_names"] == ["malignant", "benign"]
    expected = scikit_learn_accuracy(x_train, x_test, y_train, y_test)
    assert abs(evaluation["accuracy"] - expected) <= 0.01, (evaluation["accuracy"], expected)


def test_a_version_removed_with_force_fails_the_next_job_on_it_with_the_clear_error(
    cluster: Cluster,
) -> None:
    """The worker evaluated breast-cancer@1 a moment ago: its cache holds it, and must not
    let a job run on a version the cluster no longer has."""
    (run,) = ok(cluster.trainq("runs", "list", "--data", "breast-cancer", "--format", "json"))
    refused = cluster.trainq("data", "rm", "breast-cancer@1")
    assert refused.returncode == 3, refused.stderr

    removed = cluster.trainq("data", "rm", "breast-cancer@1", "--force")
    assert removed.returncode == 0, removed.stderr
    again = cluster.trainq("eval", str(run["id"]), "--force", "--wait", "--format", "json")

    assert again.returncode != 0
    jobs = ok(cluster.trainq("runs", "list", "--evals", "--format", "json"))
    failed = [job for job in jobs if job["run_id"] == run["id"] and job["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["attempts"] == 1  # no retry
    assert "dataset breast-cancer@1 (" in failed[0]["error"]
    assert "was removed from this cluster (trainq data rm --force)" in failed[0]["error"]
