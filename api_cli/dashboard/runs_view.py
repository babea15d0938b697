"""The runs page (``/`` and ``/api/runs``): the filters, query and sort from its form, one page
of training runs through ``Repository.query_runs`` (the language of ``trainq runs list
--where``), with the hyperparameters that differ among them as columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from api_cli.dashboard.run_columns import (
    LEADING,
    TRAILING,
    Column,
    differing_hyperparameters,
    hyperparameter_text,
)
from api_cli.dataset_view import recorded_data_text
from storage.errors import InvalidValueError, QuerySyntaxError
from storage.records import EvaluationRecord, RunRecord, RunStatus
from storage.run_query import RunQuery, SortKey, parse_run_query, parse_run_sort
from storage.validation import MAX_ID

if TYPE_CHECKING:
    from storage import Repository

#: Runs per page of the runs list, by default and at most (``?per_page=``).
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: How much of a refused filter an error message repeats.
_ECHO_CHARS = 40


#: The longest query (``q``) and sort the runs page reads, in characters.
MAX_QUERY_CHARS = 2000
MAX_SORT_CHARS = 200
#: ``?archived=``: hidden (the default), shown beside the others, or only them.
ARCHIVED_CHOICES = {"": False, "show": None, "only": True}


@dataclass(frozen=True)
class RunFilters:
    """The runs page's filters, query, sort and page, as typed in its form (empty: "any")."""

    status: str = ""
    tag: str = ""  # KEY=VALUE
    sweep: str = ""
    page: int = 1
    per_page: int = PAGE_SIZE
    q: str = ""  # the query language of `trainq runs list --where` (docs/queries.md)
    sort: str = ""  # as `--sort`: -val_accuracy,name; empty: newest first
    archived: str = ""  # a key of ARCHIVED_CHOICES

    def tags(self) -> dict[str, str]:
        """The tag filter as a mapping (``{}`` when empty)."""
        if not self.tag:
            return {}
        key, _, value = self.tag.partition("=")
        return {key.strip(): value.strip()}

    def query(self, page: int, sort: str | None = None) -> str:
        """The query string of this filter on another page (and sorted by ``sort``)."""
        from urllib.parse import urlencode

        fields = {
            "q": self.q,
            "status": self.status,
            "tag": self.tag,
            "sweep": self.sweep,
            "archived": self.archived,
            "sort": self.sort if sort is None else sort,
            "page": str(page),
        }
        if self.per_page != PAGE_SIZE:
            fields["per_page"] = str(self.per_page)
        return urlencode({key: value for key, value in fields.items() if value})

    def check(self) -> None:
        """Refuse a filter the page cannot apply, naming the field and what it accepts.

        Raises:
            InvalidValueError: the status, sweep, tag or archived filter is malformed, or the
                query or sort is too long.
        """
        if self.status and self.status not in {s.value for s in RunStatus}:
            raise InvalidValueError(
                f"status={self.status[:_ECHO_CHARS]!r} is not a status; use one of "
                + ", ".join(s.value for s in RunStatus)
            )
        # A sweep id the database cannot hold (2^63) is refused here, not by the driver.
        if self.sweep and not (
            self.sweep.isascii()
            and self.sweep.isdigit()
            and len(self.sweep) <= len(str(MAX_ID))
            and 1 <= int(self.sweep) <= MAX_ID
        ):
            raise InvalidValueError(
                f"sweep={self.sweep[:_ECHO_CHARS]!r} is not a sweep id (a number from 1 to "
                f"{MAX_ID})"
            )
        if self.tag and "=" not in self.tag:
            raise InvalidValueError(
                f"tag={self.tag[:_ECHO_CHARS]!r}: write the tag filter as KEY=VALUE"
            )
        if self.archived not in ARCHIVED_CHOICES:
            raise InvalidValueError(
                f"archived={self.archived[:_ECHO_CHARS]!r}: use archived=show (with the others) "
                "or archived=only"
            )
        for name, text, most in (
            ("q", self.q, MAX_QUERY_CHARS),
            ("sort", self.sort, MAX_SORT_CHARS),
        ):
            if len(text) > most:
                raise InvalidValueError(f"{name}: {len(text):,} characters; at most {most:,}")


class RunsQueryError(InvalidValueError):
    """Raised when the runs page's query (``q``) or sort cannot be read: the page shows the
    message and where it is, beside the box it came from."""

    def __init__(self, field: str, error: QuerySyntaxError) -> None:
        super().__init__(f"{field}: {error}")
        self.field = field
        self.error = error

    def to_json(self) -> dict[str, Any]:
        """The mistake for the page and for ``/api/runs``: which box, what, which column."""
        return {
            "error": str(self),
            "field": self.field,
            "message": self.error.message,
            "column": self.error.column,
            "text": self.error.text,
            "pointer": self.error.pointer(indent=""),
        }


def _parsed(filters: RunFilters) -> tuple[RunQuery, tuple[SortKey, ...]]:
    try:
        where = parse_run_query(filters.q)
    except QuerySyntaxError as exc:
        raise RunsQueryError("q", exc) from None
    try:
        keys = parse_run_sort(filters.sort) if filters.sort.strip() else ()
    except QuerySyntaxError as exc:
        raise RunsQueryError("sort", exc) from None
    return where, keys


def runs_page(repository: Repository, filters: RunFilters, now: datetime) -> dict[str, Any]:
    """The runs list: one row per training run of the page (with the hyperparameters that
    differ among them), and the paging.

    Raises:
        InvalidValueError: a filter is malformed (the page shows it as a 400).
        RunsQueryError: the query or the sort cannot be read (shown beside its box).
    """
    filters.check()
    where, keys = _parsed(filters)
    page = repository.query_runs(
        where=where,
        sort=keys,
        limit=filters.per_page,
        offset=(filters.page - 1) * filters.per_page,
        archived=ARCHIVED_CHOICES[filters.archived],
        sweep_id=int(filters.sweep) if filters.sweep else None,
        statuses=[RunStatus(filters.status)] if filters.status else None,
        tags=filters.tags() or None,
    )
    ids = [run.id for run in page.runs]
    latest = repository.latest_metrics(ids)
    validation = repository.latest_validation_accuracy(ids)
    evaluations = repository.list_evaluations_of_runs(ids)
    hyper = differing_hyperparameters(page.runs)
    rows = []
    for run in page.runs:
        newest = latest.get(run.id)
        summary = run.train_summary
        rows.append(
            {
                "id": run.id,
                "name": run.name or "",
                "status": run.status.value,
                "steps_done": run.steps_done,
                "steps": int(run.config.get("steps", 0)),
                "loss": summary.final_loss if summary else (newest.loss if newest else None),
                "accuracy": summary.final_accuracy
                if summary
                else (newest.accuracy if newest else None),
                "val_accuracy": validation.get(run.id),
                "test_accuracy": _test_accuracy(evaluations.get(run.id, [])),
                "hyperparameters": [
                    hyperparameter_text(run.config.get(column.sort)) for column in hyper
                ],
                "device": run.device or "",
                "data": recorded_data_text(run),
                "age": age_text(now, run.created_at),
                "sweep_id": run.sweep_id,
                "tags": run.tags,
                "note": run.note or "",
                "archived": run.archived_at is not None,
                "pruned_at": pruned_at(run),
            }
        )
    pages = max(1, math.ceil(page.total / filters.per_page))
    return {
        "rows": rows,
        "total": page.total,
        "page": filters.page,
        "pages": pages,
        "hyperparameters": [{"name": c.sort, "numeric": c.numeric} for c in hyper],
        "header": header(filters, hyper),
    }


def header(filters: RunFilters, hyper: Sequence[Column]) -> list[dict[str, Any]]:
    """The runs table's header cells: each sortable one links to the page sorted by it (the
    other way round when it is sorted by it already), and says which way it is sorted."""
    current = filters.sort.split(",")[0].strip()
    sorted_by, descending = current.lstrip("-"), current.startswith("-")
    cells = []
    for column in (*LEADING, *hyper, *TRAILING):
        if isinstance(column, str):
            cells.append({"label": column, "href": "", "arrow": "", "numeric": False, "title": ""})
            continue
        if column.sort == sorted_by:
            arrow, next_descending = ("▼", False) if descending else ("▲", True)
        else:
            arrow, next_descending = "", column.descending_first
        sort = ("-" if next_descending else "") + column.sort
        cells.append(
            {
                "label": column.label,
                "href": "/?" + filters.query(1, sort=sort),
                "arrow": arrow,
                "numeric": column.numeric,
                "title": column.title,
                "sort": column.sort,
            }
        )
    return cells


def pruned_at(run: RunRecord) -> int | None:
    """The step a sweep's ASHA stopped the run at, or None when it was not pruned."""
    summary = run.train_summary
    if summary is None or not summary.pruned:
        return None
    return summary.pruned_at_step if summary.pruned_at_step is not None else run.steps_done


def _test_accuracy(evaluations: Sequence[EvaluationRecord]) -> float | None:
    tests = [e for e in evaluations if e.split == "test"]
    return tests[-1].accuracy if tests else None


def age_text(now: datetime, then: datetime) -> str:
    """How long ago, in the largest unit that fits: ``42s``, ``5m``, ``3h``, ``2d``."""
    seconds = max(0.0, (now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
