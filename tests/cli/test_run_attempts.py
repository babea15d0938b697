"""`trainq runs show` lists a run's attempts: a table at 80 columns, whole when piped, an
``attempt_history`` list in JSON and ``attempt.N.field`` rows in CSV."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from storage import Database, Repository, RunStatus, Settings
from tests.cli.conftest import Trainq, embedded_env
from tests.cli.seeding import queued_run
from tests.cli.test_tables import in_terminal

LONG_ERROR = "the job process was killed by the kernel (out of memory) while training step 1234"


@pytest.fixture(scope="module")
def run_id(home: Path) -> int:
    """A run lost on node-a (its lease expired), then failed on node-b with a long error."""
    database = Database(Settings.from_env(embedded_env(home)).database_url)
    database.ensure_schema(auto_upgrade=True)
    repository = Repository(database)
    run = queued_run(repository)
    repository.claim_run(run.id, owner="node-a:1:x", worker_host="node-a", lease_ttl_s=0.01)
    time.sleep(0.05)
    repository.requeue_expired(run.id)
    second = repository.claim_run(run.id, owner="node-b:2:y", worker_host="node-b", lease_ttl_s=60)
    assert second is not None
    repository.finish_run(
        run.id, second.attempt, RunStatus.FAILED, error=LONG_ERROR, device="GPU:0 (NVIDIA H200)"
    )
    database.dispose()
    return run.id


def test_runs_show_at_80_columns_lists_both_attempts_with_hosts_and_outcomes(
    home: Path, run_id: int
) -> None:
    shown = in_terminal(home, "runs", "show", str(run_id))
    table = shown[shown.index("att.") :]

    assert "node-a" in table and "node-b" in table
    assert "lost" in table and "failed" in table
    assert "killed by" in table and "step 1234" in table  # the error wraps, it is not cut
    assert any("node-a" in line and "lost" in line for line in table.splitlines())


def test_runs_show_piped_keeps_each_attempt_on_one_whole_line(trainq: Trainq, run_id: int) -> None:
    shown = trainq("runs", "show", str(run_id)).stdout

    lines = [line for line in shown.splitlines() if "node-" in line and "  " in line]
    assert [line.split()[0] for line in lines if line.split()[0] in ("1", "2")] == ["1", "2"]
    assert any(LONG_ERROR in line for line in lines)


def test_runs_show_json_has_the_attempt_history_first_attempt_first(
    trainq: Trainq, run_id: int
) -> None:
    shown = json.loads(trainq("runs", "show", str(run_id), "--format", "json").stdout)

    history = shown["attempt_history"]
    assert [(a["attempt"], a["worker_host"], a["outcome"]) for a in history] == [
        (1, "node-a", "lost"),
        (2, "node-b", "failed"),
    ]
    assert history[1]["device"] == "GPU:0 (NVIDIA H200)"
    assert shown["attempts"] == 2  # the count keeps its meaning


def test_runs_show_csv_has_one_row_per_attempt_field(trainq: Trainq, run_id: int) -> None:
    shown = trainq("runs", "show", str(run_id), "--format", "csv").stdout

    rows = dict(csv.reader(io.StringIO(shown)))
    assert (rows["attempt.1.worker_host"], rows["attempt.1.outcome"]) == ("node-a", "lost")
    assert (rows["attempt.2.outcome"], rows["attempt.2.error"]) == ("failed", LONG_ERROR)
