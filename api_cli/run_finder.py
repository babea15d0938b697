"""``trainq runs list --where/--sort/--offset``: runs found with the query language.

The query is the store's (``Repository.query_runs``, docs/queries.md); here its mistakes become
usage errors that name the option and show where the mistake is, and a page says how many
runs matched in all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage.dashboard_reads import RunPage
    from storage.errors import QuerySyntaxError
    from storage.records import RunStatus

#: Shown under a usage error of --where or --sort.
QUERY_HELP = "docs/queries.md describes the query language; `trainq runs list --help` has examples"


def find_runs(
    *,
    where: str | None,
    sort: str | None,
    limit: int | None,
    offset: int,
    statuses: Sequence[RunStatus] | None,
    tags: Mapping[str, str] | None,
    name: str | None,
    sweep_id: int | None,
    data_sha256: Collection[str] | None,
    archived: bool | None = False,
) -> RunPage | None:
    """The page of training runs the options ask for, with how many match in all; None when
    no option of the query language is given (``runs list``'s quick listing serves that).

    Raises:
        InvalidConfigError: (exit 2) --where or --sort cannot be read: the message names the
            option and the mistake, with the query and a caret under the mistake.
    """
    if where is None and sort is None and not offset:
        return None
    from api_cli.state import STATE
    from storage.errors import QuerySyntaxError
    from storage.run_query import parse_run_query, parse_run_sort

    try:
        query = parse_run_query(where or "")
    except QuerySyntaxError as error:
        raise _usage_error("--where", error) from None
    try:
        keys = parse_run_sort(sort) if sort and sort.strip() else ()
    except QuerySyntaxError as error:
        raise _usage_error("--sort", error) from None
    return STATE.repository.query_runs(
        query,
        keys,
        limit,
        offset,
        archived,
        sweep_id,
        statuses=statuses,
        tags=tags,
        name=name,
        data_sha256=data_sha256,
    )


def _usage_error(option: str, error: QuerySyntaxError) -> InvalidConfigError:
    return InvalidConfigError(
        f"{option}: {error.message} (column {error.column})\n{error.pointer()}\n{QUERY_HELP}"
    )


def page_note(shown: int, offset: int, total: int) -> str | None:
    """``showing 21-40 of 57 (--offset 40 for the next)``; None when every match is shown."""
    if shown == 0:
        return f"no runs past --offset {offset:,}: {total:,} match" if total else None
    if offset == 0 and shown >= total:
        return None
    what = f"{shown:,}" if offset == 0 else f"{offset + 1:,}-{offset + shown:,}"
    if offset + shown >= total:
        return f"showing {what} of {total:,}"
    hint = f"--offset {offset + shown} for the next"
    return f"showing {what} of {total:,} ({hint}, --limit N, or --all)"
