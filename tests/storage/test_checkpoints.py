"""Checkpoints: stored with chunks or at the end, listed without blobs, verified on every read."""

from __future__ import annotations

import numpy as np
import pytest

from storage import (
    CheckpointNotFoundError,
    Database,
    Repository,
    RunNotFoundError,
    RunStatus,
    WeightsChecksumError,
    WeightsCorruptError,
    sha256_hex,
)
from tests.storage.support import (
    LEASE_TTL_S,
    WEIGHTS,
    FakeClock,
    chunk,
    claim,
    execute_sql,
    new_run,
)


def weights_at(step: int) -> dict[str, np.ndarray]:
    return {"W": np.full((784, 10), step, np.float32), "b": np.arange(10, dtype=np.float32)}


def test_checkpoints_written_with_chunks_are_listed_oldest_first_without_blobs(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id)
    for first in (1, 101, 201):
        repo.record_chunk(
            run.id, 1, chunk(first, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=weights_at(first + 99)
        )

    infos = repo.list_checkpoints(run.id)

    assert [info.step for info in infos] == [100, 200, 300]
    assert all(info.created_at == clock.now for info in infos)
    assert infos[0].size_bytes > 784 * 10 * 4
    assert len(infos[0].sha256) == 64


def test_latest_checkpoint_is_the_newest_with_its_exact_arrays(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    for first in (1, 101):
        repo.record_chunk(
            run.id, 1, chunk(first, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=weights_at(first + 99)
        )

    latest = repo.latest_checkpoint(run.id)

    assert latest is not None
    assert latest.info.step == 200
    np.testing.assert_array_equal(latest.arrays["W"], weights_at(200)["W"])
    np.testing.assert_array_equal(latest.arrays["b"], weights_at(200)["b"])


def test_a_run_without_checkpoints_has_no_latest_and_none_at_a_step(repo: Repository) -> None:
    run = new_run(repo)
    assert repo.latest_checkpoint(run.id) is None
    assert repo.list_checkpoints(run.id) == []
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint at step 100"):
        repo.get_checkpoint(run.id, 100)
    with pytest.raises(RunNotFoundError):
        repo.latest_checkpoint(run.id + 1)
    with pytest.raises(RunNotFoundError):
        repo.list_checkpoints(run.id + 1)


def test_a_missing_step_names_the_steps_that_exist(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS)
    with pytest.raises(CheckpointNotFoundError, match="steps: 100"):
        repo.get_checkpoint(run.id, 150)


def test_final_weights_are_stored_at_the_last_step(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, 1, chunk(1, 250), lease_ttl_s=LEASE_TTL_S)
    repo.finish_run(run.id, 1, RunStatus.SUCCEEDED, final_weights=weights_at(250))

    final = repo.get_checkpoint(run.id, 250)

    np.testing.assert_array_equal(final.arrays["W"], weights_at(250)["W"])


def test_final_weights_keep_the_checkpoint_already_written_at_that_step(
    repo: Repository,
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=weights_at(100))
    repo.finish_run(run.id, 1, RunStatus.SUCCEEDED, final_weights=weights_at(100))
    assert [info.step for info in repo.list_checkpoints(run.id)] == [100]


def test_a_corrupted_blob_in_the_database_is_detected_on_read(
    db: Database, repo: Repository
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS)
    blob = bytearray(execute_sql(db, "SELECT weights FROM checkpoints")[0][0])
    blob[len(blob) // 2] ^= 0xFF
    execute_sql(db, "UPDATE checkpoints SET weights = ?", (bytes(blob),))

    with pytest.raises(WeightsChecksumError, match=f"run {run.id}, checkpoint at step 100"):
        repo.get_checkpoint(run.id, 100)
    with pytest.raises(WeightsCorruptError):
        repo.latest_checkpoint(run.id)


def test_a_blob_truncated_in_the_database_is_detected_even_with_a_matching_checksum(
    db: Database, repo: Repository
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS)
    blob = bytes(execute_sql(db, "SELECT weights FROM checkpoints")[0][0])[:-4]
    execute_sql(db, "UPDATE checkpoints SET weights = ?, sha256 = ?", (blob, sha256_hex(blob)))

    with pytest.raises(WeightsCorruptError, match="truncated"):
        repo.get_checkpoint(run.id, 100)


def stored_as_text(db: Database, column: str, *, keep_bytes: int | None = None) -> str:
    """SQL that turns a blob column into TEXT on SQLite (all its bytes, or the first
    ``keep_bytes``); PostgreSQL's BYTEA cannot hold text, so there the bytes are cut instead."""
    if db.dialect_name == "postgresql":
        assert keep_bytes is not None, "PostgreSQL keeps a bytea's bytes: nothing to damage"
        return f"substring({column} from 1 for {keep_bytes})"
    part = column if keep_bytes is None else f"substr({column}, 1, {keep_bytes})"
    return f"CAST({part} AS TEXT)"


# Only SQLite can hold TEXT in a blob column (PostgreSQL's bytea refuses it).
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_a_checkpoint_and_a_metric_chunk_edited_into_text_read_back_their_own_bytes(
    db: Database, repo: Repository
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS)
    execute_sql(db, f"UPDATE checkpoints SET weights = {stored_as_text(db, 'weights')}")
    execute_sql(db, f"UPDATE metric_chunks SET loss = {stored_as_text(db, 'loss')}")
    assert execute_sql(db, "SELECT typeof(weights) FROM checkpoints") == [("text",)]

    latest = repo.latest_checkpoint(run.id)

    assert latest is not None
    for name, array in WEIGHTS.items():
        np.testing.assert_array_equal(latest.arrays[name], array)
    assert [row.loss for row in repo.read_metrics(run.id)] == list(range(1, 101))


def test_a_checkpoint_replaced_by_part_of_itself_as_text_is_a_corrupt_checkpoint(
    db: Database, repo: Repository
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS)
    damaged = stored_as_text(db, "weights", keep_bytes=1000)
    execute_sql(db, f"UPDATE checkpoints SET weights = {damaged}")

    with pytest.raises(WeightsChecksumError, match="checkpoint at step 100: weight blob checksum"):
        repo.get_checkpoint(run.id, 100)
