"""How a packed trial's job takes its pack-mates: claimed up front, down the whole list.

Two workers forming packs at once must each fill theirs with what the other did not take; the
job's own trial, taken by another pack meanwhile, makes its job a no-op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage import Database, Repository, RunRecord, RunStatus, Settings
from worker.jobs import JobContext
from worker.pack_job import execute_training
from worker.sweep_file import parse_sweep_text
from worker.sweep_runner import run_sweep_here
from worker.sweeps import submit_sweep

SWEEP = """
name: claims
method: grid
seed: 3
max_concurrent: 8
pack: 3
parameters:
  lr:    {values: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08]}
  steps: {value: 100}
"""


class RacingRepository(Repository):
    """The real repository, where another worker claims ``taken`` right after this job listed
    the QUEUED trials, before it claims any: the interleaving of two packs forming at once."""

    taken: tuple[int, ...] = ()

    def list_runs(self, *args: Any, **kwargs: Any) -> list[RunRecord]:
        listed = super().list_runs(*args, **kwargs)
        if kwargs.get("statuses") == [RunStatus.QUEUED] and self.taken:
            for run_id in self.taken:
                assert self.claim_run(
                    run_id, owner="other:1:x", worker_host="other", lease_ttl_s=60
                )
            self.taken = ()
        return listed


def repository_with_sweep(tmp_path: Path) -> tuple[RacingRepository, list[int]]:
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.ensure_schema(auto_upgrade=True)
    repository = RacingRepository(database)
    sweep = submit_sweep(repository, parse_sweep_text(SWEEP), max_attempts=3)
    repository.fill_slots(sweep.id)
    runs = sorted(repository.list_runs(sweep_id=sweep.id), key=lambda r: r.trial or 0)
    assert [run.status for run in runs] == [RunStatus.QUEUED] * 8
    return repository, [run.id for run in runs]


def context(repository: Repository, tmp_path: Path, label: str) -> JobContext:
    settings = Settings.from_env({"TRAINQ_HOME": str(tmp_path)})
    return JobContext.for_this_process(repository, settings, label)


def test_a_pack_fills_itself_past_the_trials_another_pack_took(tmp_path: Path) -> None:
    repository, ids = repository_with_sweep(tmp_path)
    repository.taken = (ids[1], ids[2], ids[4])  # another worker's pack, forming at the same time
    outcome = execute_training(context(repository, tmp_path, "this-worker"), ids[0])
    assert outcome.run is not None and outcome.run.status is RunStatus.SUCCEEDED
    # Trials 1, 2 and 4 were listed, then taken: the pack of 3 went on down the list to 3 and 5
    # (it used to claim the first two listed only, and train alone).
    assert [mate.id for mate in outcome.mates] == [ids[3], ids[5]]
    assert outcome.run.train_summary is not None
    assert set(outcome.run.train_summary.packed_with) == {ids[3], ids[5]}
    assert [repository.get_run(i).status for i in (ids[6], ids[7])] == [RunStatus.QUEUED] * 2


def test_a_job_whose_trial_another_pack_took_is_a_no_op(tmp_path: Path) -> None:
    repository, ids = repository_with_sweep(tmp_path)
    other = context(repository, tmp_path, "other-worker")
    assert repository.claim_run(ids[0], owner=other.owner, worker_host=other.host, lease_ttl_s=60)
    outcome = execute_training(context(repository, tmp_path, "this-worker"), ids[0])
    assert outcome.run is None and outcome.mates == ()
    # Nothing else was claimed for a pack that never formed.
    queued = repository.list_runs(statuses=[RunStatus.QUEUED])
    assert sorted(run.id for run in queued) == ids[1:]


class CountingRepository(Repository):
    """The real repository, counting the claims tried."""

    claims = 0

    def claim_run(self, *args: Any, **kwargs: Any) -> RunRecord | None:
        self.claims += 1
        return super().claim_run(*args, **kwargs)


def test_an_embedded_sweep_claims_each_trial_once_never_again_after_its_pack(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.ensure_schema(auto_upgrade=True)
    repository = CountingRepository(database)
    sweep = submit_sweep(repository, parse_sweep_text(SWEEP), max_attempts=3)
    ended = run_sweep_here(context(repository, tmp_path, "embedded"), sweep.id)
    assert ended.status.value == "succeeded"
    runs = repository.list_runs(sweep_id=sweep.id)
    assert len(runs) == 8 and all(run.attempt == 1 for run in runs)
    # Packs of 3, 3 and 2: one claim per trial. The loop used to try each pack-mate again
    # after its pack had trained it (a no-op claim each: 13 in all).
    assert repository.claims == 8
