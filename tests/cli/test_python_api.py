"""`import trainq`: the Python API, embedded (jobs run in a thread of this very process)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
