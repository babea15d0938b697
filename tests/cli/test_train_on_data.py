"""`trainq train --data`, the Python API's ``data`` and the sweep file's ``data`` key: a run
records its version by content hash at submission, every later command reads that version, and
a run without data stays the built-in Fashion-MNIST with nothing registered or hashed.

Through the real ``trainq`` command, embedded, on scikit-learn's digits table.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import worker.data
from api_cli.sdk import Client, DatasetNotFoundError
from storage import Database, Repository, Settings, StorageError
from storage.records import RunStatus
from tests.cli.conftest import Trainq, embedded_env, trainq_in
from worker.errors import InvalidConfigError

NAMES_V1 = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NAMES_V2 = tuple(f"d{label}" for label in range(10))
FASHION_MNIST_INSTALLED = worker.data.SYSTEM_DATA_DIR.is_dir()


def digits_npz(path: Path, features: int = 64) -> tuple[Path, int, int]:
    """scikit-learn's digits as an NPZ, split 60/40 (stratified, fixed); the split sizes."""
    table = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        table.data[:, :features], table.target, test_size=0.4, random_state=0, stratify=table.target
    )
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path, len(y_train), len(y_test)


def repository_of(home: Path) -> Repository:
    return Repository(Database(f"sqlite:///{home / 'trainq.db'}"))


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def digits(trainq: Trainq, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """digits@1, with its class names, added once for the module."""
    path, n_train, n_test = digits_npz(tmp_path_factory.mktemp("digits") / "digits.npz")
    added = trainq(
        "data", "add", "digits", str(path), "--class-names", ",".join(NAMES_V1), "--json"
    )
    return as_json(added) | {"n_train": n_train, "n_test": n_test}  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def digits_run(trainq: Trainq, digits: dict[str, Any]) -> dict[str, Any]:
    """A finished run on ``--data digits`` (the newest: digits@1), evaluated on its test split."""
    trained = trainq(
        "train", "--data", "digits", "--steps", "300", "--chunk-steps", "100",
        "--checkpoint-every", "100", "--batch-size", "64", "--lr", "0.1", "--seed", "4",
        "--wait", "--json",
    )  # fmt: skip
    run = as_json(trained)
    as_json(trainq("eval", str(run["id"]), "--wait", "--format", "json"))
    return run  # type: ignore[no-any-return]


def test_a_run_records_the_version_it_named_by_hash_and_by_name(
    digits: dict[str, Any], digits_run: dict[str, Any], home: Path
) -> None:
    assert digits_run["status"] == "succeeded"
    assert digits_run["config"]["data_sha256"] == digits["sha256"]
    assert digits_run["config"]["data_name"] == "digits@1"
    assert digits_run["data"] == {"label": "digits@1", "sha256": digits["sha256"]}
    assert repository_of(home).get_run(digits_run["id"]).data_sha256 == digits["sha256"]


def test_runs_show_names_the_dataset_and_its_classes_in_evaluations(
    trainq: Trainq, digits: dict[str, Any], digits_run: dict[str, Any]
) -> None:
    shown = as_json(trainq("runs", "show", str(digits_run["id"]), "--format", "json"))
    assert shown["data"] == {"label": "digits@1", "sha256": digits["sha256"], "stored": True}
    (evaluation,) = shown["evaluations"]
    assert evaluation["class_names"] == list(NAMES_V1)
    assert sum(map(sum, evaluation["confusion"])) == digits["n_test"]
    table = trainq("runs", "show", str(digits_run["id"])).stdout
    assert f"digits@1 ({digits['short_hash']})" in table
    assert "fashion-mnist" not in table  # the config's `dataset` field is not shown as data


def test_runs_list_and_compare_show_the_dataset_of_each_run(
    trainq: Trainq, digits: dict[str, Any], digits_run: dict[str, Any]
) -> None:
    default = as_json(trainq("train", "--steps", "20", "--seed", "1", "--json"))
    table = trainq("runs", "list").stdout
    header = table.splitlines()[0].split()
    assert header[:3] == ["id", "name", "data"]
    assert f"digits@1 ({digits['short_hash']})" in table
    assert "fashion-mnist (built-in)" in table

    csv_lines = trainq("runs", "list", "--format", "csv").stdout.splitlines()
    assert csv_lines[0].endswith(",data,data_sha256")
    assert any(line.endswith(f",digits@1,{digits['sha256']}") for line in csv_lines)
    assert any(line.endswith(",fashion-mnist (built-in),") for line in csv_lines)

    pair = [str(digits_run["id"]), str(default["id"])]
    compared = as_json(trainq("compare", *pair, "--format", "json"))
    assert "data" in compared["differing"]
    labels = [run["data"] for run in compared["runs"]]
    assert labels == [f"digits@1 ({digits['short_hash']})", "fashion-mnist (built-in)"]
    assert all("data_sha256" not in run and "dataset" not in run for run in compared["runs"])


def test_a_listing_of_default_runs_only_has_no_data_column(tmp_path: Path) -> None:
    assert trainq_in(tmp_path, "train", "--steps", "20", "--json").returncode == 0

    header = trainq_in(tmp_path, "runs", "list").stdout.splitlines()[0].split()

    assert "data" not in header
    assert as_json(trainq_in(tmp_path, "runs", "list", "--json"))[0]["data"] == {
        "label": "fashion-mnist (built-in)",
        "sha256": None,
    }


def test_a_default_run_is_the_built_in_fashion_mnist_and_registers_nothing(
    tmp_path: Path,
) -> None:
    run = as_json(trainq_in(tmp_path, "train", "--steps", "20", "--seed", "2", "--json"))

    assert run["config"]["data_sha256"] is None and run["config"]["data_name"] is None
    assert repository_of(tmp_path).list_dataset_versions() == []  # nothing hashed or stored
    shown = as_json(trainq_in(tmp_path, "runs", "show", str(run["id"]), "--format", "json"))
    assert shown["data"] == {"label": "fashion-mnist (built-in)", "sha256": None, "stored": None}


@pytest.mark.skipif(not FASHION_MNIST_INSTALLED, reason="needs the dataset-fashion-mnist package")
def test_fashion_mnist_appears_by_itself_in_data_list_and_can_be_named(tmp_path: Path) -> None:
    listed = as_json(trainq_in(tmp_path, "data", "list", "--format", "json"))
    assert [version["label"] for version in listed] == ["fashion-mnist@1"]

    run = as_json(
        trainq_in(tmp_path, "train", "--data", "fashion-mnist", "--steps", "20", "--json")
    )

    assert run["status"] == "succeeded"
    assert run["config"]["data_sha256"] == listed[0]["sha256"]
    assert run["config"]["data_name"] == "fashion-mnist@1"


@pytest.mark.skipif(not FASHION_MNIST_INSTALLED, reason="needs the dataset-fashion-mnist package")
def test_naming_fashion_mnist_registers_it_when_nothing_is_stored(tmp_path: Path) -> None:
    run = as_json(
        trainq_in(tmp_path, "train", "--data", "fashion-mnist@1", "--steps", "10", "--json")
    )

    assert run["config"]["data_name"] == "fashion-mnist@1"
    assert [v.label for v in repository_of(tmp_path).list_dataset_versions()] == ["fashion-mnist@1"]


def test_a_missing_version_exits_4_naming_the_versions_there_are(
    trainq: Trainq, digits: dict[str, Any], home: Path
) -> None:
    before = len(repository_of(home).list_runs())

    result = trainq("train", "--data", "digits@7", "--steps", "10")

    assert result.returncode == 4, result.stderr
    assert "dataset digits has no version 7; its versions are digits@1" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(repository_of(home).list_runs()) == before


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--data", "not a name!"], "--data: dataset 'not a name!'"),
        (["--data", "digits", "--batch-size", "2000"], "--batch-size (2000) must not exceed"),
        (["--data", "digits", "--val-size", "1078"], "--val-size (1078) must be less than"),
    ],
    ids=["malformed", "batch", "held-out"],
)
def test_options_that_do_not_fit_the_version_exit_2_naming_the_option(
    trainq: Trainq, digits: dict[str, Any], options: list[str], words: str
) -> None:
    result = trainq("train", *options, "--steps", "10")

    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_a_batch_larger_than_fashion_mnist_is_fine_on_a_version_that_has_it(
    trainq: Trainq, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "wide.npz"
    np.savez(
        path, x_train=rng.normal(size=(61_000, 2)).astype(np.float32), y_train=np.arange(61_000) % 2
    )
    assert trainq("data", "add", "big", str(path)).returncode == 0

    run = as_json(
        trainq("train", "--data", "big", "--batch-size", "60500", "--steps", "2", "--json")
    )

    assert run["status"] == "succeeded" and run["config"]["batch_size"] == 60_500


def test_the_python_api_submits_on_a_version_and_refuses_what_does_not_fit(
    home: Path, digits: dict[str, Any]
) -> None:
    settings = Settings.from_env({"TRAINQ_HOME": str(home)})
    with Client(settings) as client:
        run = client.wait(client.submit(data="digits@1", steps=50, chunk_steps=50, seed=1).id)
        many = client.submit_many([{"steps": 20, "seed": s} for s in (1, 2)], data="digits")
        client.wait_all([r.id for r in many])
        with pytest.raises(DatasetNotFoundError, match="its versions are digits@1"):
            client.submit(data="digits@9")
        with pytest.raises(InvalidConfigError, match=r"batch_size \(5000\) must not exceed"):
            client.submit(data="digits", batch_size=5000)
        with pytest.raises(InvalidConfigError, match=r"^data: "):
            client.submit(data=42)  # type: ignore[arg-type]

    assert run.status is RunStatus.SUCCEEDED
    assert run.config["data_sha256"] == digits["sha256"]
    assert {r.config["data_name"] for r in many} == {"digits@1"}


def test_a_sweep_file_s_data_key_trains_every_trial_on_the_version(
    trainq: Trainq, digits: dict[str, Any], tmp_path: Path
) -> None:
    sweep_file = tmp_path / "sweep.json"
    sweep: dict[str, Any] = {
        "data": "digits",
        "method": "grid",
        "seed": 3,
        "val_size": 200,
        "parameters": {"lr": {"values": [0.05, 0.1]}, "steps": {"value": 100}},
    }
    sweep_file.write_text(json.dumps(sweep))

    started = as_json(trainq("sweep", "start", str(sweep_file), "--json"))

    assert started["status"] == "succeeded"
    sweep_id = str(started["sweep_id"])
    trials = as_json(trainq("runs", "list", "--sweep", sweep_id, "--format", "json"))
    assert len(trials) == 2
    assert {t["config"]["data_sha256"] for t in trials} == {digits["sha256"]}
    assert {t["data"]["label"] for t in trials} == {"digits@1"}

    too_many = sweep | {"val_size": 20_000}
    sweep_file.write_text(json.dumps(too_many))
    refused = trainq("sweep", "start", str(sweep_file))
    assert refused.returncode == 2, refused.stderr
    assert "val_size: 20000 must be less than the 1078 training examples of digits@1" in (
        refused.stderr
    )
    sweep_file.write_text(json.dumps(sweep | {"data": "digits@5"}))
    missing = trainq("sweep", "start", str(sweep_file))
    assert missing.returncode == 4, missing.stderr
    batch = sweep | {"parameters": {"batch_size": {"values": [64, 5000]}}}
    sweep_file.write_text(json.dumps(batch))
    too_big = trainq("sweep", "start", str(sweep_file))
    assert too_big.returncode == 2, too_big.stderr
    assert "batch_size=5000 is invalid: batch_size (5000) must not exceed" in too_big.stderr


def test_the_dashboard_shows_the_dataset_and_its_class_names(
    home: Path, digits: dict[str, Any], digits_run: dict[str, Any]
) -> None:
    from datetime import UTC, datetime

    from api_cli.dashboard.views import RunFilters, run_page, runs_page

    repository = repository_of(home)
    now = datetime.now(UTC)

    page = run_page(repository, digits_run["id"], now)
    rows = runs_page(repository, RunFilters(per_page=500), now)["rows"]

    assert page["data"] == f"digits@1 ({digits['short_hash']})"
    assert page["evaluations"][0]["class_names"] == list(NAMES_V1)
    by_id = {row["id"]: row["data"] for row in rows}
    assert by_id[digits_run["id"]] == f"digits@1 ({digits['short_hash']})"
    assert "fashion-mnist (built-in)" in by_id.values()


@pytest.mark.slow
def test_a_version_added_later_changes_nothing_a_run_resumes_evaluates_or_exports(
    tmp_path: Path,
) -> None:
    """digits@2 is another width with other class names: a run on digits@1 that resumed,
    evaluated or exported digits@2 would fail or say so."""
    home = tmp_path / "home"
    v1, _, n_test = digits_npz(tmp_path / "v1.npz")
    v2, _, _ = digits_npz(tmp_path / "v2.npz", features=32)
    assert (
        trainq_in(
            home, "data", "add", "digits", str(v1), "--class-names", ",".join(NAMES_V1)
        ).returncode
        == 0
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "api_cli", "train", "--data", "digits", "--steps", "400000",
         "--chunk-steps", "1000", "--checkpoint-every", "100000", "--seed", "6"],
        env=embedded_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    repository = repository_of(home)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert time.monotonic() < deadline and process.poll() is None, "never reached 2,000"
            try:
                if repository.list_runs() and repository.get_run(1).steps_done >= 2_000:
                    break
            except StorageError:  # the schema is being created
                pass
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
    finally:
        process.kill()
    interrupted = repository.get_run(1)
    assert interrupted.status is RunStatus.QUEUED and interrupted.steps_done < 400_000

    added = trainq_in(
        home, "data", "add", "digits", str(v2), "--class-names", ",".join(NAMES_V2), "--json"
    )
    assert as_json(added)["label"] == "digits@2"

    resumed = as_json(trainq_in(home, "resume", "1", "--json"))
    evaluated = as_json(trainq_in(home, "eval", "1", "--wait", "--format", "json"))
    exported = trainq_in(home, "export", "1", "--out", str(tmp_path / "run.npz"))

    assert resumed["status"] == "succeeded", resumed["error"]
    assert resumed["data"]["label"] == "digits@1"
    (evaluation,) = evaluated["evaluations"]
    assert sum(map(sum, evaluation["confusion"])) == n_test
    assert evaluation["class_names"] == list(NAMES_V1)
    assert exported.returncode == 0, exported.stderr
    with np.load(tmp_path / "run.npz", allow_pickle=False) as weights:
        assert weights["W"].shape == (64, 10)
        assert tuple(weights["class_names"]) == NAMES_V1


def test_the_seed_s_job_opens_no_database_before_tensorflow_starts_importing(
    tmp_path: Path,
) -> None:
    from worker.config import TrainConfig
    from worker.training import wait_for_import

    settings = Settings.from_env({"TRAINQ_HOME": str(tmp_path)})
    client = Client(settings)

    ready = client.ready_for_one_run(TrainConfig(steps=20))
    wait_for_import()

    assert ready.xla is not None and ready.data_sha256 is None
    assert "repository" not in client.__dict__  # never opened: no look-up on the default path
