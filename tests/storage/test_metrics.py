"""Metric chunks: idempotent writes, exact values (NaN included), ranges, and fast reads."""

from __future__ import annotations

import numpy as np
import pytest

from storage import (
    Database,
    InvalidValueError,
    MetricChunk,
    MetricRow,
    Repository,
    RunNotFoundError,
)
from tests.storage.support import (
    LEASE_TTL_S,
    WEIGHTS,
    FakeClock,
    chunk,
    claim,
    count_rows,
    new_run,
)


def running_run_id(repo: Repository) -> int:
    return claim(repo, new_run(repo).id).id


def test_writing_the_same_chunk_twice_stores_it_once(db: Database, repo: Repository) -> None:
    run_id = running_run_id(repo)
    for _ in range(3):
        repo.record_chunk(run_id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS)

    assert count_rows(db, "metric_chunks", run_id) == 1
    assert count_rows(db, "checkpoints", run_id) == 1
    assert [row.step for row in repo.read_metrics(run_id)] == list(range(1, 101))


def test_a_resumed_attempt_rewriting_chunks_leaves_no_duplicate_or_missing_steps(
    db: Database, repo: Repository, clock: FakeClock
) -> None:
    run = new_run(repo)
    claim(repo, run.id)
    for first in (1, 101, 201):
        repo.record_chunk(run.id, 1, chunk(first, 100), lease_ttl_s=LEASE_TTL_S)
    clock.advance(LEASE_TTL_S + 1)  # the worker died; another one takes over
    claim(repo, run.id)
    for first in (101, 201, 301):  # resumed from the checkpoint at step 100
        repo.record_chunk(run.id, 2, chunk(first, 100), lease_ttl_s=LEASE_TTL_S)

    steps = [row.step for row in repo.read_metrics(run.id)]
    assert steps == list(range(1, 401))
    assert count_rows(db, "metric_chunks", run.id) == 4
    assert repo.get_run(run.id).steps_done == 400


def test_steps_done_never_goes_backwards(repo: Repository) -> None:
    run_id = running_run_id(repo)
    repo.record_chunk(run_id, 1, chunk(101, 100), lease_ttl_s=LEASE_TTL_S)
    repo.record_chunk(run_id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S)
    assert repo.get_run(run_id).steps_done == 200


def test_nan_and_infinite_metrics_round_trip_exactly(repo: Repository) -> None:
    run_id = running_run_id(repo)
    loss = np.array([0.5, np.nan, np.inf, -np.inf, 1e-45, 3.4e38], dtype=np.float32)
    accuracy = np.array([0.0, 1.0, np.nan, 0.25, 0.5, 0.75], dtype=np.float32)
    repo.record_chunk(run_id, 1, MetricChunk(1, loss, accuracy), lease_ttl_s=LEASE_TTL_S)

    steps, read_loss, read_accuracy = repo.read_metric_arrays(run_id)

    assert steps.tolist() == [1, 2, 3, 4, 5, 6]
    assert read_loss.tobytes() == loss.tobytes()
    assert read_accuracy.tobytes() == accuracy.tobytes()
    rows = repo.read_metrics(run_id)
    assert np.isnan(rows[1].loss)
    assert rows[2].loss == float("inf")
    assert rows[3].loss == float("-inf")


def test_read_metrics_returns_one_row_per_step_with_the_stored_values(repo: Repository) -> None:
    run_id = running_run_id(repo)
    repo.record_chunk(run_id, 1, chunk(1, 3), lease_ttl_s=LEASE_TTL_S)
    assert repo.read_metrics(run_id) == [
        MetricRow(1, 1.0, float(np.float32(1e-6))),
        MetricRow(2, 2.0, float(np.float32(2e-6))),
        MetricRow(3, 3.0, float(np.float32(3e-6))),
    ]


@pytest.mark.parametrize(
    ("first_step", "last_step", "every", "expected"),
    [
        (None, None, 1, list(range(1, 1001))),
        (250, 260, 1, list(range(250, 261))),
        (95, 105, 1, list(range(95, 106))),  # across a chunk boundary
        (None, 5, 1, [1, 2, 3, 4, 5]),
        (996, None, 1, [996, 997, 998, 999, 1000]),
        (None, None, 100, list(range(100, 1001, 100))),
        (150, 450, 100, [200, 300, 400]),
        (1001, None, 1, []),
        (10, 5, 1, []),
    ],
)
def test_read_metrics_honours_the_step_range_and_every(
    repo: Repository,
    first_step: int | None,
    last_step: int | None,
    every: int,
    expected: list[int],
) -> None:
    run_id = running_run_id(repo)
    for first in range(1, 1001, 100):
        repo.record_chunk(run_id, 1, chunk(first, 100), lease_ttl_s=LEASE_TTL_S)

    rows = repo.read_metrics(run_id, first_step=first_step, last_step=last_step, every=every)

    assert [row.step for row in rows] == expected
    assert all(row.loss == row.step for row in rows)


def test_reading_metrics_of_a_run_without_any_is_empty_and_of_no_run_an_error(
    repo: Repository,
) -> None:
    run = new_run(repo)
    assert repo.read_metrics(run.id) == []
    steps, loss, accuracy = repo.read_metric_arrays(run.id)
    assert (steps.dtype, loss.dtype, accuracy.dtype) == (
        np.dtype(np.int64),
        np.dtype(np.float32),
        np.dtype(np.float32),
    )
    with pytest.raises(RunNotFoundError):
        repo.read_metrics(run.id + 1)


def test_malformed_chunks_and_every_are_refused(repo: Repository) -> None:
    run_id = running_run_id(repo)
    empty = np.zeros(0, np.float32)
    with pytest.raises(InvalidValueError):
        repo.record_chunk(run_id, 1, MetricChunk(1, empty, empty), lease_ttl_s=LEASE_TTL_S)
    with pytest.raises(InvalidValueError):
        repo.record_chunk(
            run_id, 1, MetricChunk(1, np.zeros(3, np.float32), empty), lease_ttl_s=LEASE_TTL_S
        )
    with pytest.raises(InvalidValueError):
        repo.record_chunk(run_id, 1, chunk(0, 3), lease_ttl_s=LEASE_TTL_S)
    with pytest.raises(InvalidValueError):
        repo.read_metrics(run_id, every=0)


def test_record_chunk_renews_the_lease_and_reports_a_cancel(
    repo: Repository, clock: object
) -> None:
    run_id = running_run_id(repo)
    ack = repo.record_chunk(run_id, 1, chunk(1, 10), lease_ttl_s=120)
    assert not ack.cancel_requested
    assert repo.get_run(run_id).lease_expires_at == ack.lease_expires_at
    repo.request_cancel(run_id)
    assert repo.record_chunk(run_id, 1, chunk(11, 10), lease_ttl_s=120).cancel_requested


def test_ten_thousand_steps_in_ten_chunks_read_back_as_one_ordered_row_per_step(
    repo: Repository,
) -> None:
    # How fast this read is belongs to bench/storage_bench.py, not to a timed test.
    run_id = running_run_id(repo)
    rng = np.random.default_rng(1)
    written = []
    for first in range(1, 10_001, 1000):
        values = rng.random(1000, dtype=np.float32)
        written.append(values)
        repo.record_chunk(run_id, 1, MetricChunk(first, values, values), lease_ttl_s=LEASE_TTL_S)

    rows = repo.read_metrics(run_id)

    assert [row.step for row in rows] == list(range(1, 10_001))
    assert np.array_equal(
        np.array([row.loss for row in rows], dtype=np.float32), np.concatenate(written)
    )
