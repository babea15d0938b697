"""``trainq sweep archive|unarchive|delete``: a sweep is archived or deleted with its trials."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.output import print_json, tell
from api_cli.removal import VacuumOption, YesOption
from api_cli.state import STATE
from storage.validation import MAX_ID

if TYPE_CHECKING:
    from api_cli.help_format import TrainqTyper
    from storage.sweep_records import SweepRecord

SweepId = Annotated[
    int, typer.Argument(min=1, max=MAX_ID, help="The sweep's id.", show_default=False)
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def register(app: TrainqTyper) -> None:
    """Add the commands to ``trainq sweep``."""
    app.command("archive")(archive)
    app.command("unarchive")(unarchive)
    app.command("delete")(delete)


def archive(sweep_id: SweepId, json_output: JsonOutput = False) -> None:
    """Archive a finished sweep with its trials: `sweep list` and `runs list` hide them unless
    --archived; nothing is deleted. A running sweep is refused (cancel it first).

    Example: trainq sweep archive 3
    """
    sweep = STATE.repository.archive_sweep(sweep_id)
    _report(
        sweep,
        f"archived sweep {sweep_id} with its trials: `trainq sweep list --archived` shows it, "
        f"`trainq sweep unarchive {sweep_id}` brings it back",
        json_output,
    )


def unarchive(sweep_id: SweepId, json_output: JsonOutput = False) -> None:
    """Bring an archived sweep and its trials back into `sweep list` and `runs list`.

    Example: trainq sweep unarchive 3
    """
    sweep = STATE.repository.unarchive_sweep(sweep_id)
    _report(sweep, f"unarchived sweep {sweep_id} with its trials", json_output)


def delete(
    sweep_id: SweepId,
    yes: YesOption = False,
    vacuum: VacuumOption = False,
    json_output: JsonOutput = False,
) -> None:
    """Delete a finished sweep for good with every trial it ran (their metrics, checkpoints,
    evaluations, rung results). Asks first unless --yes; says how much it freed.

    A running sweep, or one with a trial still queued or running, is refused (cancel it
    first: trainq sweep cancel ID).

    Example: trainq sweep delete 3 --yes
    """
    from api_cli.removal import delete_confirmed

    delete_confirmed(
        f"sweep delete {sweep_id}",
        f"sweep {sweep_id} with its trials",
        lambda dry_run: STATE.repository.delete_sweep(sweep_id, dry_run=dry_run),
        yes=yes,
        vacuum=vacuum,
        json_output=json_output,
    )


def _report(sweep: SweepRecord, sentence: str, json_output: bool) -> None:
    if json_output:
        archived_at = sweep.archived_at
        print_json(
            {
                "id": sweep.id,
                "name": sweep.name,
                "status": sweep.status.value,
                "archived_at": None if archived_at is None else archived_at.isoformat(),
            }
        )
    else:
        tell(sentence)
