"""``trainq metrics``: a run's per-step loss and accuracy."""

from __future__ import annotations

from typing import Annotated

import typer

from api_cli.output import (
    Format,
    FormatOption,
    JsonShorthand,
    chosen_format,
    print_csv,
    print_json,
    print_table,
)
from api_cli.state import STATE
from storage.validation import MAX_ID, MAX_STEPS


def metrics(
    run_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The run's id.")],
    every: Annotated[
        int, typer.Option(min=1, max=MAX_STEPS, help="Keep steps divisible by K (1 = every step).")
    ] = 1,
    first_step: Annotated[
        int | None, typer.Option(min=1, max=MAX_STEPS, help="First step to print.")
    ] = None,
    last_step: Annotated[
        int | None, typer.Option(min=1, max=MAX_STEPS, help="Last step to print.")
    ] = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """Print per-step metrics (step numbers start at 1, like the seed's "Número del lote").

    CSV has the header step,loss,accuracy. In JSON a non-finite loss is null.

    Example: trainq metrics 7 --every 100 --format csv > run7.csv
    """
    output_format = chosen_format(output_format, json_output)
    repository = STATE.repository
    repository.get_run(run_id)  # a clear "no run" error rather than an empty table
    rows = repository.read_metrics(run_id, first_step=first_step, last_step=last_step, every=every)
    if output_format is Format.CSV:
        print_csv(
            ("step", "loss", "accuracy"), [(r.step, repr(r.loss), repr(r.accuracy)) for r in rows]
        )
    elif output_format is Format.JSON:
        print_json([{"step": r.step, "loss": r.loss, "accuracy": r.accuracy} for r in rows])
    else:
        print_table(
            f"run {run_id} metrics",
            ("step", "loss", "accuracy"),
            [(r.step, r.loss, r.accuracy) for r in rows],
        )
