"""Sweeps in storage: slots filled under a lock, ASHA decisions taken once, validation rows."""

from __future__ import annotations

from typing import Any

import pytest

from storage import Repository, RunStatus, StaleAttemptError
from storage.errors import SweepNotFoundError
from storage.sweep_records import PlannedTrial, RungDecision, RungEntry, SweepStatus
from tests.storage.support import LEASE_TTL_S, FakeClock, chunk, claim


def planned(n: int) -> list[PlannedTrial]:
    return [
        PlannedTrial(
            params={"lr": 0.1 * (i + 1)},
            config={"learning_rate": 0.1 * (i + 1), "steps": 900},
            seed=7,
            queue="train",
        )
        for i in range(n)
    ]


def new_sweep(repo: Repository, trials: int = 5, max_concurrent: int = 2) -> int:
    sweep = repo.create_sweep(
        name="s",
        spec={"seed": 7},
        trials=planned(trials),
        max_concurrent=max_concurrent,
        max_attempts=3,
    )
    return sweep.id


def finish(repo: Repository, run_id: int, status: RunStatus = RunStatus.SUCCEEDED) -> None:
    run = claim(repo, run_id)
    repo.finish_run(run.id, run.attempt, status)


def test_slots_are_filled_up_to_max_concurrent_in_trial_order(repo: Repository) -> None:
    sweep_id = new_sweep(repo)
    first = repo.fill_slots(sweep_id)
    assert [(run.trial, run.status) for run in first] == [(0, RunStatus.QUEUED), (1, "queued")]
    assert first[0].sweep_id == sweep_id and first[0].config["steps"] == 900
    assert repo.fill_slots(sweep_id) == []  # no slot is free: nothing more


def test_the_transaction_that_ends_a_trial_starts_the_next_one(repo: Repository) -> None:
    sweep_id = new_sweep(repo)
    first, _ = repo.fill_slots(sweep_id)
    finish(repo, first.id)  # no fill_slots call: finish_run itself gives the slot away
    active = repo.list_runs(sweep_id=sweep_id, statuses=[RunStatus.QUEUED])
    assert sorted(run.trial for run in active) == [1, 2]
    assert repo.fill_slots(sweep_id) == []


def test_every_transition_that_ends_a_trial_gives_its_slot_to_the_next(
    repo: Repository, clock: FakeClock
) -> None:
    sweep_id = new_sweep(repo, trials=6, max_concurrent=1)

    def only_active() -> int | None:
        active = repo.list_runs(sweep_id=sweep_id, statuses=[RunStatus.QUEUED, RunStatus.RUNNING])
        assert len(active) == 1
        return active[0].trial

    [run] = repo.fill_slots(sweep_id)
    repo.request_cancel(run.id)  # QUEUED -> CANCELLED
    assert only_active() == 1
    lost = claim(repo, repo.list_runs(sweep_id=sweep_id, statuses=[RunStatus.QUEUED])[0].id)
    repo.request_cancel(lost.id)
    assert repo.release_lost_run(lost.id, owner=str(lost.lease_owner)) is not None  # CANCELLED
    assert only_active() == 2
    expired = claim(repo, repo.list_runs(sweep_id=sweep_id, statuses=[RunStatus.QUEUED])[0].id)
    repo.request_cancel(expired.id)
    clock.advance(LEASE_TTL_S + 1)
    assert repo.requeue_expired(expired.id).status is RunStatus.CANCELLED
    assert only_active() == 3
    handed = claim(repo, repo.list_runs(sweep_id=sweep_id, statuses=[RunStatus.QUEUED])[0].id)
    repo.request_cancel(handed.id)
    back = repo.hand_back_run(handed.id, handed.attempt, owner=str(handed.lease_owner))
    assert back.status is RunStatus.CANCELLED
    assert only_active() == 4


def test_new_trials_are_taken_for_publishing_once_and_requeued_runs_are_left_alone(
    repo: Repository,
) -> None:
    sweep_id = new_sweep(repo, trials=4, max_concurrent=2)
    created = repo.fill_slots(sweep_id)
    assert [run.id for run in repo.take_unpublished_trials(sweep_id)] == [r.id for r in created]
    assert repo.take_unpublished_trials(sweep_id) == []  # a second caller gets none of them
    handed = claim(repo, created[0].id)
    repo.hand_back_run(handed.id, handed.attempt, owner=str(handed.lease_owner))
    assert repo.take_unpublished_trials(sweep_id) == []  # its own worker publishes it again
    finish(repo, created[1].id)
    [new] = repo.take_unpublished_trials(sweep_id)
    assert new.trial == 2 and new.published_at is not None


def test_a_sweep_succeeds_once_every_trial_ended_whatever_the_outcome(repo: Repository) -> None:
    sweep_id = new_sweep(repo, trials=3, max_concurrent=3)
    runs = repo.fill_slots(sweep_id)
    for run, status in zip(
        runs, [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED], strict=True
    ):
        finish(repo, run.id, status)
    sweep = repo.get_sweep(sweep_id)  # the last trial's own finish ended the sweep
    assert sweep.status is SweepStatus.SUCCEEDED and sweep.finished_at is not None
    assert [run.trial for run in repo.list_runs(sweep_id=sweep_id)] == [2, 1, 0]


def test_cancelling_a_sweep_cancels_queued_trials_flags_running_ones_and_starts_none(
    repo: Repository,
) -> None:
    sweep_id = new_sweep(repo)
    running, queued = repo.fill_slots(sweep_id)
    claim(repo, running.id)
    assert repo.cancel_sweep(sweep_id).status is SweepStatus.CANCELLED
    assert repo.get_run(queued.id).status is RunStatus.CANCELLED
    assert repo.get_run(running.id).cancel_requested
    assert repo.fill_slots(sweep_id) == []
    assert len(repo.list_runs(sweep_id=sweep_id)) == 2


def test_an_unknown_sweep_is_reported_with_what_to_do(repo: Repository) -> None:
    with pytest.raises(SweepNotFoundError, match="trainq sweep list"):
        repo.get_sweep(99)


def decide(repo: Repository, sweep_id: int, run: Any, value: float, **kw: Any) -> Any:
    arguments = {
        "sweep_id": sweep_id,
        "rung_step": 100,
        "run_id": run.id,
        "attempt": run.attempt,
        "trial": run.trial,
        "objective": value,
        "maximize": True,
        "reduction_factor": 3,
        "lease_ttl_s": LEASE_TTL_S,
    }
    return repo.decide_rung(**(arguments | kw))


def test_asha_continues_the_top_third_of_the_results_so_far(repo: Repository) -> None:
    sweep_id = new_sweep(repo, trials=6, max_concurrent=6)
    runs = [claim(repo, run.id) for run in repo.fill_slots(sweep_id)]
    values = [0.5, 0.4, 0.3, 0.9, 0.2, 0.6]
    decisions = [
        decide(repo, sweep_id, run, v).continued for run, v in zip(runs, values, strict=True)
    ]
    # n=1, 2: always continue; n=3: 0.3 is 3rd of 3 (top 1 continue); n=4: 0.9 is 1st of 4;
    # n=5: 0.2 last; n=6: 0.6 is 2nd of 6 (top 2 continue).
    assert decisions == [True, True, False, True, False, True]
    results = repo.list_rung_results(sweep_id)
    assert [(r.trial, r.continued) for r in results] == list(enumerate(decisions))


def test_a_packs_trials_are_decided_together_each_among_all_of_them(repo: Repository) -> None:
    sweep_id = new_sweep(repo, trials=8, max_concurrent=8)
    runs = [claim(repo, run.id) for run in repo.fill_slots(sweep_id)]
    decide(repo, sweep_id, runs[0], 0.95)  # recorded before, alone: it ranks with the pack
    values = [0.5, 0.4, 0.3, 0.9, 0.2, 0.6]  # as above, where one by one kept 4 of them
    pack = runs[1:7]
    stale = runs[7]
    entries = [
        RungEntry(run.id, run.attempt, run.trial or 0, v)
        for run, v in zip(pack, values, strict=True)
    ]
    entries.append(RungEntry(stale.id, stale.attempt + 1, stale.trial or 0, 0.99))
    arguments = {"sweep_id": sweep_id, "rung_step": 100, "maximize": True}
    decisions = repo.decide_rungs(
        **arguments, entries=entries, reduction_factor=3, lease_ttl_s=LEASE_TTL_S
    )
    assert isinstance(decisions[-1], StaleAttemptError)  # nothing written for it
    ranked = [d for d in decisions[:-1] if isinstance(d, RungDecision)]
    # 7 results at the rung: the top 2 (0.95 recorded before, then 0.9) continue.
    assert [d.continued for d in ranked] == [False, False, False, True, False, False]
    assert [(d.rank, d.results_at_rung) for d in ranked][3] == (2, 7)
    results = repo.list_rung_results(sweep_id)
    assert [r.run_id for r in results] == [runs[0].id, *(run.id for run in pack)]
    # Again (a resumed pack): the same decisions, taken before, nothing written twice.
    again = repo.decide_rungs(
        **arguments, entries=entries[:-1], reduction_factor=3, lease_ttl_s=LEASE_TTL_S
    )
    assert [(d.continued, d.first_time) for d in again if isinstance(d, RungDecision)] == [
        (d.continued, False) for d in ranked
    ]
    assert len(repo.list_rung_results(sweep_id)) == 7


def test_a_rung_decision_is_taken_once_even_when_the_trial_reports_again(
    repo: Repository,
) -> None:
    sweep_id = new_sweep(repo, trials=4, max_concurrent=4)
    runs = [claim(repo, run.id) for run in repo.fill_slots(sweep_id)]
    for run, value in zip(runs[:3], [0.9, 0.8, 0.7], strict=True):
        decide(repo, sweep_id, run, value)
    again = decide(repo, sweep_id, runs[2], 0.99)  # a resumed attempt, a different value
    assert (again.continued, again.first_time) == (False, False)
    assert len(repo.list_rung_results(sweep_id)) == 3


def test_a_superseded_attempt_cannot_record_a_rung_result(repo: Repository) -> None:
    sweep_id = new_sweep(repo, trials=1, max_concurrent=1)
    [run] = repo.fill_slots(sweep_id)
    old = claim(repo, run.id)
    with pytest.raises(StaleAttemptError):
        decide(repo, sweep_id, old, 0.5, attempt=old.attempt + 1)
    assert repo.list_rung_results(sweep_id) == []


def test_validation_metrics_are_kept_once_per_checkpoint(repo: Repository) -> None:
    sweep_id = new_sweep(repo, trials=1, max_concurrent=1)
    [run] = repo.fill_slots(sweep_id)
    repo.record_validation(run.id, 100, 0.7, 0.8)
    repo.record_validation(run.id, 100, 0.1, 0.9)  # a resumed attempt: the first row stays
    repo.record_validation(run.id, 200, float("nan"), 0.85)
    rows = repo.list_validation(run.id)
    assert [(r.step, r.accuracy) for r in rows] == [(100, 0.8), (200, 0.85)]
    assert rows[1].loss != rows[1].loss  # NaN came back as NaN


def test_a_checkpoints_validation_metrics_are_stored_in_the_chunks_own_transaction(
    repo: Repository,
) -> None:
    sweep_id = new_sweep(repo, trials=1, max_concurrent=1)
    [run] = repo.fill_slots(sweep_id)
    run = claim(repo, run.id)
    repo.record_chunk(
        run.id, run.attempt, chunk(1, 100), lease_ttl_s=LEASE_TTL_S, validation=(0.6, 0.8)
    )
    with pytest.raises(StaleAttemptError):  # a superseded attempt stores nothing at all
        repo.record_chunk(
            run.id, run.attempt + 1, chunk(101, 100), lease_ttl_s=LEASE_TTL_S, validation=(1, 0)
        )
    assert [(r.step, r.loss, r.accuracy) for r in repo.list_validation(run.id)] == [
        (100, pytest.approx(0.6), pytest.approx(0.8))
    ]
