"""An embedded `trainq train` starts TensorFlow's import first and sees its job end at once.

TensorFlow's import (seconds) and SQLAlchemy's share one interpreter lock, so the import starts
as soon as the command knows it will train here: before SQLAlchemy and the database. The main
thread, which shows progress, reads the database seldom while the job starts and is woken when
the job stops.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from api_cli import progress
from storage import Database, Repository
from storage.records import RunRecord, RunStatus
from tests.cli.conftest import python_in
from tests.cli.seeding import queued_run

#: Runs `trainq train`, stopping the process where TensorFlow's import would start.
_PROBE = """
import os, sys
import worker.training as training

def stop_here():
    loaded = sorted(m for m in ("sqlalchemy", "tensorflow") if m in sys.modules)
    print("loaded when the import starts:", loaded, flush=True)
    os._exit(0)

training.start_importing = stop_here
sys.argv = ["trainq", "train", "--steps", "10"]
from api_cli.main import run
run()
"""


def test_an_embedded_train_starts_importing_tensorflow_before_sqlalchemy(tmp_path: Path) -> None:
    probe = python_in(tmp_path, "-c", _PROBE, timeout_s=120)
    assert probe.returncode == 0, probe.stderr
    assert "loaded when the import starts: []" in probe.stdout
    assert not (tmp_path / "trainq.db").exists()  # nor was the database opened


def test_a_job_in_this_process_that_stops_is_seen_at_once_not_after_the_poll_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No steps yet: the run would be read again only after STARTING_POLL_INTERVAL_S (an hour
    # here); the job's event, set once the run has finished, ends that wait instead.
    monkeypatch.setattr(progress, "STARTING_POLL_INTERVAL_S", 3600.0)
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.ensure_schema(auto_upgrade=True)
    repository = _FirstReadSeen(database)
    run = queued_run(repository)
    claimed = repository.claim_run(run.id, owner="test:1:a", worker_host="test", lease_ttl_s=600)
    assert claimed is not None
    stopped = threading.Event()

    def finish_once_it_was_read() -> None:
        repository.first_read.wait()
        repository.finish_run(run.id, claimed.attempt, RunStatus.CANCELLED)
        stopped.set()

    finisher = threading.Thread(target=finish_once_it_was_read)
    finisher.start()
    started = time.monotonic()
    seen = progress.wait_for_run(repository, run.id, show_progress=False, wake=stopped)
    finisher.join()
    database.dispose()
    assert seen.status is RunStatus.CANCELLED
    assert time.monotonic() - started < 60


class _FirstReadSeen(Repository):
    """A repository that says when a run was first read."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.first_read = threading.Event()

    def get_run(self, run_id: int) -> RunRecord:
        run = super().get_run(run_id)
        self.first_read.set()
        return run
