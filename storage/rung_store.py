"""ASHA rung results: a trial's metric at a rung and its continue/stop decision, in one write.

Stopping-based ASHA (Li et al., MLSys 2020): a trial reaching a rung continues only if its metric
ranks in the top ``floor(n / eta)`` of the ``n`` results recorded at that rung so far, itself
included (and always while ``n < eta``). The sweep row is locked first, so decisions at a rung are
taken one at a time and each sees every earlier one; the result row is keyed by
``(sweep, rung, run)``, so a trial resumed from its checkpoint gets its first decision back.
"""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import InvalidValueError
from storage.models import RungResultRow
from storage.record_mapping import rung_result_to_record
from storage.repository_base import RepositoryBase, fenced_renewal
from storage.sweep_records import RungDecision, RungResult
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
        if not math.isfinite(objective):
            raise InvalidValueError(f"rung objective {objective!r} must be finite")
        if reduction_factor < 2:
            raise InvalidValueError(f"reduction_factor {reduction_factor} must be at least 2")
        lease_end = self._lease_end_sql(lease_ttl_s)

        def decide(session: Session) -> RungDecision:
            load_sweep(session, sweep_id, for_update=True)  # lock order: sweep, then run
            fenced_renewal(session, run_id, attempt, lease_end)
            now = self._server_now(session)
            earlier = session.get(
                RungResultRow, (sweep_id, rung_step, run_id), populate_existing=True
            )
            others = session.execute(
                select(RungResultRow.objective, RungResultRow.trial).where(
                    RungResultRow.sweep_id == sweep_id,
                    RungResultRow.rung_step == rung_step,
                    RungResultRow.run_id != run_id,
                )
            ).all()
            if earlier is not None:
                return RungDecision(earlier.continued, 0, len(others) + 1, first_time=False)
            sign = 1.0 if maximize else -1.0
            ahead = sum(
                1
                for value, other_trial in others
                if sign * value > sign * objective or (value == objective and other_trial < trial)
            )
            n, rank = len(others) + 1, ahead + 1
            continued = n < reduction_factor or rank <= n // reduction_factor
            session.add(
                RungResultRow(
                    sweep_id=sweep_id,
                    rung_step=rung_step,
                    run_id=run_id,
                    trial=trial,
                    objective=float(objective),
                    continued=continued,
                    created_at=now,
                )
            )
            return RungDecision(continued, rank, n, first_time=True)

        # Not retried: a retry after a lost commit would report first_time=False (harmless, but
        # the caller logs it); the decision itself is the stored row either way.
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
