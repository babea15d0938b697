"""Claims and fencing: one owner per run, and a stale attempt can never write."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from storage import (
    Database,
    Repository,
    RunRecord,
    RunStatus,
    StaleAttemptError,
)
from tests.storage.support import (
    LEASE_TTL_S,
    WEIGHTS,
    FakeClock,
    chunk,
    claim,
    count_rows,
    execute_sql,
    new_run,
)


def test_a_claim_makes_the_run_running_under_a_lease_at_attempt_one(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id, owner="host-a:123")
    assert run.status is RunStatus.RUNNING
    assert run.attempt == 1
    assert run.lease_owner == "host-a:123"
    assert run.worker_host == "host-a"
    assert run.started_at == clock.now


def test_a_second_claim_of_a_run_under_a_live_lease_gets_nothing(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    assert repo.claim_run(run.id, owner="w2", worker_host="h", lease_ttl_s=LEASE_TTL_S) is None
    assert repo.get_run(run.id).attempt == 1


def test_an_expired_lease_is_claimed_again_with_the_next_attempt(
    repo: Repository, clock: FakeClock
) -> None:
    first = claim(repo, new_run(repo).id, owner="w1")
    started_at = first.started_at
    clock.advance(LEASE_TTL_S + 1)

    second = claim(repo, first.id, owner="w2")

    assert second.attempt == 2
    assert second.lease_owner == "w2"
    assert second.started_at == started_at  # the run's start is its first attempt's


def test_the_old_attempt_is_fenced_off_once_a_new_attempt_claimed_the_run(
    db: Database, repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.record_chunk(run.id, 1, chunk(1, 10), lease_ttl_s=LEASE_TTL_S)
    clock.advance(LEASE_TTL_S + 1)
    claim(repo, run.id, owner="w2")

    zombie_writes: list[Callable[[], object]] = [
        lambda: repo.record_chunk(run.id, 1, chunk(11, 10), lease_ttl_s=LEASE_TTL_S),
        lambda: repo.record_chunk(
            run.id, 1, chunk(21, 10), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS
        ),
        lambda: repo.renew_lease(run.id, 1, LEASE_TTL_S),
        lambda: repo.finish_run(run.id, 1, RunStatus.SUCCEEDED, final_weights=WEIGHTS),
    ]
    for write in zombie_writes:
        with pytest.raises(StaleAttemptError, match="attempt 1 no longer owns"):
            write()

    stored = repo.get_run(run.id)
    assert (stored.status, stored.attempt, stored.steps_done, stored.device) == (
        RunStatus.RUNNING,
        2,
        10,
        None,
    )
    assert count_rows(db, "metric_chunks", run.id) == 1
    assert count_rows(db, "checkpoints", run.id) == 0


def test_writes_to_a_finished_run_are_refused_even_from_its_own_attempt(
    repo: Repository,
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.finish_run(run.id, run.attempt, RunStatus.SUCCEEDED)
    with pytest.raises(StaleAttemptError):
        repo.record_chunk(run.id, run.attempt, chunk(1, 5), lease_ttl_s=LEASE_TTL_S)
    with pytest.raises(StaleAttemptError):
        repo.finish_run(run.id, run.attempt, RunStatus.FAILED, error="late")


def test_a_run_out_of_attempts_cannot_be_claimed(repo: Repository, clock: FakeClock) -> None:
    run = new_run(repo, max_attempts=2)
    claim(repo, run.id)
    clock.advance(LEASE_TTL_S + 1)
    claim(repo, run.id)
    clock.advance(LEASE_TTL_S + 1)
    assert repo.claim_run(run.id, owner="w3", worker_host="h", lease_ttl_s=LEASE_TTL_S) is None
    assert repo.get_run(run.id).attempt == 2


def test_a_run_with_a_pending_cancel_cannot_be_claimed_again(
    repo: Repository, clock: FakeClock
) -> None:
    run = claim(repo, new_run(repo).id)
    repo.request_cancel(run.id)
    clock.advance(LEASE_TTL_S + 1)
    assert repo.claim_run(run.id, owner="w2", worker_host="h", lease_ttl_s=LEASE_TTL_S) is None


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED])
def test_a_finished_run_cannot_be_claimed(repo: Repository, status: RunStatus) -> None:
    run = claim(repo, new_run(repo).id)
    repo.finish_run(run.id, run.attempt, status)
    assert repo.claim_run(run.id, owner="w2", worker_host="h", lease_ttl_s=LEASE_TTL_S) is None


def test_of_many_concurrent_claims_of_one_run_exactly_one_wins(db: Database) -> None:
    repo = Repository(db)
    contenders = 4
    runs = [new_run(repo) for _ in range(15)]
    barrier = threading.Barrier(contenders)

    def contend(run_id: int, index: int) -> RunRecord | None:
        barrier.wait()
        return repo.claim_run(
            run_id, owner=f"worker-{index}", worker_host="h", lease_ttl_s=LEASE_TTL_S
        )

    with ThreadPoolExecutor(max_workers=contenders) as pool:
        for run in runs:
            results = list(pool.map(contend, [run.id] * contenders, range(contenders)))
            winners = [result for result in results if result is not None]
            assert len(winners) == 1
            assert winners[0].attempt == 1
            assert repo.get_run(run.id).lease_owner == winners[0].lease_owner


def test_a_zombie_writing_while_its_run_is_taken_over_writes_nothing_after_the_takeover(
    db: Database, clock: FakeClock
) -> None:
    # The zombie's clock is frozen, so every lease it renews expires at the same moment; the
    # takeover happens just after that moment while the zombie keeps writing.
    zombie_repo = Repository(db, clock=clock)
    run = claim(zombie_repo, new_run(zombie_repo).id)
    refused: list[StaleAttemptError] = []

    def zombie() -> None:
        first_step = 1
        while first_step < 100_000:
            try:
                zombie_repo.record_chunk(run.id, 1, chunk(first_step, 10), lease_ttl_s=LEASE_TTL_S)
            except StaleAttemptError as error:
                refused.append(error)
                return
            first_step += 10

    thread = threading.Thread(target=zombie)
    thread.start()
    try:
        while execute_sql(db, "SELECT COUNT(*) FROM metric_chunks")[0][0] < 5:
            pass
        takeover = Repository(db).claim_run(
            run.id,
            owner="w2",
            worker_host="h",
            lease_ttl_s=LEASE_TTL_S,
            now=clock.now + timedelta(seconds=LEASE_TTL_S + 1),
        )
    finally:
        thread.join(timeout=60)
    assert takeover is not None
    assert refused, "the zombie was never refused"
    last_stored = execute_sql(
        db, "SELECT MAX(first_step + n_steps - 1) FROM metric_chunks WHERE run_id = ?", (run.id,)
    )[0][0]
    assert last_stored == takeover.steps_done
    assert Repository(db).get_run(run.id).steps_done == takeover.steps_done
