"""Finding training runs with the query language: ``Repository.query_runs``.

The query is parsed by ``storage.run_query`` and compiled by ``storage.run_query_sql``; this part
adds the plain filters, the paging and the total, and runs it all in one read transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.dashboard_reads import RunPage, training_runs_statement
from storage.errors import InvalidValueError
from storage.record_mapping import run_to_record
from storage.records import RunStatus
from storage.repository_base import RepositoryBase
from storage.run_queries import filtered_runs
from storage.run_query import RunQuery, SortKey, parse_run_query, parse_run_sort
from storage.run_query_sql import run_condition, sort_order


class RunSearch(RepositoryBase):
    """Training runs by query, sorted and paged, with how many match in all."""

    def query_runs(
        self,
        where: str | RunQuery | None = None,
        sort: str | Sequence[SortKey] | None = None,
        limit: int | None = None,
        offset: int = 0,
        archived: bool | None = False,
        sweep_id: int | None = None,
        *,
        statuses: Sequence[RunStatus] | None = None,
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
        data_sha256: Collection[str] | None = None,
    ) -> RunPage:
        """Training runs matching ``where`` and every filter: ``limit`` of them from ``offset``
        in ``sort`` order, and the number that match in all (``RunPage.total``).

        Args:
            where: a query (docs/queries.md), as text or parsed by ``parse_run_query``; None or
                blank: every run.
            sort: ``-val_accuracy,name`` (``-`` descending), or keys from ``parse_run_sort``;
                None: newest first. Runs without the value come last; ties newest first.
            limit: at most this many runs (None: all from ``offset``).
            offset: how many matching runs to skip first.
            archived: False (the default): only runs not archived; True: only archived ones;
                None: both.
            sweep_id: only the trials of this sweep.
            statuses, tags, name, data_sha256: ``list_runs``' filters, combined with ``where``.

        Raises:
            QuerySyntaxError: ``where`` or ``sort`` cannot be read (its ``message`` and
                ``column`` say what and where; an InvalidValueError).
            InvalidValueError: a negative limit or offset, or a malformed tag key.
        """
        if offset < 0 or (limit is not None and limit < 0):
            raise InvalidValueError(f"offset={offset}, limit={limit}: neither may be negative")
        query = parse_run_query(where or "") if not isinstance(where, RunQuery) else where
        if isinstance(sort, str):
            keys = parse_run_sort(sort) if sort.strip() else ()
        else:
            keys = tuple(sort or ())
        now = self._now()
        statement = filtered_runs(
            training_runs_statement(), archived, sweep_id, statuses, tags, name, data_sha256
        )

        def read(session: Session) -> RunPage:
            dialect = session.get_bind().dialect.name
            matching = statement
            if query.where is not None:
                matching = matching.where(run_condition(query.where, dialect, now))
            counting = select(func.count()).select_from(matching.subquery())
            paging = matching.order_by(*sort_order(keys, dialect)).offset(offset)
            if limit is not None:
                paging = paging.limit(limit)
            runs = tuple(run_to_record(row) for row in session.scalars(paging))
            # A page that ends before its limit ends the matches: no count needed.
            if (limit is None or len(runs) < limit) and (runs or offset == 0):
                return RunPage(runs=runs, total=offset + len(runs))
            return RunPage(runs=runs, total=int(session.execute(counting).scalar_one()))

        return self._db.run(read, readonly=True, idempotent=True)
