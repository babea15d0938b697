"""``trainq plot``: training curves (or a confusion matrix) as a PNG, or drawn in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.output import literal, stderr, stdout
from api_cli.plotting.choices import DEFAULT_SMOOTHING, Metric
from api_cli.state import STATE
from storage.errors import InvalidStateError, NotFoundError
from worker.choices import Split
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from datetime import datetime

    from storage.records import EvaluationRecord, RunRecord

EPILOG = """
Examples:

  trainq plot 3 4 5                        # loss curves in the terminal

  trainq plot 3 4 5 --metric accuracy --out curves.png

  trainq plot 7 --confusion --out cm.png   # run 7's newest test evaluation
"""

#: Terminal charts are at most this many rows high (plus axes and legend).
MAX_CHART_ROWS = 16


def plot(
    run_ids: Annotated[list[int], typer.Argument(help="Training run ids, overlaid.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Write a PNG here (1200x700; a confusion matrix 900x800)."),
    ] = None,
    metric: Annotated[Metric, typer.Option(help="Which per-step metric.")] = Metric.LOSS,
    smoothing: Annotated[
        float, typer.Option(help="EMA weight in [0, 1); 0 draws bucket means unsmoothed.")
    ] = DEFAULT_SMOOTHING,
    confusion: Annotated[
        bool,
        typer.Option("--confusion", help="Plot the confusion matrix of one run's evaluation."),
    ] = False,
    split: Annotated[
        Split | None,
        typer.Option(help="With --confusion: the newest evaluation on this split (default test)."),
    ] = None,
) -> None:
    """Plot runs' training curves (or a confusion matrix) to a PNG, or in the terminal.

    Curves are read downsampled from storage (a few thousand steps per run, however long the
    run), averaged into about a thousand points and smoothed with an EMA; the faint line in the
    PNG is the unsmoothed bucket means. Without --out the chart is drawn in the terminal.
    """
    if not 0.0 <= smoothing < 1.0:
        raise InvalidConfigError(f"--smoothing {smoothing}: use a number in [0, 1), e.g. 0.6")
    if out is not None:
        _check_out(out)
    runs = STATE.client.training_runs(run_ids)
    if confusion:
        if len(runs) != 1:
            raise InvalidConfigError("--confusion plots one run: give exactly one RUN_ID")
        _plot_confusion(runs[0], split, out)
    else:
        if split is not None:
            raise InvalidConfigError("--split chooses the evaluation for --confusion; add it")
        _plot_curves(runs, metric, smoothing, out)


def _check_out(out: Path) -> None:
    if out.suffix.lower() != ".png":
        raise InvalidConfigError(f"--out {out}: the file name must end in .png")
    if not out.parent.is_dir():
        raise InvalidConfigError(f"--out {out}: the directory {out.parent} does not exist")


def _plot_curves(runs: list[RunRecord], metric: Metric, smoothing: float, out: Path | None) -> None:
    from api_cli.plotting.curves import DEFAULT_POINTS, load_curve

    # A terminal chart has two braille dots per column; a PNG about a thousand points across.
    points = DEFAULT_POINTS if out is not None else (max(stdout.width, 40) - 12) * 2
    curves = []
    for run in runs:
        curve = load_curve(STATE.client, run, metric, points=points, smoothing=smoothing)
        if curve.steps.size:
            curves.append(curve)
        else:
            stderr.print(f"run {run.id} has no metrics yet ({run.status}); left out")
    if not curves:
        raise InvalidStateError("nothing to plot: none of these runs has trained a chunk yet")
    if out is not None:
        from api_cli.plotting.png import save_curves

        save_curves(curves, metric, out, smoothing=smoothing)
        stdout.print(f"wrote {literal(out)} ({len(curves)} run(s), {metric.value})")
        return
    from api_cli.plotting.terminal import render_chart

    colour = stdout.is_terminal and stdout.color_system is not None
    height = max(6, min(MAX_CHART_ROWS, stdout.height - 5 - len(curves)))
    title = f"{metric.value} per step (training batch; EMA smoothing {smoothing:g})"
    for line in render_chart(
        curves,
        title=title,
        width=stdout.width,
        height=height,
        colour=colour,
        higher_is_better=metric is Metric.ACCURACY,
    ):
        stdout.print(line)


def _plot_confusion(run: RunRecord, split: Split | None, out: Path | None) -> None:
    from api_cli.class_names import run_class_names
    from api_cli.evaluation_json import class_name

    evaluation = _newest_evaluation(run, split)
    known = run_class_names(STATE.repository, run.id)
    names = [class_name(index, known) for index in range(len(evaluation.confusion))]
    title = (
        f"run {run.id}{f' ({run.name})' if run.name else ''}: {evaluation.split} split at step "
        f"{evaluation.checkpoint_step:,}, accuracy {evaluation.accuracy:.4f}"
    )
    if out is not None:
        from api_cli.plotting.png import save_confusion

        save_confusion(evaluation.confusion, names, title, out)
        stdout.print(f"wrote {literal(out)} (confusion matrix, evaluation {evaluation.id})")
        return
    from api_cli.plotting.confusion_table import print_confusion

    print_confusion(evaluation.confusion, names, title)


def _newest_evaluation(run: RunRecord, split: Split | None) -> EvaluationRecord:
    """The newest evaluation on ``split``; without one, the test split's (the split that only
    reports), else the newest on any split, said on stderr.

    Raises:
        InvalidConfigError: ``--split val`` on a run that held out no validation images.
        NotFoundError: no such evaluation; the message gives a command that makes one.
    """
    held_out = int(run.config.get("val_size") or 0) > 0
    if split is Split.VAL and not held_out:
        raise InvalidConfigError(
            f"--split val: run {run.id} held out no validation images (trained with "
            f"--val-size 0); plot the test split: drop --split (evaluate it with "
            f"`trainq eval {run.id}` if need be)"
        )
    evaluations = STATE.client.evaluations(run.id)
    chosen = split or Split.TEST
    on_split = [evaluation for evaluation in evaluations if evaluation.split == chosen]
    if not on_split and split is None and evaluations:
        on_split = evaluations
        newest = max(evaluations, key=_newness)
        stderr.print(
            f"run {run.id} has no test evaluation: showing its newest, on the {newest.split} "
            f"split (`trainq eval {run.id}` evaluates the test split)",
            highlight=False,
        )
    if not on_split:
        option = "" if chosen is Split.TEST else f" --split {chosen.value}"
        raise NotFoundError(
            f"run {run.id} has no evaluation on the {chosen.value} split yet; create one with "
            f"`trainq eval {run.id}{option}` (add --wait on a cluster)"
        )
    return max(on_split, key=_newness)


def _newness(evaluation: EvaluationRecord) -> tuple[datetime, int]:
    return (evaluation.created_at, evaluation.id)
