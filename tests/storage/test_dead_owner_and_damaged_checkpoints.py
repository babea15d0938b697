"""Taking over from a dead owner, and healing damaged checkpoints (handing a run back is in
test_run_release.py)."""

from __future__ import annotations

import numpy as np
import pytest

from storage import Database, Repository, RunStatus, WeightsCorruptError
from tests.storage.support import (
    LEASE_TTL_S,
    WEIGHTS,
    FakeClock,
    chunk,
    claim,
    execute_sql,
    new_run,
)


def test_the_lease_of_a_dead_owner_ends_now_and_the_run_is_requeued_at_once(
    repo: Repository,
) -> None:
    run = claim(repo, new_run(repo).id)
    assert repo.requeue_expired(run.id).status is RunStatus.RUNNING  # lease still valid

    assert repo.expire_lease(run.id, run.attempt)

    requeued = repo.requeue_expired(run.id)
    assert requeued.status is RunStatus.QUEUED and requeued.max_attempts == 3


def test_the_lease_of_an_attempt_that_lost_the_run_is_left_alone(
    repo: Repository, clock: FakeClock
) -> None:
    old = claim(repo, new_run(repo).id)
    clock.advance(LEASE_TTL_S + 1)
    new = claim(repo, old.id, owner="worker-2")

    assert not repo.expire_lease(old.id, old.attempt)
    assert repo.get_run(old.id).lease_expires_at == new.lease_expires_at


def test_a_corrupt_checkpoint_is_replaced_when_its_step_is_recomputed(
    db: Database, repo: Repository
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS)
    blob = bytearray(execute_sql(db, "SELECT weights FROM checkpoints")[0][0])
    blob[len(blob) // 2] ^= 0xFF
    execute_sql(db, "UPDATE checkpoints SET weights = ?", (bytes(blob),))
    with pytest.raises(WeightsCorruptError):
        repo.get_checkpoint(run.id, 100)

    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS)

    restored = repo.get_checkpoint(run.id, 100)
    np.testing.assert_array_equal(restored.arrays["W"], WEIGHTS["W"])


def test_an_intact_checkpoint_is_never_overwritten(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS)
    other = {"W": np.zeros((784, 10), np.float32), "b": np.ones(10, np.float32)}

    repo.record_chunk(run.id, 1, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=other)

    np.testing.assert_array_equal(repo.get_checkpoint(run.id, 100).arrays["W"], WEIGHTS["W"])
