"""``trainq evals``: the stored evaluation results — list them across runs, show one in full.

A group of its own rather than ``trainq eval list``: ``trainq eval`` is a command whose argument is
a run id, and making it a group would turn ``trainq eval 7`` into "no such command '7'".
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api_cli.help_format import TrainqTyper
from api_cli.output import (
    Format,
    chosen_format,
    literal,
    print_csv,
    print_json,
    print_table,
    stdout,
)
from api_cli.state import STATE
from api_cli.submission import JsonOption
from storage.validation import MAX_ID
from worker.choices import Split

if TYPE_CHECKING:
    from storage.records import EvaluationRecord, RunRecord

app = TrainqTyper(
    help="Stored evaluation results: list them across runs, show one in full.",
    no_args_is_help=True,
    epilog="Examples:\n\n  trainq evals list --sort accuracy\n\n"
    "  trainq evals list --run 3 --run 4 --split test --format csv\n\n  trainq evals show 12",
)

#: Columns of ``trainq evals list``: table headers, JSON keys and CSV columns alike.
LIST_HEADER = (
    "id",
    "run_id",
    "run_name",
    "checkpoint_step",
    "split",
    "loss",
    "accuracy",
    "differing_hyperparameters",
    "created_at",
)


class SortKey(StrEnum):
    """Orders of ``trainq evals list``."""

    ACCURACY = "accuracy"  # best first
    LOSS = "loss"  # lowest first
    CREATED = "created"  # newest first


@app.command(
    "list",
    epilog="Examples:\n\n  trainq evals list --sort accuracy --split test\n\n"
    "  trainq evals list --run 3 --run 4 --format csv > evals.csv",
)
def list_evaluations(
    run: Annotated[
        list[int] | None,
        typer.Option(min=1, max=MAX_ID, help="Only this training run's results; repeatable."),
    ] = None,
    split: Annotated[Split | None, typer.Option(help="Only results on this split.")] = None,
    sort: Annotated[
        SortKey, typer.Option(help="accuracy (best first), loss (lowest first), created (newest).")
    ] = SortKey.CREATED,
    limit: Annotated[int, typer.Option(min=1, max=MAX_ID, help="At most this many.")] = 20,
    output_format: Annotated[
        Format, typer.Option("--format", help="table, json or csv.")
    ] = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """List stored evaluations with their run's name and the hyperparameters that differ
    between the listed runs (those shared by all are left out)."""
    shown = chosen_format(output_format, json_output)
    client = STATE.client
    if run:
        client.training_runs(run)  # a clear error for an id that is no training run
    evaluations = STATE.repository.search_evaluations(
        run_ids=run or None, split=None if split is None else split.value
    )
    evaluations = sorted(evaluations, key=_sort_key(sort))[:limit]
    rows = list_rows(evaluations, client.training_runs({e.run_id for e in evaluations}))
    if shown is Format.JSON:
        print_json(rows)
    elif shown is Format.CSV:
        print_csv(LIST_HEADER, [[row[name] for name in LIST_HEADER] for row in rows])
    elif not rows:
        stdout.print("no stored evaluations match; `trainq eval RUN_ID` evaluates a run")
    else:
        _print_list_table(rows)


@app.command(
    "show",
    epilog="Examples:\n\n  trainq evals show 12\n\n"
    "  trainq evals show 12 --format csv  # one line per class",
)
def show_evaluation(
    evaluation_id: Annotated[
        int, typer.Argument(min=1, max=MAX_ID, help="An evaluation id (see `trainq evals list`).")
    ],
    output_format: Annotated[
        Format, typer.Option("--format", help="table, json or csv (one line per class).")
    ] = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """One evaluation in full: loss, accuracy, per-class accuracy by class name, confusions."""
    from api_cli.evaluation_view import print_evaluation

    shown = chosen_format(output_format, json_output)
    from api_cli.class_names import run_class_names

    evaluation = STATE.repository.get_evaluation(evaluation_id)
    names = run_class_names(STATE.repository, evaluation.run_id)
    print_evaluation(evaluation, shown, class_names=names)


def list_rows(evaluations: list[EvaluationRecord], runs: list[RunRecord]) -> list[dict[str, Any]]:
    """One row per evaluation, keyed by ``LIST_HEADER``; hyperparameters are those that differ."""
    from api_cli.comparison import compare_runs

    comparison = compare_runs(runs, [{} for _ in runs])
    by_id = {row["run_id"]: row for row in comparison.runs}
    names = {run.id: run.name for run in runs}
    return [
        {
            "id": e.id,
            "run_id": e.run_id,
            "run_name": names.get(e.run_id),
            "checkpoint_step": e.checkpoint_step,
            "split": e.split,
            "loss": e.loss,
            "accuracy": e.accuracy,
            "differing_hyperparameters": {
                name: by_id[e.run_id].get(name) for name in comparison.differing
            },
            "created_at": e.created_at.isoformat(timespec="seconds"),
        }
        for e in evaluations
    ]


def _print_list_table(rows: list[dict[str, Any]]) -> None:
    """The table without the hyperparameters, then one line per run with those that differ
    (in a column they would squeeze every other one at 80 columns)."""
    header = [name for name in LIST_HEADER if name != "differing_hyperparameters"]
    cells = [[_table_cell(name, row[name]) for name in header] for row in rows]
    print_table(None, header, cells, wrap=("run_name",))
    differing = {row["run_id"]: row["differing_hyperparameters"] for row in rows}
    if not any(differing.values()):
        return
    stdout.print("differing_hyperparameters:", highlight=False)
    for run_id, values in sorted(differing.items()):
        pairs = literal(" ".join(f"{name}={value}" for name, value in values.items()))
        stdout.print(f"  run {run_id}: {pairs}", highlight=False)


def _sort_key(sort: SortKey) -> Any:
    """Best first; an evaluation whose metric is NaN (diverged weights) goes last."""

    def key(evaluation: EvaluationRecord) -> tuple[bool, float, float]:
        newest_first = -evaluation.created_at.timestamp()
        if sort is SortKey.CREATED:
            return (False, newest_first, -evaluation.id)
        value = evaluation.accuracy if sort is SortKey.ACCURACY else evaluation.loss
        ordered = -value if sort is SortKey.ACCURACY else value
        return (math.isnan(value), 0.0 if math.isnan(value) else ordered, newest_first)

    return key


def _table_cell(name: str, value: Any) -> Any:
    if name == "created_at":
        return str(value)[5:16].replace("T", " ")  # "12-02 01:50": the year is noise here
    return value
