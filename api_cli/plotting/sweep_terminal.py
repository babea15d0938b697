"""A sweep drawn in the terminal: every trial's validation curve, then each parameter's effect.

The curves share one braille chart (``api_cli/plotting/terminal.py``): a pruned trial's line
stops where ASHA stopped it, at a cross; the best trial's line is drawn last, in its own colour,
and ends at a ``●``, so it stays visible over the others even without colour. Below, one small
chart per parameter that varies: its value (across) against the trial's final metric (down), one
character per trial, ``●`` for a trial that trained to the end and a cross for a pruned one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

from rich.text import Text

from api_cli.plotting.terminal import (
    MIN_WIDTH,
    BrailleCanvas,
    format_number,
    place_labels,
    scale_to_dots,
    x_axis,
)

if TYPE_CHECKING:
    from worker.sweep_report import SweepReport, TrialView

#: Styles with colour: ordinary trials, then the best one.
TRIAL_STYLE = "cyan"
BEST_STYLE = "bold green"
PRUNED_MARK = "\u00d7"  # a multiplication sign: the cross the PNG draws
END_MARK = "●"
#: Where a parameter's value goes across a chart (its column).
Placer = Callable[[object], int]
#: Rows of each parameter's chart.
PARAMETER_ROWS = 5


def render_sweep(report: SweepReport, *, width: int, height: int, colour: bool) -> list[Text]:
    """The whole picture: the curves chart, then one chart per varying parameter."""
    lines = _curves(report, width=width, height=height, colour=colour)
    for name in varying_parameters(report):
        lines.append(Text())
        lines.extend(_parameter(report, name, width=width, colour=colour))
    return lines


def varying_parameters(report: SweepReport) -> list[str]:
    """The parameters whose value differs between trials, in the file's order."""
    return [
        p.name
        for p in report.spec.parameters
        if len({repr(t.params.get(p.name)) for t in report.trials}) > 1
    ]


def _value(report: SweepReport, trial: TrialView, index: int) -> float:
    point = trial.curve[index]
    return point.loss if report.spec.objective.value == "val_loss" else point.accuracy


def _curves(report: SweepReport, *, width: int, height: int, colour: bool) -> list[Text]:
    metric = report.spec.objective.value
    drawn = [t for t in report.trials if t.curve]
    pruned = sum(t.pruned for t in report.trials)
    best = report.best
    title = Text(
        f"sweep {report.sweep.id} {metric}: {len(drawn)} trials, {PRUNED_MARK} pruned ({pruned})"
    )
    if best is not None:
        title.append(f", {END_MARK} best run {best.run_id}", style=BEST_STYLE if colour else None)
    if not drawn:
        return [title, Text("no trial has a validation result yet")]
    values = [_value(report, t, i) for t in drawn for i in range(len(t.curve))]
    finite = [v for v in values if math.isfinite(v)] or [0.0, 1.0]
    low, high = min(finite), max(finite)
    if low == high:
        low, high = low - 0.5, high + 0.5
    labels = [format_number(high), format_number((low + high) / 2), format_number(low)]
    label_width = max(len(label) for label in labels)
    canvas = BrailleCanvas(max(MIN_WIDTH, width) - label_width - 3, max(4, height))
    x_high = float(max([2, *(t.curve[-1].step for t in drawn)]))
    marks: dict[tuple[int, int], tuple[str, str | None]] = {}
    ordered = sorted(drawn, key=lambda t: best is not None and t.trial == best.trial)
    for trial in ordered:  # the best one last, on top
        is_best = best is not None and trial.trial == best.trial
        end = _draw_trial(canvas, report, trial, 1 if is_best else 0, (0.0, x_high), (low, high))
        if end is not None and (trial.pruned or is_best):
            style = (BEST_STYLE if is_best else TRIAL_STYLE) if colour else None
            marks[end] = (END_MARK if is_best else PRUNED_MARK, style)
    styles = [TRIAL_STYLE, BEST_STYLE] if colour else []
    lines = [title]
    middle = canvas.height_cells // 2
    for index, row in enumerate(canvas.rows(styles, marks)):
        label = {0: labels[0], middle: labels[1], canvas.height_cells - 1: labels[2]}.get(index, "")
        lines.append(Text(f"{label:>{label_width}} {'┤' if label else '│'}") + row)
    lines.append(Text(" " * label_width + " └" + "─" * canvas.width_cells))
    lines.append(Text(" " * (label_width + 2) + x_axis(0, x_high, canvas.width_cells)))
    return lines


def _draw_trial(
    canvas: BrailleCanvas,
    report: SweepReport,
    trial: TrialView,
    series: int,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
) -> tuple[int, int] | None:
    """Join the trial's checkpoints; returns the dot of its last finite point."""
    previous: tuple[int, int] | None = None
    for index, point in enumerate(trial.curve):
        value = _value(report, trial, index)
        if not math.isfinite(value):
            previous = None
            continue
        dot = (
            scale_to_dots(point.step, x_range, canvas.width_dots),
            canvas.height_dots - 1 - scale_to_dots(value, y_range, canvas.height_dots),
        )
        if previous is None:
            canvas.dot(*dot, series)
        else:
            canvas.line(previous, dot, series)
        previous = dot
    return previous


def _parameter(report: SweepReport, name: str, *, width: int, colour: bool) -> list[Text]:
    """One character per trial: the parameter's value across, the final metric down."""
    metric = report.spec.objective.value
    points = [
        (t.params.get(name), t.objective, t.pruned)
        for t in report.trials
        if t.objective is not None and math.isfinite(t.objective)
    ]
    log = _log_scale(report, name)
    title = f"{name}{' (log scale)' if log else ''} against final {metric}"
    if not points:
        return [Text(title)]
    objectives = [objective for _, objective, _ in points if objective is not None]
    low, high = min(objectives), max(objectives)
    labels = [format_number(high), format_number(low)]
    label_width = max(len(label) for label in labels)
    columns = max(MIN_WIDTH, width) - label_width - 3
    place, axis = _x_positions([value for value, _, _ in points], columns, log)
    grid: dict[tuple[int, int], bool] = {}  # (row, column) -> finished (wins over pruned)
    for value, objective, pruned in points:
        row = PARAMETER_ROWS - 1 - scale_to_dots(objective or 0.0, (low, high), PARAMETER_ROWS)
        cell = (row, place(value))
        grid[cell] = grid.get(cell, False) or not pruned
    lines = [Text(f"{title}: {END_MARK} trained to the end, {PRUNED_MARK} pruned")]
    for row in range(PARAMETER_ROWS):
        label = {0: labels[0], PARAMETER_ROWS - 1: labels[1]}.get(row, "")
        line = Text(f"{label:>{label_width}} {'┤' if label else '│'}")
        for column in range(columns):
            finished = grid.get((row, column))
            if finished is None:
                line.append(" ")
            else:
                style = (TRIAL_STYLE if finished else "dim") if colour else None
                line.append(END_MARK if finished else PRUNED_MARK, style=style)
        lines.append(line)
    lines.append(Text(" " * label_width + " └" + "─" * columns))
    lines.append(Text(" " * (label_width + 2) + axis))
    return lines


def _x_positions(values: Sequence[object], columns: int, log: bool) -> tuple[Placer, str]:
    """Where each value goes across, and the axis line under it."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        transform: Callable[[float], float] = (
            math.log10 if log and min(numbers) > 0 else (lambda v: v)
        )
        low, high = transform(min(numbers)), transform(max(numbers))

        def numeric(value: object) -> int:
            return scale_to_dots(transform(float(cast("float", value))), (low, high), columns)

        ends = [format_number(min(numbers)), format_number(max(numbers))]
        axis = place_labels([(ends[0], 0), (ends[1], columns - len(ends[1]))], columns)
        return numeric, axis
    labels = sorted({str(v) for v in values})
    spacing = columns / len(labels)
    starts = {label: int(spacing * (i + 0.5)) for i, label in enumerate(labels)}

    def categorical(value: object) -> int:
        return starts[str(value)]

    axis = place_labels(
        [(label, max(0, start - len(label) // 2)) for label, start in starts.items()], columns
    )
    return categorical, axis


def _log_scale(report: SweepReport, name: str) -> bool:
    return any(
        p.name == name and p.distribution is not None and p.distribution.value == "log_uniform"
        for p in report.spec.parameters
    )
