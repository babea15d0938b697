"""What a sweep looks like now: its trials, rungs, best trial and steps against the budget.

Read-only, over the repository's records; shared by ``trainq sweep show/best/plot`` and any other
reader (no TensorFlow, no CLI). A trial's objective is its validation metric at its newest
checkpoint, i.e. of the weights it ends with (at its rung for a pruned trial), so the best trial's
exported weights are the ones that scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage import Repository
from storage.records import RunRecord, RunStatus
from storage.sweep_records import RungResult, SweepRecord, ValidationMetric
from worker.sweep_spec import Objective, SweepSpec, parse_sweep_spec


@dataclass(frozen=True)
class TrialView:
    """One trial as ``sweep show`` lists it."""

    trial: int
    run_id: int | None  # None while not started
    status: str  # the run's status, or "planned"
    params: dict[str, Any]
    steps: int  # the trial's configured steps
    steps_done: int
    objective: float | None  # validation metric at the newest checkpoint
    rung_reached: int | None  # the highest rung step it recorded a result at
    pruned: bool
    curve: tuple[ValidationMetric, ...]  # every checkpoint's validation metrics


@dataclass(frozen=True)
class RungView:
    """One ASHA rung: how many results, how many continued, and the cut-off to continue now."""

    step: int
    results: int
    continued: int
    cutoff: float | None  # the floor(n/eta)-th best value; None while n < eta


@dataclass(frozen=True)
class SweepReport:
    """Everything ``trainq sweep show`` prints."""

    sweep: SweepRecord
    spec: SweepSpec
    trials: tuple[TrialView, ...]
    rungs: tuple[RungView, ...]
    best: TrialView | None
    steps_trained: int
    steps_budget: int

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-safe data (``sweep show --format json``)."""
        best = self.best
        return {
            "id": self.sweep.id,
            "name": self.sweep.name,
            "status": self.sweep.status.value,
            "metric": self.spec.objective.value,
            "goal": self.spec.goal.value,
            "pack": self.spec.pack,
            "best_run_id": best.run_id if best else None,
            "best_objective": best.objective if best else None,
            "best_params": best.params if best else None,
            "steps_trained": self.steps_trained,
            "steps_budget": self.steps_budget,
            "rungs": [vars(rung) for rung in self.rungs],
            "trials": [_trial_json(trial) for trial in self.trials],
            "spec": self.sweep.spec,
            "created_at": self.sweep.created_at.isoformat(),
            "finished_at": self.sweep.finished_at.isoformat() if self.sweep.finished_at else None,
        }


def sweep_report(repository: Repository, sweep_id: int) -> SweepReport:
    """Read a sweep's state.

    Raises:
        SweepNotFoundError: no sweep has this id.
    """
    sweep = repository.get_sweep(sweep_id)
    spec = parse_sweep_spec(sweep.spec)
    # Archived trials too: a sweep is read whole, archived with its trials or not.
    runs = {run.id: run for run in repository.list_runs(sweep_id=sweep_id, archived=None)}
    results = repository.list_rung_results(sweep_id)
    trials = tuple(
        _trial_view(repository, spec, planned.trial, planned.params, planned.config, run, results)
        for planned in repository.list_sweep_trials(sweep_id)
        for run in [runs.get(planned.run_id) if planned.run_id is not None else None]
    )
    scored = [t for t in trials if t.objective is not None and t.status != "failed"]
    sign = 1.0 if spec.maximize else -1.0
    best = max(scored, key=lambda t: (sign * (t.objective or 0.0), -t.trial), default=None)
    return SweepReport(
        sweep=sweep,
        spec=spec,
        trials=trials,
        rungs=_rungs(spec, results),
        best=best,
        steps_trained=sum(t.steps_done for t in trials),
        steps_budget=sum(t.steps for t in trials),
    )


def _trial_view(
    repository: Repository,
    spec: SweepSpec,
    trial: int,
    params: dict[str, Any],
    config: dict[str, Any],
    run: RunRecord | None,
    results: list[RungResult],
) -> TrialView:
    curve = tuple(repository.list_validation(run.id)) if run is not None else ()
    objective = None
    if curve:
        newest = curve[-1]
        objective = newest.accuracy if spec.objective is Objective.VAL_ACCURACY else newest.loss
    rungs = [r.rung_step for r in results if run is not None and r.run_id == run.id]
    summary = run.train_summary if run is not None else None
    return TrialView(
        trial=trial,
        run_id=run.id if run is not None else None,
        status=run.status.value if run is not None else "planned",
        params=params,
        steps=int(config.get("steps", 0)),
        steps_done=run.steps_done if run is not None else 0,
        objective=objective,
        rung_reached=max(rungs, default=None),
        pruned=summary is not None and summary.pruned,
        curve=curve,
    )


def _rungs(spec: SweepSpec, results: list[RungResult]) -> tuple[RungView, ...]:
    if spec.asha is None:
        return ()
    eta = spec.asha.reduction_factor
    views = []
    for step in sorted({r.rung_step for r in results}):
        at_rung = [r for r in results if r.rung_step == step]
        ordered = sorted(
            at_rung, key=lambda r: (-r.objective if spec.maximize else r.objective, r.trial)
        )
        keep = len(ordered) // eta
        views.append(
            RungView(
                step=step,
                results=len(ordered),
                continued=sum(r.continued for r in at_rung),
                cutoff=ordered[keep - 1].objective if keep >= 1 else None,
            )
        )
    return tuple(views)


def _trial_json(trial: TrialView) -> dict[str, Any]:
    return {
        "trial": trial.trial,
        "run_id": trial.run_id,
        "status": trial.status,
        "params": trial.params,
        "steps": trial.steps,
        "steps_done": trial.steps_done,
        "objective": trial.objective,
        "rung_reached": trial.rung_reached,
        "pruned": trial.pruned,
    }


def is_finished(status: str) -> bool:
    """True for a trial status that will not change (a run's terminal status)."""
    return status != "planned" and RunStatus(status).terminal
