"""Releasing a lease early: a graceful hand-back keeps the attempt, a lost job process spends it;
both are fenced by the holder's attempt and lease owner."""

from __future__ import annotations

import numpy as np
import pytest

from storage import Database, Repository, RunStatus, StaleAttemptError
from storage.errors import InvalidValueError, RunNotFoundError
from tests.storage.support import (
    LEASE_TTL_S,
    WEIGHTS,
    FakeClock,
    chunk,
    claim,
    count_rows,
    new_run,
)


def test_a_handed_back_run_is_queued_again_with_its_attempt_given_back_and_its_lease_cleared(
    repo: Repository,
) -> None:
    run = claim(repo, new_run(repo, max_attempts=1).id, owner="host:1:a")
    repo.mark_published(run.id)

    back = repo.hand_back_run(run.id, run.attempt, owner="host:1:a")

    assert back.status is RunStatus.QUEUED
    assert (back.attempt, back.lease_owner, back.lease_expires_at) == (0, None, None)
    assert back.published_at is None  # the caller publishes it again
    again = repo.claim_run(run.id, owner="host:2:b", worker_host="b", lease_ttl_s=LEASE_TTL_S)
    assert again is not None and again.attempt == 1  # max_attempts=1 still allows this claim


def test_a_hand_back_stores_the_checkpoint_at_the_last_recorded_step_with_the_metrics(
    repo: Repository, db: Database
) -> None:
    run = claim(repo, new_run(repo).id, owner="host:1:a")
    repo.record_chunk(run.id, run.attempt, chunk(1, 30), lease_ttl_s=LEASE_TTL_S)

    repo.hand_back_run(
        run.id, run.attempt, owner="host:1:a", checkpoint=WEIGHTS, checkpoint_step=30
    )

    checkpoint = repo.latest_checkpoint(run.id)
    assert checkpoint is not None and checkpoint.info.step == 30
    assert np.array_equal(checkpoint.arrays["W"], WEIGHTS["W"])
    assert count_rows(db, "checkpoints", run.id) == 1
    assert repo.get_run(run.id).steps_done == 30


def test_a_hand_back_stores_its_checkpoint_at_its_own_step_below_a_lost_attempts_progress(
    repo: Repository, clock: FakeClock
) -> None:
    lost = claim(repo, new_run(repo).id, owner="host:1:a")
    repo.record_chunk(
        lost.id, lost.attempt, chunk(1, 10), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS
    )
    repo.record_chunk(lost.id, lost.attempt, chunk(11, 20), lease_ttl_s=LEASE_TTL_S)
    clock.advance(LEASE_TTL_S + 1)
    resumed = claim(repo, lost.id, owner="host:2:b")  # resumes at 10; steps_done stays 30
    repo.record_chunk(lost.id, resumed.attempt, chunk(11, 10), lease_ttl_s=LEASE_TTL_S)

    repo.hand_back_run(
        lost.id, resumed.attempt, owner="host:2:b", checkpoint=WEIGHTS, checkpoint_step=20
    )

    assert [info.step for info in repo.list_checkpoints(lost.id)] == [10, 20]


def test_a_hand_back_refuses_a_checkpoint_past_the_recorded_steps_and_writes_nothing(
    repo: Repository, db: Database
) -> None:
    run = claim(repo, new_run(repo).id, owner="host:1:a")
    repo.record_chunk(run.id, run.attempt, chunk(1, 10), lease_ttl_s=LEASE_TTL_S)

    with pytest.raises(InvalidValueError):
        repo.hand_back_run(
            run.id, run.attempt, owner="host:1:a", checkpoint=WEIGHTS, checkpoint_step=11
        )

    assert repo.get_run(run.id).status is RunStatus.RUNNING
    assert count_rows(db, "checkpoints", run.id) == 0


def test_a_hand_back_with_a_pending_cancel_ends_the_run_cancelled(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id, owner="host:1:a")
    repo.request_cancel(run.id)

    back = repo.hand_back_run(run.id, run.attempt, owner="host:1:a")

    assert back.status is RunStatus.CANCELLED and back.finished_at is not None


@pytest.mark.parametrize("who", ["another owner", "an older attempt"])
def test_only_the_lease_holder_can_hand_a_run_back_and_a_refused_hand_back_writes_nothing(
    repo: Repository, db: Database, clock: FakeClock, who: str
) -> None:
    run = claim(repo, new_run(repo).id, owner="host:1:a")
    owner, attempt = "host:1:a", run.attempt
    if who == "another owner":
        owner = "host:9:z"
    else:
        clock.advance(LEASE_TTL_S + 1)
        claim(repo, run.id, owner="host:2:b")  # a newer attempt took the expired run over

    with pytest.raises(StaleAttemptError):
        repo.hand_back_run(run.id, attempt, owner=owner, checkpoint=WEIGHTS, checkpoint_step=1)

    assert repo.get_run(run.id).status is RunStatus.RUNNING
    assert count_rows(db, "checkpoints", run.id) == 0


def test_handing_back_twice_returns_the_handed_back_run(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id, owner="host:1:a")
    first = repo.hand_back_run(run.id, run.attempt, owner="host:1:a")

    assert repo.hand_back_run(run.id, run.attempt, owner="host:1:a") == first


def test_a_lost_job_process_releases_its_run_at_once_and_spends_the_attempt(
    repo: Repository,
) -> None:
    run = claim(repo, new_run(repo, max_attempts=3).id, owner="host:1:a")

    released = repo.release_lost_run(run.id, owner="host:1:a")

    assert released is not None and released.status is RunStatus.QUEUED
    assert (released.attempt, released.lease_owner, released.lease_expires_at) == (1, None, None)
    # Its message goes back to the queue now, so the reconciler does not publish another.
    assert released.published_at is not None
    again = claim(repo, run.id, owner="host:1:b")  # claimable before the lease would expire
    assert again.attempt == 2


def test_a_lost_job_process_on_its_last_attempt_fails_the_run(repo: Repository) -> None:
    run = claim(repo, new_run(repo, max_attempts=1).id, owner="host:1:a")

    released = repo.release_lost_run(run.id, owner="host:1:a")

    assert released is not None and released.status is RunStatus.FAILED
    assert released.error is not None and "max_attempts=1" in released.error


def test_a_job_process_the_worker_cancelled_itself_is_released_without_spending_its_attempt(
    repo: Repository,
) -> None:
    # Celery terminates a running job when it loses the broker: not the run's fault.
    run = claim(repo, new_run(repo, max_attempts=1).id, owner="host:1:a")

    released = repo.release_lost_run(run.id, owner="host:1:a", spend_attempt=False)

    assert released is not None and released.status is RunStatus.QUEUED
    assert (released.attempt, released.lease_owner) == (0, None)
    assert [a.outcome.value for a in repo.list_attempts(run.id)] == ["handed back"]
    assert claim(repo, run.id, owner="host:1:b").attempt == 1  # max_attempts=1 still allows it


def test_a_lost_job_process_with_a_pending_cancel_ends_the_run_cancelled(
    repo: Repository,
) -> None:
    run = claim(repo, new_run(repo).id, owner="host:1:a")
    repo.request_cancel(run.id)

    released = repo.release_lost_run(run.id, owner="host:1:a")

    assert released is not None and released.status is RunStatus.CANCELLED


def test_releasing_a_run_the_dead_process_no_longer_holds_changes_nothing(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id, owner="host:1:a")
    clock.advance(LEASE_TTL_S + 1)
    newer = claim(repo, run.id, owner="host:2:b")
    finished = claim(repo, new_run(repo).id, owner="host:1:c")
    repo.finish_run(finished.id, finished.attempt, RunStatus.SUCCEEDED)

    assert repo.release_lost_run(run.id, owner="host:1:a") is None
    assert repo.release_lost_run(finished.id, owner="host:1:c") is None
    assert repo.get_run(run.id) == newer
    assert repo.get_run(finished.id).status is RunStatus.SUCCEEDED


def test_releasing_an_unknown_run_says_so(repo: Repository) -> None:
    with pytest.raises(RunNotFoundError):
        repo.release_lost_run(424242, owner="host:1:a")
