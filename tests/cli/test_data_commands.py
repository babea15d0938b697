"""`trainq data`: add versions from real files, list, show and remove them; bad input exits 2
naming the file, split and problem, and stores nothing. Through the real command, embedded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from storage import Database, Repository
from storage.records import JobKind
from tests.cli.conftest import Trainq

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def repository_of(home: Path) -> Repository:
    return Repository(Database(f"sqlite:///{home / 'trainq.db'}"))


def write_npz(path: Path, *, n: int = 40, features: int = 5, classes: int = 3) -> Path:
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.normal(size=(n, features)).astype(np.float32),
        y_train=np.arange(n) % classes,
        x_test=rng.normal(size=(10, features)).astype(np.float32),
        y_test=np.arange(10) % classes,
    )
    return path


def listed(trainq: Trainq) -> list[str]:
    result = trainq("data", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    return [version["label"] for version in json.loads(result.stdout)]


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs the dataset-fashion-mnist package")
def test_fashion_mnist_s_directory_is_added_once_as_an_idx_version(trainq: Trainq) -> None:
    result = trainq("data", "add", "fashion-mnist", str(FASHION_MNIST))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("added fashion-mnist@1 (")
    assert "train  60,000 x 784 uint8" in result.stdout
    assert "test   10,000 x 784 uint8" in result.stdout
    assert "stored 52.6 MiB in 14 chunks" in result.stdout
    assert result.stderr == ""  # no progress line without a terminal
    again = trainq("data", "add", "fashion-mnist", str(FASHION_MNIST), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["created"] is False
    assert listed(trainq) == ["fashion-mnist@1"]


def test_an_npz_version_shows_its_splits_and_class_names(trainq: Trainq, tmp_path: Path) -> None:
    data = write_npz(tmp_path / "blobs.npz")

    added = trainq("data", "add", "blobs", str(data), "--class-names", "a,b,c", "--json")
    assert added.returncode == 0, added.stderr
    version = json.loads(added.stdout)
    assert (version["label"], version["created"]) == ("blobs@1", True)
    assert (version["features"], version["classes"], version["feature_kind"]) == (5, 3, "float32")
    assert (version["train_examples"], version["test_examples"]) == (40, 10)

    shown = trainq("data", "show", version["short_hash"], "--format", "json")
    assert json.loads(shown.stdout)["class_names"] == ["a", "b", "c"]
    table = trainq("data", "show", "blobs")
    assert re.search(r"class names +a, b, c", table.stdout)
    assert "40 x 5 float32" in table.stdout
    csv = trainq("data", "list", "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("label,name,version,sha256")


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("empty", "is empty (0 bytes)"),
        ("ragged", "ragged.csv (train split"),
        ("labels over names", "--class-names"),
        ("same file twice", "one file, two roles"),
        ("nan", "nan.csv (train split, table): holds 1 value(s)"),
    ],
)
def test_bad_input_exits_2_names_the_problem_and_stores_nothing(
    trainq: Trainq, tmp_path: Path, case: str, problem: str
) -> None:
    before = listed(trainq)
    args: list[str]
    if case == "empty":
        (tmp_path / "empty.npz").write_bytes(b"")
        args = [str(tmp_path / "empty.npz")]
    elif case == "ragged":
        (tmp_path / "ragged.csv").write_text("a,b,label\n1,2,0\n3,1\n5,6,1\n")
        args = [str(tmp_path / "ragged.csv")]
    elif case == "labels over names":
        args = [str(write_npz(tmp_path / "five.npz", classes=5)), "--class-names", "x,y"]
    elif case == "same file twice":
        images = tmp_path / "images-idx3-ubyte"
        images.write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 12)
        args = [str(images), str(images), "--format", "idx"]
    else:
        rows = "".join(f"{'nan' if i == 3 else i},{i % 2}\n" for i in range(8))
        (tmp_path / "nan.csv").write_text("x,label\n" + rows)
        args = [str(tmp_path / "nan.csv")]

    result = trainq("data", "add", "bad", *args)

    assert result.returncode == 2, result.stdout + result.stderr
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
    assert listed(trainq) == before


def test_a_version_used_by_a_run_is_removed_only_with_force(
    trainq: Trainq, home: Path, tmp_path: Path
) -> None:
    added = trainq("data", "add", "used", str(write_npz(tmp_path / "u.npz", n=30)), "--json")
    version = json.loads(added.stdout)
    repository = repository_of(home)
    run = repository.create_run(
        kind=JobKind.TRAIN,
        config={"steps": 10, "data_sha256": version["sha256"], "data_name": "used@1"},
        seed=1,
        queue="train",
        max_attempts=1,
    )

    by_data = trainq("runs", "list", "--data", "used", "--format", "json")
    assert [r["id"] for r in json.loads(by_data.stdout)] == [run.id]
    assert f"used@1 ({version['short_hash']})" in trainq("runs", "show", str(run.id)).stdout
    refused = trainq("data", "rm", "used@1")
    assert refused.returncode == 3
    assert f"used by 1 run ({run.id})" in refused.stderr
    assert "--force" in refused.stderr
    assert (
        trainq("data", "rm", "used").returncode == 2
    )  # which version? never the newest by default

    removed = trainq("data", "rm", "used@1", "--force")

    assert removed.returncode == 0, removed.stderr
    assert f"runs {run.id} keep their rows" in removed.stdout
    assert "used@1" not in listed(trainq)
    shown = trainq("runs", "show", str(run.id), "--format", "json")
    assert json.loads(shown.stdout)["data"]["stored"] is False


def test_a_missing_version_says_what_is_stored(trainq: Trainq) -> None:
    result = trainq("data", "show", "nothing-like-it")

    assert result.returncode == 4
    assert "no dataset named 'nothing-like-it'" in result.stderr
    assert "`trainq data " in result.stderr  # list (what is stored) or add (nothing is)
