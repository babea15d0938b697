"""ASHA in a pack: the seats that reach a rung together are decided together, before any stores.

A pack's seats reach each step at once. Decided one by one in seat order, as trials alone are,
the first ``eta - 1`` seats at a rung always continue and each next one continues whenever it
beats the few seats decided before it: on the issue's 64-trial sweep 32 of 64 trials passed the
first rung and 17 of 20 the last. Decided together, each ranked among the results recorded
before and all of its pack's, a pack of ``n`` keeps its best ``floor(n / eta)``, whatever its
seat order.

The pack calls :meth:`RungCohort.before_delivery` with every seat's checkpoint at a chunk's end,
before it hands any seat its chunk. The cohort validates the seats for which the step is a rung
and records all their decisions in one transaction (``Repository.decide_rungs``); each seat's job
then stores its chunk with that validation and reads its decision (``CheckpointHooks.decide``).
So a kill leaves the pack's decisions at a rung all recorded or none: either every trial resumes
before the rung and the pack decides again on the same numbers, or each finds its decision.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from storage import Repository

if TYPE_CHECKING:
    from worker.training import TrainingState
    from worker.trial_hooks import CheckpointHooks

logger = logging.getLogger(__name__)


class RungCohort:
    """The rung decisions of one pack's trials (see the module)."""

    def __init__(self, repository: Repository, lease_ttl_s: float) -> None:
        self._repository = repository
        self._lease_ttl_s = lease_ttl_s
        self._hooks: dict[int, CheckpointHooks] = {}
        self._lock = threading.Lock()  # joins come from the seats' threads

    def join(self, run_id: int, hooks: CheckpointHooks) -> None:
        """``run_id``'s job trains in this pack, with ``hooks`` deciding its rungs."""
        with self._lock:
            self._hooks[run_id] = hooks

    def before_delivery(self, step: int, states: Mapping[int, TrainingState]) -> None:
        """Decide the seats at rung ``step`` together: ``states`` by run id, in seat order.

        Never raises: when the transaction fails, each seat decides alone after storing its
        chunk, as a trial alone does, and meets the error there if it lasts.
        """
        with self._lock:
            hooks = [
                (self._hooks[run_id], state)
                for run_id, state in states.items()
                if run_id in self._hooks
            ]
        try:
            at_rung = []
            for seat_hooks, state in hooks:
                entry = seat_hooks.rung_entry(state)
                if entry is not None:
                    at_rung.append((seat_hooks, entry))
            if not at_rung:
                return
            rule = at_rung[0][0].rung_rule
            assert rule is not None  # a rung entry means ASHA
            sweep_id, maximize, reduction_factor = rule
            decisions = self._repository.decide_rungs(
                sweep_id=sweep_id,
                rung_step=step,
                entries=[entry for _, entry in at_rung],
                maximize=maximize,
                reduction_factor=reduction_factor,
                lease_ttl_s=self._lease_ttl_s,
            )
        except Exception as error:  # the seats decide alone; a lasting error meets them there
            logger.warning(
                "rung %s: the pack's decisions were not recorded together: %s", step, error
            )
            return
        for (seat_hooks, _), decision in zip(at_rung, decisions, strict=True):
            seat_hooks.decided_in_pack(step, decision)
