"""What a training job does at each checkpoint beyond storing it: validation, then ASHA.

At every checkpoint of a run with a validation split, its loss and accuracy over the held-out
examples are stored (idempotent per step), in the transaction that stores the chunk and the
checkpoint. When the run is a sweep trial with ASHA and the step is
a rung, the metric goes to ``Repository.decide_rung``, which records it and decides, in one
transaction, whether the trial continues. A pruned trial ends SUCCEEDED with ``pruned: true`` and
``pruned_at_step`` in its summary and its weights at the rung as final weights.

A trial in a pack is decided with its pack-mates instead (``worker.rung_cohort``): before any
seat's chunk at the rung is stored, the pack validates every seat there and
``Repository.decide_rungs`` records all their decisions in one transaction; :meth:`decide` then
hands each seat its own. So a kill leaves either every decision of the pack at that rung or
none, and the trials resumed from the rung's checkpoints find theirs.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from storage.errors import StaleAttemptError
from storage.records import RunRecord, RunStatus
from storage.sweep_records import RungDecision, RungEntry
from worker.config import TrainConfig
from worker.sweep_spec import Objective, SweepSpec, parse_sweep_spec
from worker.validation import ValidationResult, Validator

if TYPE_CHECKING:
    from worker.jobs import JobContext
    from worker.training import TrainingState, TrainResult
    from worker.training_data import TrainingData

logger = logging.getLogger(__name__)


class CheckpointHooks:
    """Validation and rung decisions of one attempt of one training run."""

    def __init__(
        self, context: JobContext, run: RunRecord, config: TrainConfig, data: TrainingData
    ) -> None:
        self._context = context
        self._run = run
        self._validator = Validator(data, config) if config.val_size else None
        self._spec: SweepSpec | None = None
        self._rungs: set[int] = set()
        if run.sweep_id is not None:
            sweep = context.repository.get_sweep(run.sweep_id)
            self._spec = parse_sweep_spec(sweep.spec)
            if self._spec.asha is not None:
                self._rungs = set(self._spec.asha.rungs(config.steps))
        self.pruned_at_step: int | None = None
        # At a rung, what the pack measured and decided for this trial (worker.rung_cohort).
        self._measured: dict[int, ValidationResult] = {}
        self._decided: dict[int, RungDecision | StaleAttemptError] = {}
        if context.rung_cohort is not None:
            context.rung_cohort.join(run.id, self)

    def validate(self, state: TrainingState) -> ValidationResult | None:
        """The validation metrics of the checkpoint ``state`` (None without a validation split).

        The caller stores them with the checkpoint, in the chunk's transaction, then calls
        :meth:`decide`.
        """
        measured = self._measured.pop(state.step, None)
        if measured is not None:
            return measured
        return self._validator.measure(state.arrays) if self._validator is not None else None

    def rung_entry(self, state: TrainingState) -> RungEntry | None:
        """This trial's result at ``state``'s step when it is one of its rungs (None otherwise),
        for its pack to decide with its mates'; its validation is kept for :meth:`validate`."""
        if self._spec is None or self._spec.asha is None or state.step not in self._rungs:
            return None
        result = self.validate(state)
        if result is None:
            return None
        self._measured[state.step] = result
        value = result.accuracy if self._spec.objective is Objective.VAL_ACCURACY else result.loss
        return RungEntry(self._run.id, self._run.attempt, self._run.trial or 0, value)

    def decided_in_pack(self, step: int, decision: RungDecision | StaleAttemptError) -> None:
        """The decision its pack took for this trial at rung ``step``, for :meth:`decide`."""
        self._decided[step] = decision

    @property
    def rung_rule(self) -> tuple[int, bool, int] | None:
        """The sweep, whether its objective is maximized and ASHA's reduction factor (None
        without ASHA)."""
        if self._spec is None or self._spec.asha is None:
            return None
        return self._spec_sweep_id, self._spec.maximize, self._spec.asha.reduction_factor

    def at_checkpoint(self, state: TrainingState) -> bool:
        """Store the validation metrics of ``state`` on their own, then :meth:`decide` (for a
        checkpoint stored before: the one a trial resumes from)."""
        result = self.validate(state)
        if result is None:
            return False
        repository = self._context.repository
        repository.record_validation(self._run.id, state.step, result.loss, result.accuracy)
        return self.decide(state, result)

    def decide(self, state: TrainingState, result: ValidationResult | None) -> bool:
        """At a rung, record the trial's metric and decide; True when the trial must stop."""
        if result is None or self._spec is None or self._spec.asha is None:
            return False
        if state.step not in self._rungs:
            return False
        repository = self._context.repository
        value = result.accuracy if self._spec.objective is Objective.VAL_ACCURACY else result.loss
        decision = self._decided.pop(state.step, None)
        if isinstance(decision, StaleAttemptError):
            raise decision
        if decision is None:
            decision = repository.decide_rung(
                sweep_id=self._spec_sweep_id,
                rung_step=state.step,
                run_id=self._run.id,
                attempt=self._run.attempt,
                trial=self._run.trial or 0,
                objective=value,
                maximize=self._spec.maximize,
                reduction_factor=self._spec.asha.reduction_factor,
                lease_ttl_s=self._context.settings.lease_ttl_s,
            )
        logger.info(
            "run %s: rung %s, %s %.4f ranks %s of %s: %s",
            self._run.id,
            state.step,
            self._spec.objective.value,
            value,
            decision.rank or "(decided before)",
            decision.results_at_rung,
            "continues" if decision.continued else "pruned",
        )
        if not decision.continued:
            self.pruned_at_step = state.step
        return not decision.continued

    @property
    def _spec_sweep_id(self) -> int:
        assert self._run.sweep_id is not None  # only called for trials
        return self._run.sweep_id

    def finish_pruned(
        self, state: TrainingState, result: TrainResult | None, *, wall_s: float
    ) -> RunRecord:
        """End the trial SUCCEEDED, marked pruned, with ``state``'s weights as final weights."""
        from worker.run_summary import summarize, summarize_stopped

        repository = self._context.repository
        summary = (
            summarize(repository, self._run.id, result, wall_s=wall_s)
            if result is not None
            else summarize_stopped(repository, self._run.id, state.step, wall_s=wall_s)
        )
        summary = dataclasses.replace(summary, pruned=True, pruned_at_step=self.pruned_at_step)
        return repository.finish_run(
            self._run.id,
            self._run.attempt,
            RunStatus.SUCCEEDED,
            summary=summary.to_json(),
            final_weights=state.arrays,
            device=result.device if result is not None else None,
        )
