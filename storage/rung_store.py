"""ASHA rung results: a trial's metric at a rung and its continue/stop decision, in one write.

Stopping-based ASHA (Li et al., MLSys 2020): a trial reaching a rung continues only if its metric
ranks in the top ``floor(n / eta)`` of the ``n`` results recorded at that rung so far, itself
included (and always while ``n < eta``). The sweep row is locked first, so decisions at a rung are
taken one at a time and each sees every earlier one; the result row is keyed by
``(sweep, rung, run)``, so a trial resumed from its checkpoint gets its first decision back.

The trials of one pack reach a rung together: :meth:`RungStore.decide_rungs` records all their
results in one transaction, each ranked among the results recorded before *and all of its
pack's*, so a pack of ``n`` keeps its best ``floor(n / eta)`` whatever its seat order (deciding
them one by one would keep every early seat: the first ``eta - 1`` always continue, and each
next one whenever it beats the few seats before it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import InvalidValueError, StaleAttemptError
from storage.models import RungResultRow
from storage.record_mapping import rung_result_to_record
from storage.repository_base import RepositoryBase, fenced_renewal
from storage.sweep_records import RungDecision, RungEntry, RungResult
from storage.trial_slots import load_sweep


class RungStore(RepositoryBase):
    """Deciding and listing ASHA rung results."""

    def decide_rung(
        self,
        *,
        sweep_id: int,
        rung_step: int,
        run_id: int,
        attempt: int,
        trial: int,
        objective: float,
        maximize: bool,
        reduction_factor: int,
        lease_ttl_s: float,
    ) -> RungDecision:
        """Record ``run_id``'s ``objective`` at ``rung_step`` and decide whether it continues.

        Runs in one transaction fenced on ``attempt`` (which it also renews the lease of). Ties
        rank the lower trial number first, so decisions never depend on timing of equal values.

        Raises:
            StaleAttemptError: ``attempt`` no longer owns the run; nothing was written.
            InvalidValueError: ``objective`` is not finite, or ``reduction_factor < 2``.
            NotFoundError: no such sweep or run.
        """
        [decision] = self.decide_rungs(
            sweep_id=sweep_id,
            rung_step=rung_step,
            entries=[RungEntry(run_id, attempt, trial, objective)],
            maximize=maximize,
            reduction_factor=reduction_factor,
            lease_ttl_s=lease_ttl_s,
        )
        if isinstance(decision, StaleAttemptError):
            raise decision
        return decision

    def decide_rungs(
        self,
        *,
        sweep_id: int,
        rung_step: int,
        entries: Sequence[RungEntry],
        maximize: bool,
        reduction_factor: int,
        lease_ttl_s: float,
    ) -> list[RungDecision | StaleAttemptError]:
        """Record the results of several trials (a pack) at ``rung_step`` and decide each, in
        one transaction: each trial is ranked among the results recorded before and all of
        ``entries`` (see the module). Rows are written in ``entries``' order.

        Returns:
            For each entry, in order, its decision (its earlier one when it was decided before),
            or the StaleAttemptError of an attempt that no longer owns its run (nothing
            written for it; the others are decided without it).

        Raises:
            InvalidValueError: an objective is not finite, or ``reduction_factor < 2``.
            NotFoundError: no such sweep.
        """
        for entry in entries:
            _check(entry.objective, reduction_factor)
        lease_end = self._lease_end_sql(lease_ttl_s)

        def decide(session: Session) -> list[RungDecision | StaleAttemptError]:
            load_sweep(session, sweep_id, for_update=True)  # lock order: sweep, then runs
            outcomes: list[RungDecision | StaleAttemptError | None] = []
            for entry in entries:
                try:
                    fenced_renewal(session, entry.run_id, entry.attempt, lease_end)
                except StaleAttemptError as stale:
                    outcomes.append(stale)
                else:
                    outcomes.append(None)
            now = self._server_now(session)
            recorded = {
                run_id: (objective, trial, continued)
                for run_id, objective, trial, continued in session.execute(
                    select(
                        RungResultRow.run_id,
                        RungResultRow.objective,
                        RungResultRow.trial,
                        RungResultRow.continued,
                    ).where(
                        RungResultRow.sweep_id == sweep_id, RungResultRow.rung_step == rung_step
                    )
                )
            }
            fresh = [
                entry
                for entry, outcome in zip(entries, outcomes, strict=True)
                if outcome is None and entry.run_id not in recorded
            ]
            pool = [(objective, trial) for objective, trial, _ in recorded.values()]
            pool += [(entry.objective, entry.trial) for entry in fresh]
            decided: dict[int, RungDecision] = {}
            for entry in fresh:
                others = list(pool)
                others.remove((entry.objective, entry.trial))
                decision = _ranked(entry.objective, entry.trial, others, maximize, reduction_factor)
                decided[entry.run_id] = decision
                session.add(
                    RungResultRow(
                        sweep_id=sweep_id,
                        rung_step=rung_step,
                        run_id=entry.run_id,
                        trial=entry.trial,
                        objective=float(entry.objective),
                        continued=decision.continued,
                        created_at=now,
                    )
                )
            results: list[RungDecision | StaleAttemptError] = []
            for entry, outcome in zip(entries, outcomes, strict=True):
                if outcome is not None:
                    results.append(outcome)
                elif entry.run_id in decided:
                    results.append(decided[entry.run_id])
                else:
                    continued = recorded[entry.run_id][2]
                    results.append(RungDecision(continued, 0, len(pool), first_time=False))
            return results

        # Not retried: a retry after a lost commit would report first_time=False (harmless, but
        # the caller logs it); the decisions themselves are the stored rows either way.
        return self._db.run(decide)

    def list_rung_results(self, sweep_id: int) -> list[RungResult]:
        """Every rung result of a sweep, by rung then time of decision."""
        statement = (
            select(RungResultRow)
            .where(RungResultRow.sweep_id == sweep_id)
            .order_by(RungResultRow.rung_step, RungResultRow.created_at, RungResultRow.trial)
        )

        def read(session: Session) -> list[RungResult]:
            return [rung_result_to_record(row) for row in session.scalars(statement)]

        return self._db.run(read, readonly=True, idempotent=True)


def _check(objective: float, reduction_factor: int) -> None:
    if not math.isfinite(objective):
        raise InvalidValueError(f"rung objective {objective!r} must be finite")
    if reduction_factor < 2:
        raise InvalidValueError(f"reduction_factor {reduction_factor} must be at least 2")


def _ranked(
    objective: float,
    trial: int,
    others: Sequence[tuple[float, int]],
    maximize: bool,
    reduction_factor: int,
) -> RungDecision:
    """The decision for ``objective`` among the ``others``' (objective, trial) at its rung: ties
    rank the lower trial number first, so decisions never depend on the timing of equal values."""
    sign = 1.0 if maximize else -1.0
    ahead = sum(
        1
        for value, other_trial in others
        if sign * value > sign * objective or (value == objective and other_trial < trial)
    )
    n, rank = len(others) + 1, ahead + 1
    continued = n < reduction_factor or rank <= n // reduction_factor
    return RungDecision(continued, rank, n, first_time=True)
