"""What a training job does at each checkpoint beyond storing it: validation, then ASHA.

At every checkpoint of a run with a validation split, its loss and accuracy over the held-out
examples are stored (idempotent per step), in the transaction that stores the chunk and the
checkpoint. When the run is a sweep trial with ASHA and the step is
a rung, the metric goes to ``Repository.decide_rung``, which records it and decides, in one
transaction, whether the trial continues. A pruned trial ends SUCCEEDED with ``pruned: true`` and
``pruned_at_step`` in its summary and its weights at the rung as final weights.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from storage.records import RunRecord, RunStatus
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

    def validate(self, state: TrainingState) -> ValidationResult | None:
        """The validation metrics of the checkpoint ``state`` (None without a validation split).

        The caller stores them with the checkpoint, in the chunk's transaction, then calls
        :meth:`decide`.
        """
        return self._validator.measure(state.arrays) if self._validator is not None else None

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
