"""Retention: a finished run's checkpoints are thinned to its newest (and its best), never a
running or queued run's, never the final weights nor one a pending evaluation will read."""

from __future__ import annotations

import numpy as np
import pytest

from storage import InvalidStateError, Repository, RunNotFoundError, RunStatus
from storage.retention_records import CheckpointKeep
from tests.storage.support import (
    LEASE_TTL_S,
    WEIGHTS,
    FakeClock,
    chunk,
    claim,
    new_eval_job,
    new_run,
)

#: Validation accuracy at each checkpoint: the best is at step 200, not the last.
VALIDATION = {100: 0.70, 200: 0.86, 300: 0.84, 400: 0.85}


def trained(repo: Repository, *, finish: RunStatus | None = RunStatus.SUCCEEDED) -> int:
    """A run with checkpoints at 100..400 and validation at each, finished in ``finish``."""
    run = claim(repo, new_run(repo, config={"steps": 400}).id)
    for step, accuracy in VALIDATION.items():
        repo.record_chunk(
            run.id,
            1,
            chunk(step - 99, 100),
            lease_ttl_s=LEASE_TTL_S,
            checkpoint=WEIGHTS,
            validation=(1.0 - accuracy, accuracy),
        )
    if finish is not None:
        repo.finish_run(run.id, 1, finish, summary={}, final_weights=WEIGHTS)
    return run.id


def steps_of(repo: Repository, run_id: int) -> list[int]:
    return [info.step for info in repo.list_checkpoints(run_id)]


def test_last_keeps_only_the_final_weights_and_says_what_it_freed(repo: Repository) -> None:
    run_id = trained(repo)
    sizes = {info.step: info.size_bytes for info in repo.list_checkpoints(run_id)}

    thinned = repo.thin_checkpoints(run_id, keep=CheckpointKeep.LAST)

    assert steps_of(repo, run_id) == [400]
    assert thinned.kept_steps == (400,)
    assert thinned.removed_steps == (100, 200, 300)
    assert thinned.freed_bytes == sizes[100] + sizes[200] + sizes[300]
    assert repo.latest_checkpoint(run_id) is not None  # the final weights still verify


def test_best_also_keeps_the_checkpoint_with_the_best_validation_accuracy(
    repo: Repository,
) -> None:
    run_id = trained(repo)

    thinned = repo.thin_checkpoints(run_id, keep=CheckpointKeep.BEST)

    assert steps_of(repo, run_id) == [200, 400]
    assert thinned.removed_steps == (100, 300)


def test_best_without_a_validation_split_keeps_the_last(repo: Repository) -> None:
    run = claim(repo, new_run(repo).id)
    for first in (1, 101):
        repo.record_chunk(run.id, 1, chunk(first, 100), lease_ttl_s=LEASE_TTL_S, checkpoint=WEIGHTS)
    repo.finish_run(run.id, 1, RunStatus.FAILED, error="boom")

    assert repo.thin_checkpoints(run.id, keep=CheckpointKeep.BEST).kept_steps == (200,)
    assert steps_of(repo, run.id) == [200]


def test_all_and_a_dry_run_remove_nothing(repo: Repository) -> None:
    run_id = trained(repo)

    assert repo.thin_checkpoints(run_id, keep=CheckpointKeep.ALL).removed == 0
    dry = repo.thin_checkpoints(run_id, keep=CheckpointKeep.LAST, dry_run=True)

    assert dry.removed_steps == (100, 200, 300) and dry.freed_bytes > 0
    assert steps_of(repo, run_id) == [100, 200, 300, 400]


@pytest.mark.parametrize("finish", [None, "queued"], ids=["running", "queued"])
def test_a_run_that_may_still_resume_keeps_every_checkpoint(
    repo: Repository, finish: str | None
) -> None:
    run_id = trained(repo, finish=None)
    if finish == "queued":
        repo.hand_back_run(run_id, 1, owner="worker-1")

    with pytest.raises(InvalidStateError, match="only the checkpoints of finished runs"):
        repo.thin_checkpoints(run_id, keep=CheckpointKeep.LAST)

    assert steps_of(repo, run_id) == [100, 200, 300, 400]
    assert run_id not in repo.runs_to_thin()


def test_a_checkpoint_a_queued_evaluation_will_read_is_kept(repo: Repository) -> None:
    run_id = trained(repo)
    new_eval_job(repo, run_id, checkpoint_step=100)

    assert repo.thin_checkpoints(run_id, keep=CheckpointKeep.LAST).kept_steps == (100, 400)


def test_runs_to_thin_are_finished_runs_with_spare_checkpoints_old_enough(
    repo: Repository, clock: FakeClock
) -> None:
    old = trained(repo, finish=RunStatus.CANCELLED)
    clock.advance(10 * 86_400)
    recent = trained(repo)
    running = trained(repo, finish=None)
    single = claim(repo, new_run(repo).id)
    repo.finish_run(single.id, 1, RunStatus.SUCCEEDED, summary={}, final_weights=WEIGHTS)
    clock.advance(86_400)

    assert repo.runs_to_thin() == [old, recent]
    assert repo.runs_to_thin(older_than_s=5 * 86_400) == [old]
    assert running not in repo.runs_to_thin(older_than_s=0)
    repo.thin_checkpoints(old, keep=CheckpointKeep.LAST)
    assert repo.runs_to_thin() == [recent]


def test_thinning_an_unknown_run_says_so(repo: Repository) -> None:
    with pytest.raises(RunNotFoundError):
        repo.thin_checkpoints(999, keep=CheckpointKeep.LAST)


def test_the_final_weights_stay_bit_identical(repo: Repository) -> None:
    run_id = trained(repo)
    before = repo.get_checkpoint(run_id, 400).arrays

    repo.thin_checkpoints(run_id, keep=CheckpointKeep.LAST)

    after = repo.get_checkpoint(run_id, 400).arrays
    assert all(np.array_equal(before[name], after[name]) for name in before)
