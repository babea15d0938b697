"""Moving a run through its states: create, publish, claim, lease, finish, fail, cancel.

Every transition is one conditional UPDATE whose WHERE clause states the transition's
precondition; RETURNING says whether it happened. That makes each transition race-safe on both
backends without a read first. Writes of a worker are fenced by its attempt number.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, literal, or_, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningUpdate

from storage.attempt_log import OUTCOME_OF_STATUS, close_attempt, open_attempt
from storage.checkpoint_store import store_checkpoint
from storage.column_types import UTCDateTime
from storage.dataset_refs import data_sha256_of
from storage.dataset_rows import require_dataset_version
from storage.errors import InvalidStateError, InvalidValueError, StaleAttemptError
from storage.models import EvaluationJob, Run
from storage.record_mapping import (
    check_finite_json,
    evaluation_job_to_record,
    job_to_record,
    json_safe,
    run_to_record,
)
from storage.records import ChunkAck, EvaluationJobRecord, JobKind, JobRecord, RunRecord, RunStatus
from storage.repository_base import (
    JobTable,
    RepositoryBase,
    check_lease_ttl,
    fenced_renewal,
    fenced_update,
    job_table,
    load_job,
    load_run,
)
from storage.trial_slots import lock_sweep_of, refill
from storage.validation import check_max_attempts, check_name, check_seed, check_tags

if TYPE_CHECKING:
    import numpy as np

_QUEUED = RunStatus.QUEUED.value
_RUNNING = RunStatus.RUNNING.value


class RunLifecycle(RepositoryBase):
    """State transitions of jobs: training runs, and evaluation jobs (``kind=JobKind.EVAL``)."""

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
        """Insert a QUEUED training run at attempt 0. Publish it only after this returns.

        Raises:
            InvalidValueError: NaN/inf in the config, or a seed, ``max_attempts``, name or tag
                outside the limits of ``storage.validation``; or ``kind`` is not ``train``
                (evaluation jobs: :meth:`create_evaluation_job`); or the config's
                ``data_sha256`` is not a SHA-256.
            DatasetNotFoundError: the config's ``data_sha256`` names no stored version.
        """
        if JobKind(kind) is not JobKind.TRAIN:
            raise InvalidValueError("create_run makes training runs; use create_evaluation_job")
        check_finite_json(config, "config")
        check_seed(seed)
        check_max_attempts(max_attempts)
        check_name(name)
        checked_tags = check_tags(tags or {})
        data_sha256 = data_sha256_of(config)

        def insert(session: Session) -> RunRecord:
            # The server's time: the reconciler compares it (redispatch) with its own.
            now = self._server_now(session)
            if data_sha256 is not None:
                # A run never names a missing version; the lock makes a removal wait for it.
                require_dataset_version(session, data_sha256, lock=True)
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
                data_sha256=data_sha256,
            )
            session.add(row)
            session.flush()
            return run_to_record(row)

        # Not retried: after a lost commit a retry would insert the run twice.
        return self._db.run(insert)

    def create_evaluation_job(
        self, *, run_id: int, checkpoint_step: int, split: str, queue: str, max_attempts: int
    ) -> EvaluationJobRecord:
        """Insert a QUEUED evaluation job of training run ``run_id``'s checkpoint on ``split``.

        Raises:
            RunNotFoundError: no run has this id.
            InvalidValueError: ``max_attempts`` outside the limits of ``storage.validation``.
        """
        check_max_attempts(max_attempts)

        def insert(session: Session) -> EvaluationJobRecord:
            now = self._server_now(session)
            load_run(session, run_id)
            row = EvaluationJob(
                run_id=run_id,
                checkpoint_step=checkpoint_step,
                split=split,
                status=_QUEUED,
                queue=queue,
                attempt=0,
                max_attempts=max_attempts,
                cancel_requested=False,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return evaluation_job_to_record(row)

        return self._db.run(insert)  # not retried: a retry after a lost commit inserts twice

    def mark_published(self, run_id: int, *, kind: JobKind = JobKind.TRAIN) -> None:
        """Record that the job's message was just handed to the broker.

        Raises:
            RunNotFoundError: no run has this id (EvaluationJobNotFoundError for ``eval``).
        """
        now = self._server_now_sql()  # compared with the reconciler's now: the server's clock
        table = job_table(kind)

        def publish(session: Session) -> None:
            statement = update(table).where(table.id == run_id).values(published_at=now)
            if session.execute(statement.returning(table.id)).first() is None:
                load_job(session, run_id, table)

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
        """Take the training run for a new attempt, if it is free to take.

        Claimable: QUEUED, or RUNNING with an expired lease; not cancel-requested; attempts left.
        The claim is one conditional UPDATE, so of two racing claims exactly one wins.

        Returns:
            The run as claimed (RUNNING, ``attempt`` incremented: the fencing token every later
            write must carry), or ``None`` when it cannot be claimed now.

        Raises:
            RunNotFoundError: no run has this id.
        """
        claimed = self._claim(Run, run_id, owner, worker_host, lease_ttl_s, now)
        assert claimed is None or isinstance(claimed, RunRecord)
        return claimed

    def claim_evaluation_job(
        self,
        job_id: int,
        *,
        owner: str,
        worker_host: str,
        lease_ttl_s: float,
        now: datetime | None = None,
    ) -> EvaluationJobRecord | None:
        """:meth:`claim_run` for an evaluation job (same rules, same fencing).

        Raises:
            EvaluationJobNotFoundError: no evaluation job has this id.
        """
        claimed = self._claim(EvaluationJob, job_id, owner, worker_host, lease_ttl_s, now)
        assert claimed is None or isinstance(claimed, EvaluationJobRecord)
        return claimed

    def _claim(
        self,
        table: JobTable,
        job_id: int,
        owner: str,
        worker_host: str,
        lease_ttl_s: float,
        now: datetime | None,
    ) -> JobRecord | None:
        check_lease_ttl(lease_ttl_s)

        def claim(session: Session) -> JobRecord | None:
            # The server's time, read in this transaction: an expired lease is expired by the
            # database's clock, and the new one ends by it (on PostgreSQL ``now()`` is fixed for
            # the transaction, so this is ``now() + ttl`` written in SQL).
            moment = self._server_now(session, now)
            expires = moment + timedelta(seconds=lease_ttl_s)
            statement = _claim_statement(table, job_id, owner, worker_host, moment, expires)
            row = session.scalars(statement).one_or_none()
            if row is None:
                load_job(session, job_id, table)  # a NotFoundError for a bad id
                return None
            open_attempt(session, row, moment)
            return job_to_record(row)

        # Not retried: a retry after a lost commit would see its own claim as taken.
        return self._db.run(claim)

    def renew_lease(
        self, run_id: int, attempt: int, lease_ttl_s: float, *, kind: JobKind = JobKind.TRAIN
    ) -> ChunkAck:
        """Extend the lease of ``attempt`` by ``lease_ttl_s`` from now (the database's clock).

        Raises:
            StaleAttemptError: ``attempt`` no longer owns the job.
        """
        lease_end = self._lease_end_sql(lease_ttl_s)
        table = job_table(kind)

        def renew(session: Session) -> ChunkAck:
            renewal = fenced_renewal(session, run_id, attempt, lease_end, table=table)
            return ChunkAck(renewal.cancel_requested, renewal.lease_expires_at)

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
        A sweep trial's slot goes to the next trial in the same transaction
        (``storage.trial_slots``).
        Non-finite floats in ``summary`` are stored as ``null`` (JSON has no NaN). Repeating the
        call after it committed returns the finished run (so a retry is harmless).

        Raises:
            InvalidStateError: ``status`` is not terminal.
            StaleAttemptError: ``attempt`` no longer owns the run; nothing was written.
        """
        if not RunStatus(status).terminal:
            raise InvalidStateError(f"finish_run needs a terminal status, got {status}")
        values: dict[str, Any] = {
            "status": RunStatus(status).value,
            "lease_owner": None,
            "lease_expires_at": None,
            "summary": None if summary is None else json_safe(summary),
            "error": error,
        }
        if device is not None:
            values["device"] = device

        def finish(session: Session) -> RunRecord:
            sweep = lock_sweep_of(session, run_id)  # a trial's slot is refilled below
            now = self._server_now(session)
            finished = {**values, "finished_at": now}
            row, repeated = _fenced_finish(session, Run, run_id, attempt, finished)
            assert isinstance(row, Run)
            if not repeated:
                outcome = OUTCOME_OF_STATUS[values["status"]]
                close_attempt(session, row, attempt, outcome, now, device=device)
            if final_weights is not None and not repeated:
                store_checkpoint(session, run_id, row.steps_done, final_weights, now)
            refill(session, sweep, row, now)
            return run_to_record(row)

        return self._db.run(finish, idempotent=True)

    def finish_evaluation_job(
        self,
        job_id: int,
        attempt: int,
        status: RunStatus,
        *,
        error: str | None = None,
        device: str | None = None,
    ) -> EvaluationJobRecord:
        """:meth:`finish_run` for an evaluation job (its result is saved before, by
        ``save_evaluation``, fenced on the same attempt).

        Raises:
            InvalidStateError: ``status`` is not terminal.
            StaleAttemptError: ``attempt`` no longer owns the job; nothing was written.
        """
        if not RunStatus(status).terminal:
            raise InvalidStateError(f"finish_evaluation_job needs a terminal status, got {status}")
        values: dict[str, Any] = {
            "status": RunStatus(status).value,
            "finished_at": self._server_now_sql(),
            "lease_owner": None,
            "lease_expires_at": None,
            "error": error,
        }
        if device is not None:
            values["device"] = device

        def finish(session: Session) -> EvaluationJobRecord:
            row, _ = _fenced_finish(session, EvaluationJob, job_id, attempt, values)
            assert isinstance(row, EvaluationJob)
            return evaluation_job_to_record(row)

        return self._db.run(finish, idempotent=True)

    def request_cancel(self, run_id: int) -> RunRecord:
        """Cancel a training run (see :meth:`cancel_job`)."""
        cancelled = self.cancel_job(run_id, kind=JobKind.TRAIN)
        assert isinstance(cancelled, RunRecord)
        return cancelled

    def cancel_job(self, run_id: int, *, kind: JobKind) -> JobRecord:
        """Cancel a run: QUEUED ends CANCELLED now; RUNNING is flagged, its worker stops.

        The worker sees ``cancel_requested`` in the ack of its next chunk and finishes the run
        CANCELLED.

        Raises:
            InvalidStateError: the run already finished.
            RunNotFoundError: no run has this id.
        """
        table = job_table(kind)

        def cancel(session: Session) -> JobRecord:
            sweep = lock_sweep_of(session, run_id, kind)
            now = self._server_now(session)
            queued = (
                update(table)
                .where(table.id == run_id, table.status == _QUEUED)
                .values(status=RunStatus.CANCELLED.value, finished_at=now)
            )
            running = (
                update(table)
                .where(table.id == run_id, table.status == _RUNNING)
                .values(cancel_requested=True)
            )
            for statement in (queued, running):
                returning = statement.returning(table).execution_options(populate_existing=True)
                row = session.scalars(returning).one_or_none()
                if isinstance(row, Run | EvaluationJob):
                    refill(session, sweep, row, now)
                    return job_to_record(row)
            current = job_to_record(load_job(session, run_id, table))
            raise InvalidStateError(
                f"{current.label} already finished with status {current.status}; nothing to cancel"
            )

        # Not retried: after a lost commit, the retry would report the run as already finished.
        return self._db.run(cancel)


def _fenced_finish(
    session: Session, table: JobTable, job_id: int, attempt: int, values: dict[str, Any]
) -> tuple[Run | EvaluationJob, bool]:
    """The finishing UPDATE, and whether it is a repeat of a call that already committed (the
    job is then returned as it is)."""
    try:
        return fenced_update(session, job_id, attempt, values, table), False
    except StaleAttemptError:
        current = load_job(session, job_id, table)
        if current.attempt == attempt and current.status == values["status"]:
            return current, True
        raise


def _claim_statement(
    table: JobTable, job_id: int, owner: str, worker_host: str, now: datetime, expires: datetime
) -> ReturningUpdate[Any]:
    """The claim as one conditional UPDATE ... RETURNING (see ``RunLifecycle.claim_run``)."""
    return (
        update(table)
        .where(
            table.id == job_id,
            or_(
                table.status == _QUEUED,
                and_(table.status == _RUNNING, table.lease_expires_at < now),
            ),
            table.cancel_requested.is_(False),
            table.attempt < table.max_attempts,
        )
        .values(
            status=_RUNNING,
            attempt=table.attempt + 1,
            lease_owner=owner,
            lease_expires_at=expires,
            worker_host=worker_host,
            # Where this attempt trains is known at its first chunk (``record_chunk``); until
            # then the job must not show where the last attempt trained.
            device=None,
            # The first attempt's start is the job's start.
            started_at=func.coalesce(table.started_at, literal(now, UTCDateTime())),
        )
        .returning(table)
        .execution_options(populate_existing=True)
    )
