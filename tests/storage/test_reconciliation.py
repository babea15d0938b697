"""Reconciler support: lost messages are found again, dead workers' runs move on."""

from __future__ import annotations

from datetime import timedelta

from storage import JobKind, Repository, RunStatus
from tests.storage.support import LEASE_TTL_S, FakeClock, claim, claim_eval, new_eval_job, new_run

REDISPATCH_AFTER_S = 120.0


def redispatch_ids(repo: Repository) -> list[int]:
    return [run.id for run in repo.runs_to_redispatch(redispatch_after_s=REDISPATCH_AFTER_S)]


def test_a_queued_run_never_published_is_redispatched_once_it_is_old_enough(
    repo: Repository, clock: FakeClock
) -> None:
    run = new_run(repo)
    assert redispatch_ids(repo) == []  # the CLI is about to publish it itself
    clock.advance(REDISPATCH_AFTER_S + 1)
    assert redispatch_ids(repo) == [run.id]


def test_a_queued_run_published_long_ago_is_redispatched_and_a_recent_one_is_not(
    repo: Repository, clock: FakeClock
) -> None:
    stale, fresh = new_run(repo), new_run(repo)
    repo.mark_published(stale.id)
    clock.advance(REDISPATCH_AFTER_S + 1)
    repo.mark_published(fresh.id)
    assert redispatch_ids(repo) == [stale.id]


def test_a_running_run_is_redispatched_only_after_its_lease_expired(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id)
    clock.advance(LEASE_TTL_S - 1)
    assert redispatch_ids(repo) == []
    clock.advance(2)
    assert redispatch_ids(repo) == [run.id]


def test_finished_runs_are_never_redispatched(repo: Repository, clock: FakeClock) -> None:
    run = claim(repo, new_run(repo).id)
    repo.finish_run(run.id, run.attempt, RunStatus.SUCCEEDED)
    repo.request_cancel(new_run(repo).id)
    clock.advance(REDISPATCH_AFTER_S * 10)
    assert redispatch_ids(repo) == []


def test_eval_jobs_are_redispatched_like_training_runs(repo: Repository, clock: FakeClock) -> None:
    run = new_run(repo)
    repo.mark_published(run.id)
    job = new_eval_job(repo, run.id)
    clock.advance(REDISPATCH_AFTER_S + 1)
    found = repo.runs_to_redispatch(redispatch_after_s=REDISPATCH_AFTER_S)
    assert [(found_job.kind, found_job.id) for found_job in found] == [
        (JobKind.TRAIN, run.id),
        (JobKind.EVAL, job.id),
    ]


def test_an_eval_job_whose_worker_died_goes_back_to_the_queue_then_fails_out_of_attempts(
    repo: Repository, clock: FakeClock
) -> None:
    job = new_eval_job(repo, new_run(repo).id, max_attempts=2)
    for attempt in (1, 2):
        assert claim_eval(repo, job.id, owner=f"w{attempt}").attempt == attempt
        clock.advance(LEASE_TTL_S + 1)
        moved = repo.requeue_expired(job.id, kind=JobKind.EVAL)
    assert moved.status is RunStatus.FAILED
    assert moved.error is not None and "worker lost 2 times" in moved.error
    assert repo.get_evaluation_job(job.id).status is RunStatus.FAILED


def test_an_expired_run_with_attempts_left_goes_back_to_the_queue(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.mark_published(run.id)
    clock.advance(LEASE_TTL_S + 1)

    requeued = repo.requeue_expired(run.id)

    assert requeued.status is RunStatus.QUEUED
    assert requeued.attempt == 1
    assert (requeued.lease_owner, requeued.lease_expires_at, requeued.published_at) == (
        None,
        None,
        None,
    )
    again = claim(repo, run.id, owner="w2")
    assert again.attempt == 2


def test_an_expired_run_out_of_attempts_fails_naming_the_last_host(
    repo: Repository, clock: FakeClock
) -> None:
    run = new_run(repo, max_attempts=2)
    for _ in range(2):
        claim(repo, run.id)
        clock.advance(LEASE_TTL_S + 1)

    failed = repo.requeue_expired(run.id)

    assert failed.status is RunStatus.FAILED
    assert failed.error == "worker lost 2 times (max_attempts=2); last host host-a"
    assert failed.finished_at == clock.now
    assert failed.lease_expires_at is None
    assert redispatch_ids(repo) == []


def test_an_expired_run_with_a_pending_cancel_ends_cancelled(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.request_cancel(run.id)
    clock.advance(LEASE_TTL_S + 1)
    assert repo.requeue_expired(run.id).status is RunStatus.CANCELLED


def test_requeue_leaves_a_run_with_a_live_lease_or_another_status_alone(
    repo: Repository, clock: FakeClock
) -> None:
    running = claim(repo, new_run(repo).id)
    queued = new_run(repo)
    assert repo.requeue_expired(running.id) == repo.get_run(running.id)
    assert repo.requeue_expired(queued.id) == queued


def test_requeue_is_a_no_op_when_a_worker_renewed_the_lease_meanwhile(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id)
    candidates = repo.runs_to_redispatch(
        redispatch_after_s=REDISPATCH_AFTER_S, now=clock.now + timedelta(seconds=LEASE_TTL_S + 1)
    )
    assert [candidate.id for candidate in candidates] == [run.id]
    repo.renew_lease(run.id, run.attempt, LEASE_TTL_S)  # the worker was only slow
    assert repo.requeue_expired(run.id).status is RunStatus.RUNNING
