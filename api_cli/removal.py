"""Deleting runs or a sweep from the CLI: the confirmation, and what was freed.

Deleting cannot be undone, so the command first measures what it would delete (the store's dry
run, which also refuses running runs before anyone is asked), asks on the terminal unless
``--yes``, and refuses outright where there is no terminal to ask on: a script must say
``--yes``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api_cli.dataset_view import human_bytes
from api_cli.output import print_json, say, stdout
from api_cli.state import STATE
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage.records import RemovedRuns

#: ``--yes`` of the commands that delete (``runs delete``, ``sweep delete``).
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")]
#: ``--vacuum`` of the same commands.
VacuumOption = Annotated[
    bool,
    typer.Option("--vacuum", help="SQLite: compact the file afterwards, giving the space back."),
]


def delete_confirmed(
    command: str,
    what: str,
    remove: Callable[[bool], RemovedRuns],
    *,
    yes: bool,
    vacuum: bool,
    json_output: bool,
) -> None:
    """Measure, ask, delete, and report; ``remove(dry_run)`` is the store's operation.

    Args:
        command: the command as typed, for errors (``runs delete 3 4``).
        what: what is deleted, for people (``runs 3, 4``).
        remove: deletes (or with ``True`` only measures) and says what it removed.
        yes: delete without asking.
        vacuum: on SQLite, compact the file afterwards.
        json_output: print the result as JSON on stdout (a question still goes to stderr).

    Raises:
        InvalidConfigError: no ``--yes`` and no terminal to ask on (exit 2); nothing deleted.
    """
    if not yes:
        preview = remove(True)  # refuses running runs before anyone is asked
        if not sys.stdin.isatty():
            raise InvalidConfigError(
                f"{command}: deleting cannot be undone and there is no terminal to confirm on; "
                "pass --yes to delete without asking"
            )
        question = f"delete {what} for good ({_freed(preview)})?"
        if not typer.confirm(question, default=False, err=True):
            say("nothing was deleted")
            return
    removed = remove(False)
    reclaimed = STATE.repository.reclaim_space() if vacuum else None
    if json_output:
        print_json(removal_dict(removed, reclaimed))
        return
    stdout.print(f"deleted {what}: {_freed(removed)}", highlight=False)
    stdout.print(space_sentence(vacuum, reclaimed), highlight=False, soft_wrap=True)


def removal_dict(removed: RemovedRuns, reclaimed_bytes: int | None) -> dict[str, Any]:
    """The JSON of a deletion: what went, the blob bytes freed, what VACUUM gave back."""
    return {
        "deleted_run_ids": list(removed.run_ids),
        "deleted_sweep_ids": list(removed.sweep_ids),
        "freed_bytes": removed.freed_bytes,
        "metric_bytes": removed.metric_bytes,
        "checkpoint_bytes": removed.checkpoint_bytes,
        "checkpoints": removed.checkpoints,
        "evaluations": removed.evaluations,
        "vacuum_freed_bytes": reclaimed_bytes,
    }


def space_sentence(vacuumed: bool, reclaimed_bytes: int | None) -> str:
    """Where the freed space went: PostgreSQL reuses it, a SQLite file keeps it until VACUUM."""
    if _is_postgresql():
        return "PostgreSQL: the rows are gone; autovacuum reuses their space"
    if vacuumed:
        return f"VACUUM: the SQLite file shrank by {human_bytes(reclaimed_bytes or 0)}"
    return (
        "the SQLite file keeps its size until compacted: `trainq db vacuum` (or --vacuum "
        "on the next delete) gives the space back"
    )


def _is_postgresql() -> bool:
    return STATE.settings.database_url.startswith(("postgresql", "postgres:"))


def _freed(removed: RemovedRuns) -> str:
    checkpoints = f"{removed.checkpoints:,} checkpoint{'s' * (removed.checkpoints != 1)}"
    evaluations = f"{removed.evaluations:,} evaluation{'s' * (removed.evaluations != 1)}"
    return (
        f"{human_bytes(removed.freed_bytes)} of metrics and weights, {checkpoints}, {evaluations}"
    )
