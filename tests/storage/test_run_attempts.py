"""The attempt history: every claim opens an attempt, every transition that ends one closes it
with its outcome, in the same transaction, and repeating a transition adds nothing."""

from __future__ import annotations

import pytest

from storage import AttemptOutcome, Repository, RunStatus
from storage.errors import RunNotFoundError
from tests.storage.support import LEASE_TTL_S, FakeClock, chunk, claim, new_run


def test_a_claim_opens_attempt_1_on_the_claiming_worker(repo: Repository, clock: FakeClock) -> None:
    run = claim(repo, new_run(repo).id, owner="host-a:1:x")

    [attempt] = repo.list_attempts(run.id)

    assert (attempt.number, attempt.attempt, attempt.worker_host) == (1, 1, "host-a")
    assert (attempt.lease_owner, attempt.started_at, attempt.steps_at_start) == (
        "host-a:1:x",
        clock(),
        0,
    )
    assert (attempt.ended_at, attempt.outcome, attempt.duration_s) == (None, None, None)


def test_finishing_closes_the_attempt_succeeded_and_a_repeated_finish_adds_nothing(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, run.attempt, chunk(1, 10), lease_ttl_s=LEASE_TTL_S)
    clock.advance(12.5)

    repo.finish_run(run.id, run.attempt, RunStatus.SUCCEEDED, device="CPU:0")
    repo.finish_run(run.id, run.attempt, RunStatus.SUCCEEDED, device="GPU:0")

    [attempt] = repo.list_attempts(run.id)
    assert (attempt.outcome, attempt.device, attempt.duration_s) == (
        AttemptOutcome.SUCCEEDED,
        "CPU:0",
        12.5,
    )
    assert (attempt.steps_at_start, attempt.steps_at_end) == (0, 10)


def test_a_failed_run_keeps_its_error_on_the_attempt(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)

    repo.finish_run(run.id, run.attempt, RunStatus.FAILED, error="loss diverged at step 3")

    [attempt] = repo.list_attempts(run.id)
    assert (attempt.outcome, attempt.error) == (AttemptOutcome.FAILED, "loss diverged at step 3")


def test_a_lost_worker_s_attempt_is_closed_lost_when_requeued_and_attempt_2_opens(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id)
    clock.advance(LEASE_TTL_S + 1)
    repo.requeue_expired(run.id)
    repo.requeue_expired(run.id)  # a second reconciler pass changes nothing

    repo.claim_run(run.id, owner="w2", worker_host="host-b", lease_ttl_s=LEASE_TTL_S)

    first, second = repo.list_attempts(run.id)
    assert (first.attempt, first.worker_host, first.outcome) == (1, "host-a", AttemptOutcome.LOST)
    assert first.ended_at == clock()
    assert (second.attempt, second.worker_host, second.outcome) == (2, "host-b", None)


def test_a_dead_job_process_s_attempt_is_closed_lost(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id, owner="host-a:9:d")

    repo.release_lost_run(run.id, owner="host-a:9:d")

    [attempt] = repo.list_attempts(run.id)
    assert attempt.outcome is AttemptOutcome.LOST


def test_a_hand_back_closes_the_attempt_handed_back_and_the_next_claim_reuses_its_number(
    repo: Repository,
) -> None:
    run = claim(repo, new_run(repo).id, owner="host-a:1:x")
    repo.hand_back_run(run.id, run.attempt, owner="host-a:1:x")
    repo.hand_back_run(run.id, run.attempt, owner="host-a:1:x")  # a retry adds nothing

    claim(repo, run.id, owner="host-a:2:y")

    first, second = repo.list_attempts(run.id)
    assert (first.number, first.attempt, first.outcome) == (1, 1, AttemptOutcome.HANDED_BACK)
    assert (second.number, second.attempt, second.outcome) == (2, 1, None)


def test_a_hand_back_with_a_pending_cancel_closes_the_attempt_cancelled(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id, owner="host-a:1:x")
    repo.request_cancel(run.id)

    repo.hand_back_run(run.id, run.attempt, owner="host-a:1:x")

    [attempt] = repo.list_attempts(run.id)
    assert attempt.outcome is AttemptOutcome.CANCELLED


def test_a_run_never_claimed_has_no_attempts_and_an_unknown_run_is_an_error(
    repo: Repository,
) -> None:
    assert repo.list_attempts(new_run(repo).id) == []
    with pytest.raises(RunNotFoundError):
        repo.list_attempts(999)


def test_evaluation_jobs_record_no_attempts(repo: Repository) -> None:
    run = new_run(repo)
    job = repo.create_evaluation_job(
        run_id=run.id, checkpoint_step=1, split="test", queue="eval", max_attempts=1
    )

    repo.claim_evaluation_job(job.id, owner="w", worker_host="h", lease_ttl_s=LEASE_TTL_S)

    assert repo.list_attempts(run.id) == []


def test_a_claim_of_an_expired_run_before_any_requeue_closes_the_taken_over_attempt_lost(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id)
    clock.advance(LEASE_TTL_S + 1)

    repo.claim_run(run.id, owner="w2", worker_host="host-b", lease_ttl_s=LEASE_TTL_S)

    first, second = repo.list_attempts(run.id)
    assert (first.outcome, first.ended_at) == (AttemptOutcome.LOST, clock())
    assert (second.attempt, second.outcome) == (2, None)
