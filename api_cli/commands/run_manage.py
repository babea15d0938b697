"""``trainq runs rename|note|tag|untag|archive|unarchive|delete``: manage runs after the fact.

Names and tags are checked as ``trainq train --name/--tag`` checks them; every error names the
command, the run and what to do. Each command prints the run's JSON with ``--json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.options import checked_option
from api_cli.output import literal, print_json, tell
from api_cli.removal import VacuumOption, YesOption
from api_cli.state import STATE
from storage.errors import InvalidValueError
from storage.validation import MAX_ID
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from api_cli.help_format import TrainqTyper
    from storage.records import RunRecord

RunId = Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The run's id.", show_default=False)]
RunIds = Annotated[
    list[int], typer.Argument(min=1, max=MAX_ID, help="One or more run ids.", show_default=False)
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the run(s) as JSON on stdout.")]


def register(app: TrainqTyper) -> None:
    """Add the commands to ``trainq runs``, after list, show and watch."""
    for name, command in (
        ("rename", rename),
        ("note", note),
        ("tag", tag),
        ("untag", untag),
        ("archive", archive),
        ("unarchive", unarchive),
        ("delete", delete),
    ):
        app.command(name)(command)


def rename(
    run_id: RunId,
    name: Annotated[str, typer.Argument(help='The new name ("" removes it).')],
    json_output: JsonOutput = False,
) -> None:
    """Give a run a new name; "" removes it. Names are checked as `train --name` checks them.

    Example: trainq runs rename 7 "baseline, lr 0.01"
    """
    from storage.validation import check_name

    checked_option(f"runs rename {run_id} NAME", check_name, name or None)
    run = STATE.repository.rename_run(run_id, name)
    said = f"renamed {literal(repr(run.name))}" if run.name else "name removed"
    _report(run, f"run {run_id}: {said}", json_output)


def note(
    run_id: RunId,
    text: Annotated[str, typer.Argument(help='The note ("" removes it).')],
    json_output: JsonOutput = False,
) -> None:
    """Write a note on a run (replacing any note it had); "" removes it. `runs show` prints it.

    Example: trainq runs note 7 "diverges after step 4000: try a smaller lr"
    """
    from storage.validation import check_note

    checked_option(f"runs note {run_id} TEXT", check_note, text or None)
    run = STATE.repository.set_run_note(run_id, text)
    said = f"note saved ({len(run.note):,} characters)" if run.note else "note removed"
    _report(run, f"run {run_id}: {said}", json_output)


def tag(
    run_id: RunId,
    pairs: Annotated[
        list[str], typer.Argument(help="KEY=VALUE tags to add or replace.", show_default=False)
    ],
    json_output: JsonOutput = False,
) -> None:
    """Add tags to a run, or replace the values of tags it has (checked as `train --tag`).

    Example: trainq runs tag 7 team=vision stage=final
    """
    from storage.validation import check_tags

    command = f"runs tag {run_id}"
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidConfigError(
                f"{command} {literal(pair)}: expected KEY=VALUE, e.g. team=vision"
            )
        tags[key.strip()] = value.strip()
    checked_option(command, check_tags, tags)
    with _named(command):  # more tags than a run holds
        run = STATE.repository.tag_run(run_id, tags)
    _report(run, f"run {run_id}: tags {_tags_text(run)}", json_output)


def untag(
    run_id: RunId,
    keys: Annotated[list[str], typer.Argument(help="Keys of the tags to remove.")],
    json_output: JsonOutput = False,
) -> None:
    """Remove tags from a run by key.

    Example: trainq runs untag 7 stage
    """
    command = f"runs untag {run_id} {' '.join(keys)}"
    with _named(command):  # a key the run does not have
        run = STATE.repository.untag_run(run_id, keys)
    _report(run, f"run {run_id}: tags {_tags_text(run)}", json_output)


def archive(run_ids: RunIds, json_output: JsonOutput = False) -> None:
    """Archive finished runs: `runs list` hides them unless --archived; nothing is deleted.

    Queued or running runs are refused (cancel them first). To archive a sweep with its
    trials: trainq sweep archive ID.

    Example: trainq runs archive 3 4 5
    """
    runs = STATE.repository.archive_runs(run_ids)
    them, bring = ("them", "bring") if len(runs) > 1 else ("it", "brings")
    _report_many(
        runs,
        f"archived {_ids_text(runs)}: `trainq runs list --archived` shows {them}, "
        f"`trainq runs unarchive {' '.join(str(run.id) for run in runs)}` {bring} {them} back",
        json_output,
    )


def unarchive(run_ids: RunIds, json_output: JsonOutput = False) -> None:
    """Bring archived runs back into `runs list`.

    Example: trainq runs unarchive 3 4 5
    """
    runs = STATE.repository.unarchive_runs(run_ids)
    _report_many(runs, f"unarchived {_ids_text(runs)}", json_output)


def delete(
    run_ids: RunIds,
    yes: YesOption = False,
    vacuum: VacuumOption = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Delete finished runs for good: metrics, checkpoints, final weights, evaluations,
    attempts. Asks first unless --yes (a script must pass --yes); says how much it freed.

    Queued or running runs are refused (cancel them first); a sweep's trials go with their
    sweep (trainq sweep delete ID). PostgreSQL reuses the space; a SQLite file keeps its size
    until --vacuum or `trainq db vacuum`.

    Example: trainq runs delete 3 4 --yes --vacuum
    """
    from api_cli.removal import delete_confirmed

    ids = list(dict.fromkeys(run_ids))
    plural = "s" if len(ids) > 1 else ""
    delete_confirmed(
        f"runs delete {' '.join(map(str, ids))}",
        f"run{plural} {', '.join(map(str, ids))}",
        lambda dry_run: STATE.repository.delete_runs(ids, dry_run=dry_run),
        yes=yes,
        vacuum=vacuum,
        json_output=json_output,
    )


@contextmanager
def _named(command: str) -> Iterator[None]:
    """The store's value errors in the block as bad input the user typed (exit 2), named
    after ``command``."""
    try:
        yield
    except InvalidValueError as exc:
        raise InvalidConfigError(f"{command}: {exc}") from None


def _report(run: RunRecord, sentence: str, json_output: bool) -> None:
    from api_cli.views import run_dict

    if json_output:
        print_json(run_dict(run))
    else:
        tell(sentence)


def _report_many(runs: list[RunRecord], sentence: str, json_output: bool) -> None:
    from api_cli.views import run_dict

    if json_output:
        print_json([run_dict(run) for run in runs])
    else:
        tell(sentence)


def _tags_text(run: RunRecord) -> str:
    if not run.tags:
        return "none"
    return literal(", ".join(f"{key}={value}" for key, value in run.tags.items()))


def _ids_text(runs: list[RunRecord]) -> str:
    return f"run{'s' if len(runs) > 1 else ''} {', '.join(str(run.id) for run in runs)}"
