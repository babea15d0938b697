"""A resume skips damaged checkpoints: the newest intact one is used, and the run ends exactly."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from storage import Database, JobKind, MetricChunk, Repository, RunStatus, Settings
from worker.config import TrainConfig
from worker.data import FashionMnist
from worker.jobs import JobContext, execute_job
from worker.training import ChunkReport, train

# A first attempt that dies after step 3,000 leaves checkpoints at 1,000, 2,000 and 3,000.
CONFIG = TrainConfig(steps=4_000, chunk_steps=500, checkpoint_every_steps=1_000, seed=11)
DIED_AT_STEP = 3_000
LEASE_TTL_S = 30.0


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.upgrade()
    return Repository(database)


def context(repository: Repository, tmp_path: Path) -> JobContext:
    settings = Settings(home_dir=tmp_path, database_url="unused", broker_url=None, data_dir=None)
    return JobContext.for_this_process(repository, settings, "test")


def new_run(repository: Repository) -> int:
    run = repository.create_run(
        kind=JobKind.TRAIN,
        config=CONFIG.model_dump(mode="json"),
        seed=CONFIG.seed_value,
        queue="train",
        max_attempts=3,
    )
    return run.id


def first_attempt_dies_after(repository: Repository, data: FashionMnist, step: int) -> int:
    """Train a run's first attempt up to ``step`` through the repository, then lose its worker."""
    run_id = new_run(repository)
    claimed = repository.claim_run(run_id, owner="gone", worker_host="h", lease_ttl_s=LEASE_TTL_S)
    assert claimed is not None

    done = {"step": 0}

    def record(report: ChunkReport) -> None:
        weights = report.state.arrays if report.state is not None else None
        chunk = MetricChunk(report.first_step, report.loss, report.accuracy)
        repository.record_chunk(
            run_id, claimed.attempt, chunk, lease_ttl_s=LEASE_TTL_S, checkpoint=weights
        )
        done["step"] = report.last_step

    train(CONFIG, data, on_chunk=record, should_stop=lambda: done["step"] >= step)
    assert repository.expire_lease(run_id, claimed.attempt)
    assert repository.requeue_expired(run_id).status is RunStatus.QUEUED
    return run_id


def corrupt_checkpoint(path: Path, run_id: int, step: int) -> None:
    """Flip a byte of a stored blob behind the repository's back, as a bad disk would."""
    with sqlite3.connect(path) as connection:
        (blob,) = connection.execute(
            "SELECT weights FROM checkpoints WHERE run_id = ? AND step = ?", (run_id, step)
        ).fetchone()
        damaged = bytearray(blob)
        damaged[len(damaged) // 2] ^= 0xFF
        connection.execute(
            "UPDATE checkpoints SET weights = ? WHERE run_id = ? AND step = ?",
            (bytes(damaged), run_id, step),
        )
    connection.close()


def test_a_corrupt_newest_checkpoint_is_skipped_and_the_run_ends_as_if_never_damaged(
    repository: Repository,
    fashion_mnist: FashionMnist,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_id = first_attempt_dies_after(repository, fashion_mnist, DIED_AT_STEP)
    corrupt_checkpoint(tmp_path / "trainq.db", run_id, DIED_AT_STEP)

    with caplog.at_level(logging.WARNING):
        finished = execute_job(context(repository, tmp_path), run_id)

    assert finished is not None and finished.status is RunStatus.SUCCEEDED
    assert finished.attempt == 2
    assert (
        f"run {run_id}: checkpoint at step 3000 is corrupt (checksum mismatch); "
        "resuming from step 2000" in caplog.text
    )
    assert [row.step for row in repository.read_metrics(run_id)] == list(range(1, 4_001))
    # The damaged checkpoint was recomputed and replaced, so it reads back intact.
    assert repository.get_checkpoint(run_id, DIED_AT_STEP).info.step == DIED_AT_STEP
    straight = execute_job(context(repository, tmp_path), new_run(repository))
    assert straight is not None
    final = repository.get_checkpoint(run_id, 4_000).arrays
    expected = repository.get_checkpoint(straight.id, 4_000).arrays
    for name, array in expected.items():
        np.testing.assert_array_equal(final[name], array)


def test_a_run_whose_every_checkpoint_is_corrupt_fails_without_retry(
    repository: Repository, fashion_mnist: FashionMnist, tmp_path: Path
) -> None:
    run_id = first_attempt_dies_after(repository, fashion_mnist, 2_000)
    for step in (1_000, 2_000):
        corrupt_checkpoint(tmp_path / "trainq.db", run_id, step)

    finished = execute_job(context(repository, tmp_path), run_id)

    assert finished is not None and finished.status is RunStatus.FAILED
    assert finished.error is not None
    assert "every checkpoint is corrupt (step 2000 (checksum mismatch)" in finished.error
    assert execute_job(context(repository, tmp_path), run_id) is None  # no retry


@pytest.mark.parametrize(
    ("edit", "resumed_from"),
    [
        ("CAST(weights AS TEXT)", DIED_AT_STEP),  # its bytes unchanged: still the newest intact
        ("CAST(substr(weights, 1, 1000) AS TEXT)", 2_000),  # cut: damaged, the older one serves
    ],
)
def test_a_newest_checkpoint_stored_as_text_resumes_by_its_checksum(
    repository: Repository,
    fashion_mnist: FashionMnist,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    edit: str,
    resumed_from: int,
) -> None:
    run_id = first_attempt_dies_after(repository, fashion_mnist, DIED_AT_STEP)
    with sqlite3.connect(tmp_path / "trainq.db") as connection:
        connection.execute(
            f"UPDATE checkpoints SET weights = {edit} WHERE run_id = ? AND step = ?",
            (run_id, DIED_AT_STEP),
        )
    connection.close()

    with caplog.at_level(logging.WARNING):
        finished = execute_job(context(repository, tmp_path), run_id)

    assert finished is not None and finished.status is RunStatus.SUCCEEDED
    skipped = f"checkpoint at step {DIED_AT_STEP} is corrupt (checksum mismatch)"
    assert (skipped in caplog.text) is (resumed_from != DIED_AT_STEP)
    assert [row.step for row in repository.read_metrics(run_id)] == list(range(1, 4_001))
