"""Reading jobs: training runs and evaluation jobs by id, filtered lists, counts per status."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from storage.models import EvaluationJob, Run
from storage.record_mapping import evaluation_job_to_record, job_to_record, run_to_record
from storage.records import EvaluationJobRecord, JobKind, JobRecord, RunRecord, RunStatus
from storage.repository_base import RepositoryBase, job_table, load_job, load_run
from storage.validation import check_tags


class RunQueries(RepositoryBase):
    """Read-only queries over ``runs`` and ``evaluation_jobs``."""

    def get_job(self, job_id: int, kind: JobKind) -> JobRecord:
        """A training run (``kind`` train) or an evaluation job (``kind`` eval) by id.

        Raises:
            NotFoundError: RunNotFoundError or EvaluationJobNotFoundError.
        """
        table = job_table(kind)
        return self._db.run(
            lambda session: job_to_record(load_job(session, job_id, table)),
            readonly=True,
            idempotent=True,
        )

    def get_evaluation_job(self, job_id: int) -> EvaluationJobRecord:
        """One evaluation job by id.

        Raises:
            EvaluationJobNotFoundError: no evaluation job has this id.
        """
        job = self.get_job(job_id, JobKind.EVAL)
        assert isinstance(job, EvaluationJobRecord)
        return job

    def list_evaluation_jobs(
        self, *, statuses: Sequence[RunStatus] | None = None, limit: int | None = None
    ) -> list[EvaluationJobRecord]:
        """Evaluation jobs, newest first (by id), in one of ``statuses`` if given."""
        statement = select(EvaluationJob).order_by(EvaluationJob.id.desc())
        if statuses is not None:
            values = [RunStatus(s).value for s in statuses]
            statement = statement.where(EvaluationJob.status.in_(values))
        if limit is not None:
            statement = statement.limit(max(limit, 0))

        def listing(session: Session) -> list[EvaluationJobRecord]:
            return [evaluation_job_to_record(row) for row in session.scalars(statement)]

        return self._db.run(listing, readonly=True, idempotent=True)

    def get_run(self, run_id: int) -> RunRecord:
        """One training run by id.

        Raises:
            RunNotFoundError: no run has this id (the message suggests ``trainq runs list``).
        """
        return self._db.run(
            lambda session: run_to_record(load_run(session, run_id)),
            readonly=True,
            idempotent=True,
        )

    def list_runs(
        self,
        *,
        kind: JobKind | None = JobKind.TRAIN,
        statuses: Sequence[RunStatus] | None = None,
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
        limit: int | None = None,
        sweep_id: int | None = None,
        data_sha256: Collection[str] | None = None,
        archived: bool | None = False,
    ) -> list[RunRecord]:
        """Runs matching every given filter, newest first (by id).

        Args:
            kind: ``train`` or ``None`` (every row of ``runs`` is a training run); ``eval``
                lists nothing (evaluation jobs: :meth:`list_evaluation_jobs`).
            statuses: only runs in one of these statuses.
            tags: only runs carrying every one of these ``key: value`` tags (filtered in SQL).
            name: only runs with exactly this name.
            limit: at most this many runs.
            sweep_id: only the trials of this sweep.
            data_sha256: only runs trained on one of these dataset versions (content hashes).
            archived: False (the default): only runs not archived; True: only archived ones;
                None: both.

        Raises:
            InvalidValueError: a tag key is malformed.
        """
        statement = select(Run).order_by(Run.id.desc())
        if kind is not None:
            statement = statement.where(Run.kind == JobKind(kind).value)  # eval: none since 0003
        statement = filtered_runs(statement, archived, sweep_id, statuses, tags, name, data_sha256)
        if limit is not None:
            statement = statement.limit(max(limit, 0))

        def listing(session: Session) -> list[RunRecord]:
            return [run_to_record(row) for row in session.scalars(statement)]

        return self._db.run(listing, readonly=True, idempotent=True)

    def count_runs_by_status(
        self, kind: JobKind | None = None, archived: bool | None = None
    ) -> dict[RunStatus, int]:
        """How many jobs are in each status (every status present, zero included).

        Args:
            kind: ``train`` or ``None``: training runs; ``eval``: evaluation jobs.
            archived: training runs only: False counts those not archived, True the archived
                ones, None (the default) all of them.
        """
        table = job_table(kind or JobKind.TRAIN)
        statement = select(table.status, func.count()).group_by(table.status)
        if archived is not None and table is Run:
            archived_at = Run.archived_at
            statement = statement.where(
                archived_at.is_not(None) if archived else archived_at.is_(None)
            )

        def counting(session: Session) -> dict[RunStatus, int]:
            counts = dict.fromkeys(RunStatus, 0)
            for status, count in session.execute(statement):
                counts[RunStatus(status)] = int(count)
            return counts

        return self._db.run(counting, readonly=True, idempotent=True)


def filtered_runs(
    statement: Select[Run],
    archived: bool | None,
    sweep_id: int | None,
    statuses: Sequence[RunStatus] | None,
    tags: Mapping[str, str] | None,
    name: str | None,
    data_sha256: Collection[str] | None,
) -> Select[Run]:
    """``statement`` narrowed by the plain filters (``list_runs``' and ``query_runs``')."""
    if archived is not None:
        archived_at = Run.archived_at
        statement = statement.where(archived_at.is_not(None) if archived else archived_at.is_(None))
    if sweep_id is not None:
        statement = statement.where(Run.sweep_id == sweep_id)
    if statuses is not None:
        statement = statement.where(Run.status.in_([RunStatus(s).value for s in statuses]))
    for key, value in check_tags(tags or {}).items():
        statement = statement.where(Run.tags[key].as_string() == value)
    if name is not None:
        statement = statement.where(Run.name == name)
    if data_sha256 is not None:
        statement = statement.where(Run.data_sha256.in_(list(data_sha256)))
    return statement
