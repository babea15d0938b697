"""Moving a run through its states: create, publish, claim, lease, finish, fail, cancel.

Every transition is one conditional UPDATE whose WHERE clause states the transition's
precondition; RETURNING says whether it happened. That makes each transition race-safe on both
backends without a read first. Writes of a worker are fenced by its attempt number.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, literal, or_, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningUpdate

from storage.checkpoint_store import store_checkpoint
from storage.column_types import UTCDateTime
from storage.errors import InvalidStateError, StaleAttemptError
from storage.models import Run
from storage.record_mapping import check_finite_json, json_safe, run_to_record
from storage.records import ChunkAck, JobKind, RunRecord, RunStatus
from storage.repository_base import (
    RepositoryBase,
    fenced_touch,
    fenced_update,
    lease_expiry,
    load_run,
)
from storage.validation import check_max_attempts, check_name, check_seed, check_tags

if TYPE_CHECKING:
    import numpy as np

_QUEUED = RunStatus.QUEUED.value
_RUNNING = RunStatus.RUNNING.value


class RunLifecycle(RepositoryBase):
    """State transitions of runs (training and evaluation jobs alike)."""

    def create_run(
        self,
        *,
        kind: JobKind,
        config: dict[str, Any],
        seed: int,
        queue: str,
        max_attempts: int,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RunRecord:
        """Insert a QUEUED job at attempt 0. Publish it to the broker only after this returns.

        Raises:
            InvalidValueError: NaN/inf in the config, or a seed, ``max_attempts``, name or tag
                outside the limits of ``storage.validation``.
        """
        check_finite_json(config, "config")
        check_seed(seed)
        check_max_attempts(max_attempts)
        check_name(name)
        checked_tags = check_tags(tags or {})
        now = self._now()

        def insert(session: Session) -> RunRecord:
            row = Run(
                kind=JobKind(kind).value,
                name=name,
                status=_QUEUED,
                config=dict(config),
                seed=seed,
                queue=queue,
                attempt=0,
                max_attempts=max_attempts,
                cancel_requested=False,
                steps_done=0,
                created_at=now,
                tags=checked_tags,
            )
            session.add(row)
            session.flush()
            return run_to_record(row)

        # Not retried: after a lost commit a retry would insert the run twice.
        return self._db.run(insert)

    def mark_published(self, run_id: int) -> None:
        """Record that the job's message was just handed to the broker.

        Raises:
            RunNotFoundError: no run has this id.
        """
        now = self._now()

        def publish(session: Session) -> None:
            statement = update(Run).where(Run.id == run_id).values(published_at=now)
            if session.execute(statement.returning(Run.id)).first() is None:
                load_run(session, run_id)

        self._db.run(publish, idempotent=True)

    def claim_run(
        self,
        run_id: int,
        *,
        owner: str,
        worker_host: str,
        lease_ttl_s: float,
        now: datetime | None = None,
    ) -> RunRecord | None:
        """Take the run for a new attempt, if it is free to take.

        Claimable: QUEUED, or RUNNING with an expired lease; not cancel-requested; attempts left.
        The claim is one conditional UPDATE, so of two racing claims exactly one wins.

        Returns:
            The run as claimed (RUNNING, ``attempt`` incremented: the fencing token every later
            write must carry), or ``None`` when it cannot be claimed now.

        Raises:
            RunNotFoundError: no run has this id.
        """
        now = self._now(now)
        statement = _claim_statement(
            run_id, owner, worker_host, now, lease_expiry(now, lease_ttl_s)
        )

        def claim(session: Session) -> RunRecord | None:
            row = session.scalars(statement).one_or_none()
            if row is None:
                load_run(session, run_id)  # RunNotFoundError for a bad id
                return None
            return run_to_record(row)

        # Not retried: a retry after a lost commit would see its own claim as taken.
        return self._db.run(claim)

    def renew_lease(self, run_id: int, attempt: int, lease_ttl_s: float) -> ChunkAck:
        """Extend the lease of ``attempt`` by ``lease_ttl_s`` from now.

        Raises:
            StaleAttemptError: ``attempt`` no longer owns the run.
        """
        expires = lease_expiry(self._now(), lease_ttl_s)

        def renew(session: Session) -> ChunkAck:
            cancel_requested = fenced_touch(session, run_id, attempt, {"lease_expires_at": expires})
            return ChunkAck(cancel_requested=cancel_requested, lease_expires_at=expires)

        return self._db.run(renew, idempotent=True)

    def finish_run(
        self,
        run_id: int,
        attempt: int,
        status: RunStatus,
        *,
        summary: dict[str, Any] | None = None,
        error: str | None = None,
        final_weights: Mapping[str, np.ndarray] | None = None,
        device: str | None = None,
    ) -> RunRecord:
        """End ``attempt``'s run in a terminal status, in one fenced transaction.

        ``final_weights`` become the checkpoint at ``steps_done`` (kept if one is already there).
        Non-finite floats in ``summary`` are stored as ``null`` (JSON has no NaN). Repeating the
        call after it committed returns the finished run (so a retry is harmless).

        Raises:
            InvalidStateError: ``status`` is not terminal.
            StaleAttemptError: ``attempt`` no longer owns the run; nothing was written.
        """
        if not RunStatus(status).terminal:
            raise InvalidStateError(f"finish_run needs a terminal status, got {status}")
        now = self._now()
        values: dict[str, Any] = {
            "status": RunStatus(status).value,
            "finished_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
            "summary": None if summary is None else json_safe(summary),
            "error": error,
        }
        if device is not None:
            values["device"] = device

        def finish(session: Session) -> RunRecord:
            try:
                row = fenced_update(session, run_id, attempt, values)
            except StaleAttemptError:
                current = load_run(session, run_id)
                if current.attempt == attempt and current.status == RunStatus(status).value:
                    return run_to_record(current)  # this call already committed once
                raise
            if final_weights is not None:
                store_checkpoint(session, run_id, row.steps_done, final_weights, now)
            return run_to_record(row)

        return self._db.run(finish, idempotent=True)

    def request_cancel(self, run_id: int) -> RunRecord:
        """Cancel a run: QUEUED ends CANCELLED now; RUNNING is flagged, its worker stops.

        The worker sees ``cancel_requested`` in the ack of its next chunk and finishes the run
        CANCELLED.

        Raises:
            InvalidStateError: the run already finished.
            RunNotFoundError: no run has this id.
        """
        now = self._now()

        def cancel(session: Session) -> RunRecord:
            queued = (
                update(Run)
                .where(Run.id == run_id, Run.status == _QUEUED)
                .values(status=RunStatus.CANCELLED.value, finished_at=now)
            )
            running = (
                update(Run)
                .where(Run.id == run_id, Run.status == _RUNNING)
                .values(cancel_requested=True)
            )
            for statement in (queued, running):
                returning = statement.returning(Run).execution_options(populate_existing=True)
                row = session.scalars(returning).one_or_none()
                if row is not None:
                    return run_to_record(row)
            current = load_run(session, run_id)
            raise InvalidStateError(
                f"run {run_id} already finished with status {current.status}; nothing to cancel"
            )

        # Not retried: after a lost commit, the retry would report the run as already finished.
        return self._db.run(cancel)


def _claim_statement(
    run_id: int, owner: str, worker_host: str, now: datetime, expires: datetime
) -> ReturningUpdate[Run]:
    """The claim as one conditional UPDATE ... RETURNING (see ``RunLifecycle.claim_run``)."""
    return (
        update(Run)
        .where(
            Run.id == run_id,
            or_(
                Run.status == _QUEUED,
                and_(Run.status == _RUNNING, Run.lease_expires_at < now),
            ),
            Run.cancel_requested.is_(False),
            Run.attempt < Run.max_attempts,
        )
        .values(
            status=_RUNNING,
            attempt=Run.attempt + 1,
            lease_owner=owner,
            lease_expires_at=expires,
            worker_host=worker_host,
            # The first attempt's start is the run's start.
            started_at=func.coalesce(Run.started_at, literal(now, UTCDateTime())),
        )
        .returning(Run)
        .execution_options(populate_existing=True)
    )
