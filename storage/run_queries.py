"""Reading runs: one by id, filtered lists, counts per status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Run
from storage.record_mapping import run_to_record
from storage.records import JobKind, RunRecord, RunStatus
from storage.repository_base import RepositoryBase, load_run
from storage.validation import check_tags


class RunQueries(RepositoryBase):
    """Read-only queries over ``runs``."""

    def get_run(self, run_id: int) -> RunRecord:
        """One run (training or evaluation job) by id.

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
    ) -> list[RunRecord]:
        """Runs matching every given filter, newest first (by id).

        Args:
            kind: only this kind of job; ``None`` for all (training runs by default).
            statuses: only runs in one of these statuses.
            tags: only runs carrying every one of these ``key: value`` tags (filtered in SQL).
            name: only runs with exactly this name.
            limit: at most this many runs.
            sweep_id: only the trials of this sweep.

        Raises:
            InvalidValueError: a tag key is malformed.
        """
        statement = select(Run).order_by(Run.id.desc())
        if kind is not None:
            statement = statement.where(Run.kind == JobKind(kind).value)
        if statuses is not None:
            statement = statement.where(Run.status.in_([RunStatus(s).value for s in statuses]))
        for key, value in check_tags(tags or {}).items():
            statement = statement.where(Run.tags[key].as_string() == value)
        if name is not None:
            statement = statement.where(Run.name == name)
        if sweep_id is not None:
            statement = statement.where(Run.sweep_id == sweep_id)
        if limit is not None:
            statement = statement.limit(max(limit, 0))

        def listing(session: Session) -> list[RunRecord]:
            return [run_to_record(row) for row in session.scalars(statement)]

        return self._db.run(listing, readonly=True, idempotent=True)

    def count_runs_by_status(self, kind: JobKind | None = None) -> dict[RunStatus, int]:
        """How many runs are in each status (every status present, zero included).

        Args:
            kind: count only this kind of job; ``None`` for all.
        """
        statement = select(Run.status, func.count()).group_by(Run.status)
        if kind is not None:
            statement = statement.where(Run.kind == JobKind(kind).value)

        def counting(session: Session) -> dict[RunStatus, int]:
            counts = dict.fromkeys(RunStatus, 0)
            for status, count in session.execute(statement):
                counts[RunStatus(status)] = int(count)
            return counts

        return self._db.run(counting, readonly=True, idempotent=True)
