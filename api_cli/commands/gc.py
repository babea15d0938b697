"""``trainq gc``: thin the checkpoints of finished runs and say how much space that frees."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.dataset_view import human_bytes
from api_cli.output import (
    Format,
    FormatOption,
    JsonShorthand,
    chosen_format,
    print_csv,
    print_json,
    say,
    stderr,
    stdout,
)
from api_cli.state import STATE
from storage.retention_records import CheckpointKeep
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from storage.retention_records import CheckpointThinning, RetentionReport

EPILOG = (
    "Examples:\n\n  trainq gc --dry-run\n\n  trainq gc --keep-checkpoints best --older-than 30d\n\n"
    "  trainq gc --vacuum --format json"
)
#: The columns of ``--format csv``: one line per run that loses a checkpoint.
CSV_HEADER = ("run_id", "removed", "freed_bytes", "kept_steps", "removed_steps")
#: ``30d``, ``12h``, ``90m``, ``45s``, ``2w``: an age as ``--older-than`` takes it.
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS_PER = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def gc(
    keep_checkpoints: Annotated[
        CheckpointKeep,
        typer.Option(
            "--keep-checkpoints",
            help="last: each finished run keeps its newest checkpoint (its final weights); "
            "best: also the one with the best validation accuracy; all: every one.",
        ),
    ] = CheckpointKeep.LAST,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Only runs that finished at least this long ago: 45s, 90m, 12h, 30d or 2w.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")
    ] = False,
    vacuum: Annotated[
        bool,
        typer.Option(
            "--vacuum",
            help="Then shrink the SQLite file (VACUUM: rewrites it, needs as much free disk "
            "and the database to itself for a moment). PostgreSQL reuses the space by itself.",
        ),
    ] = False,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """Thin the checkpoints of finished runs and say how much space that frees.

    Only succeeded, failed and cancelled runs are touched: a queued or running run resumes from
    its checkpoints. Each keeps its newest checkpoint (a succeeded run's final weights) and any
    checkpoint an evaluation still queued or running will read. JSON and CSV list every run that
    loses a checkpoint; the table gives the total.
    """
    output_format = chosen_format(output_format, json_output)
    older_than_s = None if older_than is None else parse_age(older_than)
    client = STATE.client
    with _progress_line() as on_run:
        report = client.gc(
            keep_checkpoints=keep_checkpoints,
            older_than_s=older_than_s,
            dry_run=dry_run,
            vacuum=vacuum,
            on_run=on_run,
        )
    if output_format is Format.JSON:
        print_json(report_json(report))
    elif output_format is Format.CSV:
        print_csv(CSV_HEADER, [_csv_row(run) for run in report.runs])
    else:
        stdout.print(total_line(report), highlight=False)
    if dry_run and vacuum:
        say("--vacuum skipped: nothing is removed on a dry run")
    elif not dry_run and report.removed and not vacuum:
        say(_space_hint(STATE.settings.database_url.startswith("sqlite")))
    if report.vacuumed and report.reclaimed_bytes is not None:
        say(f"VACUUM: the SQLite file shrank by {human_bytes(report.reclaimed_bytes)}")


def parse_age(text: str) -> float:
    """``30d`` → 2,592,000 seconds.

    Raises:
        InvalidConfigError: (exit 2) not a number with one of the units s, m, h, d, w.
    """
    from storage.redaction import excerpt

    match = _AGE.match(text)
    if match is None:
        raise InvalidConfigError(
            f"--older-than {excerpt(text)}: give a number and a unit, e.g. 30d (days), 12h, "
            "90m, 45s or 2w"
        )
    return float(match.group(1)) * _SECONDS_PER[match.group(2)]


def total_line(report: RetentionReport) -> str:
    """``removed 36 checkpoints from 12 runs, freeing 2.3 MiB (2,412,288 bytes)``."""
    if not report.removed:
        return f"nothing to remove (--keep-checkpoints {report.keep.value})"
    verb = "would remove" if report.dry_run else "removed"
    runs = len(report.runs)
    return (
        f"{verb} {report.removed:,} checkpoint{'s' if report.removed != 1 else ''} from "
        f"{runs:,} run{'s' if runs != 1 else ''}, freeing {human_bytes(report.freed_bytes)} "
        f"({report.freed_bytes:,} bytes)"
    )


def report_json(report: RetentionReport) -> dict[str, object]:
    """The report as ``--format json`` prints it: totals, then one object per run."""
    return {
        "dry_run": report.dry_run,
        "keep_checkpoints": report.keep.value,
        "removed": report.removed,
        "freed_bytes": report.freed_bytes,
        "vacuumed": report.vacuumed,
        "reclaimed_bytes": report.reclaimed_bytes,
        "runs": [dict(zip(CSV_HEADER, _csv_row(run), strict=True)) for run in report.runs],
    }


def _csv_row(run: CheckpointThinning) -> tuple[object, ...]:
    return (run.run_id, run.removed, run.freed_bytes, list(run.kept_steps), list(run.removed_steps))


def _space_hint(sqlite: bool) -> str:
    if sqlite:
        return "the SQLite file keeps its size; `trainq gc --vacuum` shrinks it"
    return "PostgreSQL reuses the freed space for new rows (autovacuum)"


@contextmanager
def _progress_line() -> Iterator[Callable[[CheckpointThinning, int, int], None] | None]:
    """A transient progress line on stderr while a terminal watches; nothing otherwise."""
    if not stderr.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("thinning checkpoints"),
        BarColumn(bar_width=None),
        MofNCompleteColumn(),
        TextColumn("runs"),
        console=stderr,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=None)

        def advance(_: CheckpointThinning, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance
