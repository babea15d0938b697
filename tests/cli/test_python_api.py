"""`import trainq`: the Python API, embedded (jobs run in a thread of this very process)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trainq as sdk

from tests.cli.conftest import Trainq, embedded_env

SMALL = {"steps": 300, "chunk_steps": 100, "checkpoint_every_steps": 100}


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[sdk.Client]:
    with sdk.Client(sdk.Settings.from_env(embedded_env(home))) as client:
        yield client


def test_import_trainq_loads_no_tensorflow_typer_rich_or_celery() -> None:
    code = (
        "import sys, trainq; "
        "print([m for m in ('tensorflow', 'typer', 'rich', 'celery', 'matplotlib') "
        "if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert result.stdout.strip() == "[]"


def test_trainq_is_the_api_package_under_its_own_name() -> None:
    import api_cli.sdk

    assert sdk.Client is api_cli.sdk.Client
    assert set(sdk.__all__) >= {"Client", "Metrics", "RunStatus", "TrainConfig", "TrainqError"}


@pytest.mark.slow
def test_an_embedded_submission_trains_here_and_its_metric_arrays_equal_what_the_cli_prints(
    client: sdk.Client, trainq: Trainq
) -> None:
    run = client.submit(seed=5, name="api", tags={"via": "api"}, **SMALL)
    assert run.status is sdk.RunStatus.QUEUED and run.name == "api"
    finished = client.wait(run.id, timeout_s=300)
    assert finished.status is sdk.RunStatus.SUCCEEDED and finished.steps_done == 300
    metrics = client.metrics(run.id)
    assert metrics.steps.dtype == np.int64 and metrics.loss.dtype == np.float32
    printed = json.loads(trainq("metrics", str(run.id), "--format", "json").stdout)
    assert metrics.steps.tolist() == [row["step"] for row in printed]
    assert np.array_equal(metrics.loss, np.array([row["loss"] for row in printed], np.float32))
    assert np.array_equal(
        metrics.accuracy, np.array([row["accuracy"] for row in printed], np.float32)
    )
    every = client.metrics(run.id, every=100)
    assert every.steps.tolist() == [100, 200, 300]


@pytest.mark.slow
def test_an_evaluation_submitted_through_the_api_is_stored_with_its_run(
    client: sdk.Client,
) -> None:
    run = client.wait(client.submit(seed=6, **SMALL).id, timeout_s=300)
    job = client.submit_evaluation(run.id)
    assert job.kind is sdk.JobKind.EVAL and job.checkpoint_step == 300
    assert client.wait(job, timeout_s=300).status is sdk.RunStatus.SUCCEEDED
    newest = client.latest_evaluations(run.id)["test"]
    assert newest.checkpoint_step == 300 and 0.0 < newest.accuracy <= 1.0
    assert sum(map(sum, newest.confusion)) == 10_000
    assert newest.job_id == job.id


@pytest.mark.slow
def test_submitting_the_same_evaluation_again_returns_the_stored_result_unless_forced(
    client: sdk.Client,
) -> None:
    run = client.wait(client.submit(seed=7, **SMALL).id, timeout_s=300)
    first = client.wait(client.submit_evaluation(run.id, 200), timeout_s=300)
    again = client.submit_evaluation(run.id, 200)
    assert again == first  # the job that computed the stored result, nothing queued
    forced = client.wait(client.submit_evaluation(run.id, 200, force=True), timeout_s=300)
    assert forced.id != first.id and forced.status is sdk.RunStatus.SUCCEEDED
    assert [e.job_id for e in client.evaluations(run.id)] == [first.id, forced.id]


@pytest.mark.slow
def test_embedded_jobs_run_one_after_another_and_a_queued_one_can_be_cancelled(
    client: sdk.Client,
) -> None:
    long_run, queued = client.submit_many(
        [{"steps": 200_000, "chunk_steps": 500, "seed": 1}, {"seed": 2, **SMALL}]
    )
    with pytest.raises(TimeoutError):
        client.wait(long_run.id, timeout_s=0.5)
    assert client.cancel(queued.id).status is sdk.RunStatus.CANCELLED
    client.cancel(long_run.id)
    assert client.wait(long_run.id, timeout_s=120).status is sdk.RunStatus.CANCELLED
    assert client.wait(queued.id, timeout_s=10).steps_done == 0


def test_a_bad_hyperparameter_is_refused_before_anything_is_stored(
    client: sdk.Client,
) -> None:
    before = len(client.runs())
    with pytest.raises(sdk.InvalidConfigError, match="learning_rate"):
        client.submit_many([{"seed": 1, **SMALL}, {"learning_rate": float("nan")}])
    with pytest.raises(sdk.InvalidConfigError, match="max_attempts"):
        client.submit(max_attempts=0)
    assert len(client.runs()) == before


def test_unknown_run_ids_are_all_named(client: sdk.Client) -> None:
    with pytest.raises(sdk.RunNotFoundError, match=r"987654, 987655"):
        client.training_runs([987654, 987655])


def test_a_sweep_submitted_through_the_api_runs_here_and_reads_back_its_best_trial(
    client: sdk.Client,
) -> None:
    sweep = {
        "name": "api-grid",
        "metric": {"name": "val_accuracy", "goal": "maximize"},
        "method": "grid",
        "seed": 3,
        "run_cap": 2,
        "val_size": 1000,
        "parameters": {
            "lr": {"values": [0.01, 0.1]},
            "init": {"value": "zeros"},
            "steps": {"value": 300},
            "chunk_steps": {"value": 100},
            "checkpoint_every": {"value": 100},
        },
    }
    record = client.submit_sweep(sweep)
    assert record.status.value == "succeeded"
    report = client.sweep(record.id)
    assert len(report.trials) == 2 and all(t.status == "succeeded" for t in report.trials)
    assert report.best is not None and report.best.objective is not None
    assert report.best.objective == max(t.objective or 0.0 for t in report.trials)
    assert {run.sweep_id for run in client.runs() if run.sweep_id} == {record.id}


def test_a_bad_sweep_is_refused_through_the_api_and_stores_nothing(client: sdk.Client) -> None:
    before = len(client.runs())
    with pytest.raises(sdk.InvalidConfigError, match="learning"):
        client.submit_sweep({"parameters": {"learning": {"value": 0.1}}, "run_cap": 1})
    assert len(client.runs()) == before


#: A mapping nested deeper than any sweep file may be.
DEEP: dict[str, Any] = {}
_level = DEEP
for _ in range(40):
    _level["a"] = {}
    _level = _level["a"]

#: One wrong argument per row: (method, args, kwargs, what the InvalidConfigError says). Every
#: public method of Client has a row (see the test below it), so a new one gets its checks.
WRONG_ARGUMENTS: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
    ("submit", (), {"steps": True}, "steps: must be a whole number, not a string or True/False"),
    ("submit", (), {"steps": "10"}, "steps: must be a whole number, not a string or True/False"),
    ("submit", (), {"learning_rate": "0.1"}, "learning_rate: must be a number, not a string"),
    ("submit", (), {"steps": 10, "xla": "yes"}, "xla: must be True, False or None"),
    ("submit", (5,), {}, "config: must be a TrainConfig or a mapping of its fields, got 5"),
    ("submit", (), {"steps": 10, "name": 5}, "name: must be a string of at most 200 characters"),
    ("submit", (), {"tags": ["team=vision"]}, "tags: must be a mapping of KEY to VALUE strings"),
    ("submit", (), {"max_attempts": "3"}, "max_attempts: must be a whole number from 1 to 100"),
    ("submit", (), {"data": 42}, "data: give a dataset as NAME, NAME@N or a hash, got int"),
    ("submit", (), {"data": "not a name!"}, "data: dataset 'not a name!': give NAME, NAME@N"),
    ("submit_many", ([{"steps": 10}],), {"data": ["digits"]}, "data: give a dataset as NAME"),
    ("train_config", (5,), {}, "config: must be a TrainConfig or a mapping of its fields, got 5"),
    ("train_config", (), {"data": b"digits"}, "data: give a dataset as NAME, NAME@N or a hash"),
    ("ready_for_one_run", ({"steps": 10},), {}, "config: must be a TrainConfig"),
    ("submit_many", ({"steps": 10},), {}, "configs: must be a list of TrainConfig or mappings"),
    ("submit_many", ([{"steps": 10}],), {"max_attempts": 0}, "max_attempts: must be a whole"),
    ("submit_evaluation", (1,), {"split": "bogus"}, "split: must be one of test, train, val"),
    ("submit_evaluation", ("1",), {}, "run_id: must be a whole number"),
    ("submit_evaluation", (1, 0), {}, "checkpoint_step: must be a whole number from 1"),
    ("submit_evaluation", (1,), {"force": "no"}, "force: must be True or False, got 'no'"),
    ("checkpoint_step", (1, "100"), {}, "checkpoint_step: must be a whole number"),
    ("stored_evaluation", (1, 100), {"split": 3}, "split: must be one of test, train, val"),
    ("create_evaluation_job", (1, None, "bogus"), {}, "split: must be one of test, train, val"),
    ("dispatch_many", ([1],), {}, "runs: must be a list of job records, got 1"),
    ("handle", (1,), {"kind": "bogus"}, "kind: must be one of train, eval"),
    ("wait", ("1",), {}, "job: must be a whole number"),
    ("wait", (1,), {"timeout_s": "5"}, "timeout_s: must be a finite number of seconds >= 0"),
    ("wait", (1,), {"poll_interval_s": 0}, "poll_interval_s: must be a finite number of seconds"),
    ("wait_all", (1,), {}, "run_ids: must be a list of run ids, got 1"),
    ("run", (True,), {}, "run_id: must be a whole number from 1 to 2,147,483,647, got True"),
    ("training_runs", ("12",), {}, "run_ids: must be a list of run ids, got '12'"),
    ("runs", (), {"statuses": ["bogus"]}, "statuses: must be one of queued, running"),
    ("runs", (), {"statuses": "queued"}, "statuses: must be a list of values out of queued"),
    ("runs", (), {"tags": ["team=vision"]}, "tags: must be a mapping of KEY to VALUE strings"),
    ("runs", (), {"name": 5}, "name: must be a string of at most 200 characters, got 5"),
    ("runs", (), {"limit": 0}, "limit: must be a whole number from 1"),
    ("metrics", (1,), {"every": 0}, "every: must be a whole number from 1"),
    ("metrics", (1,), {"first_step": "1"}, "first_step: must be a whole number from 1"),
    ("evaluations", (None,), {}, "run_id: must be a whole number"),
    ("latest_evaluations", (1.5,), {}, "run_id: must be a whole number"),
    ("cancel", ("all",), {}, "run_id: must be a whole number"),
    ("submit_sweep", (5,), {}, "sweep: must be a sweep file's path or its loaded mapping"),
    ("submit_sweep", ({"parameters": DEEP},), {}, "sweep: values nested more than 32 levels"),
    ("submit_sweep", ("sweep.yaml",), {"run_here": "no"}, "run_here: must be True or False"),
    ("submit_sweep", ({"data": 5, "seed": 1},), {}, "data: name a stored dataset: NAME"),
    ("add_dataset", (5, "table.npz"), {}, "dataset name 5: use 1 to 64 letters"),
    ("datasets", (5,), {}, "name: must be a dataset's name (or None), got 5"),
    ("dataset", (42,), {}, "ref: give a dataset as NAME, NAME@N or a hash, got int"),
    ("dataset", ("a b",), {}, "ref: dataset 'a b': give NAME, NAME@N or a content hash"),
    ("remove_dataset", (None,), {}, "ref: give a dataset as NAME, NAME@N or a hash"),
    ("remove_dataset", ("table@1",), {"force": "yes"}, "force: must be True or False"),
    ("gc", (), {"keep_checkpoints": "first"}, "keep_checkpoints: must be one of last, best"),
    ("gc", (), {"older_than_s": -1}, "older_than_s: must be a finite number of seconds"),
    ("gc", (), {"dry_run": "yes"}, "dry_run: must be True or False"),
    ("gc", (), {"on_run": 5}, "on_run: must be a function (or None)"),
    ("rename_run", ("1", "x"), {}, "run_id: must be a whole number"),
    ("rename_run", (1, "x" * 201), {}, "name: must be a string of at most 200 characters"),
    ("set_note", (1, 5), {}, "note: must be a string of at most 10,000 characters, got 5"),
    ("tag_run", (1, ["a=b"]), {}, "tags: must be a mapping of KEY to VALUE strings"),
    ("tag_run", (1, {"bad key": "x"}), {}, "tags: tag key 'bad key' must be 1-64 characters"),
    ("untag_run", (1, "team"), {}, "keys: must be a list of tag keys, got 'team'"),
    ("archive_runs", (1,), {}, "run_ids: must be a list of run ids, got 1"),
    ("unarchive_runs", ("1",), {}, "run_ids: must be a list of run ids, got '1'"),
    ("delete_runs", ([1],), {"dry_run": "yes"}, "dry_run: must be True or False"),
    ("archive_sweep", ("1",), {}, "sweep_id: must be a whole number"),
    ("unarchive_sweep", (0,), {}, "sweep_id: must be a whole number from 1"),
    ("delete_sweep", (1,), {"dry_run": 1}, "dry_run: must be True or False, got 1"),
    ("runs", (), {"archived": "yes"}, "archived: must be True or False, got 'yes'"),
    ("run_sweep", ("1",), {}, "sweep_id: must be a whole number"),
    ("run_sweep", (1,), {"on_trial_end": "print"}, "on_trial_end: must be a function"),
    ("resume_sweep", (1,), {"run_here": 1}, "run_here: must be True or False, got 1"),
    ("sweep", (2**63,), {}, "sweep_id: must be a whole number from 1 to 2,147,483,647"),
]
#: Public methods that take no argument a caller could get wrong.
NO_ARGUMENTS = {"close", "reclaim_space"}


@pytest.fixture(scope="module")
def empty_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sdk.Client]:
    home = tmp_path_factory.mktemp("api-arguments")
    with sdk.Client(sdk.Settings.from_env(embedded_env(home))) as client:
        yield client


def test_every_public_client_method_has_a_row_of_wrong_arguments() -> None:
    public = {
        name
        for name, member in inspect.getmembers(sdk.Client)
        if not name.startswith("_")
        and callable(member)
        and not isinstance(inspect.getattr_static(sdk.Client, name), property | cached_property)
    }
    assert public == {row[0] for row in WRONG_ARGUMENTS} | NO_ARGUMENTS


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "message"),
    WRONG_ARGUMENTS,
    ids=[f"{row[0]}-{index}" for index, row in enumerate(WRONG_ARGUMENTS)],
)
def test_a_wrong_argument_raises_invalid_config_error_naming_it_and_stores_nothing(
    empty_client: sdk.Client,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(sdk.InvalidConfigError) as raised:
        getattr(empty_client, method)(*args, **kwargs)
    assert message in str(raised.value)
    assert empty_client.runs() == []
    assert empty_client.repository.list_sweeps() == []


def test_a_client_built_from_something_other_than_settings_says_so() -> None:
    with pytest.raises(sdk.InvalidConfigError, match=r"settings: must be a trainq\.Settings"):
        sdk.Client({"home_dir": "/tmp"})
