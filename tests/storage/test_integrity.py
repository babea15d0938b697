"""`check_database` finds damaged weight blobs and metric chunks on both backends."""

from __future__ import annotations

import pytest

from storage import Database, Repository, RunStatus
from storage.integrity import check_database
from tests.storage.support import LEASE_TTL_S, WEIGHTS, chunk, claim, execute_sql, new_run


def stored_run(repo: Repository) -> int:
    """A finished run: two chunks, a checkpoint at 100 and final weights at 200."""
    run = claim(repo, new_run(repo, config={"steps": 200}).id)
    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS)
    repo.record_chunk(run.id, 1, chunk(101, 100), lease_ttl_s=LEASE_TTL_S)
    repo.finish_run(run.id, 1, RunStatus.SUCCEEDED, final_weights=WEIGHTS)
    return run.id


def test_a_sound_database_is_healthy_and_everything_was_checked(
    db: Database, repo: Repository
) -> None:
    stored_run(repo)

    report = check_database(db)

    assert report.healthy, report.problems
    assert report.weights_checked == 2 and report.metric_chunks_checked == 2
    assert report.file_check in ("ok", "not applicable (PostgreSQL checks its own pages)")


def test_a_flipped_byte_in_the_final_weights_is_reported_as_a_checksum_mismatch(
    db: Database, repo: Repository
) -> None:
    run_id = stored_run(repo)
    blob = bytearray(execute_sql(db, "SELECT weights FROM checkpoints WHERE step = 200")[0][0])
    blob[100] ^= 0x01
    execute_sql(db, "UPDATE checkpoints SET weights = ? WHERE step = 200", (bytes(blob),))

    report = check_database(db)

    [problem] = report.problems
    assert (problem.what, problem.run_id, problem.step) == ("weights", run_id, 200)
    assert problem.detail.startswith("final weights: checksum mismatch")


def test_a_truncated_metric_chunk_is_reported_with_its_steps(
    db: Database, repo: Repository
) -> None:
    run_id = stored_run(repo)
    loss = bytes(execute_sql(db, "SELECT loss FROM metric_chunks WHERE first_step = 101")[0][0])
    execute_sql(db, "UPDATE metric_chunks SET loss = ? WHERE first_step = 101", (loss[:-4],))

    report = check_database(db)

    [problem] = report.problems
    assert (problem.what, problem.run_id, problem.step) == ("metrics", run_id, 101)
    assert "metrics of steps 101..200: 396 bytes of loss" in problem.detail


# Only SQLite can hold TEXT in a blob column (PostgreSQL's bytea refuses it).
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_a_checkpoint_stored_as_text_is_reported_with_how_to_store_it_as_a_blob_again(
    db: Database, repo: Repository
) -> None:
    run_id = stored_run(repo)
    execute_sql(db, "UPDATE checkpoints SET weights = CAST(weights AS TEXT) WHERE step = 100")
    execute_sql(db, "UPDATE checkpoints SET weights = CAST(X'00FF' AS TEXT) WHERE step = 200")
    execute_sql(db, "UPDATE metric_chunks SET loss = CAST(loss AS TEXT)")

    report = check_database(db)

    intact, damaged = report.problems  # the metric chunks' bytes are whole: no problem
    assert (intact.run_id, intact.step, damaged.run_id, damaged.step) == (run_id, 100, run_id, 200)
    assert intact.detail.startswith(
        "checkpoint at step 100: stored as TEXT, not as a BLOB (edited outside trainq?); its "
        "bytes still match its checksum, so trainq reads it."
    )
    assert "UPDATE checkpoints SET weights = CAST(weights AS BLOB)" in intact.detail
    assert damaged.detail.startswith(
        "final weights: stored as TEXT, not as a BLOB (edited outside trainq?); the blob is 2 "
        "bytes but was stored as"
    )
