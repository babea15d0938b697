"""Drawing a sweep with matplotlib's Agg backend (no display needed): curves and parameters."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from api_cli.output_file import write_all_or_nothing

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from worker.sweep_report import SweepReport, TrialView


def plot_sweep(report: SweepReport, out: Path) -> None:
    """Top: validation metric against step for every trial (a pruned trial's line ends in an x
    at its rung). Below: one panel per parameter, its value against the trial's final metric."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = [p.name for p in report.spec.parameters if _varies(report, p.name)]
    columns = max(1, min(len(names), 3))
    rows = 1 + math.ceil(len(names) / columns)
    figure = plt.figure(figsize=(4.2 * columns + 2, 3.4 * rows), layout="constrained")
    grid = figure.add_gridspec(rows, columns)
    metric = report.spec.objective.value
    curves = figure.add_subplot(grid[0, :])
    uses_loss = report.spec.objective.value == "val_loss"
    for trial in report.trials:
        _draw_curve(curves, trial, best=report.best is trial, uses_loss=uses_loss)
    curves.set(xlabel="step", ylabel=metric, title=_title(report))
    curves.grid(alpha=0.3)
    for index, name in enumerate(names):
        axis = figure.add_subplot(grid[1 + index // columns, index % columns])
        _draw_parameter(axis, report, name)
        axis.set(xlabel=name, ylabel=f"final {metric}")
        axis.grid(alpha=0.3)
    try:
        image_format = out.suffix.lower().removeprefix(".")
        write_all_or_nothing(
            out, lambda handle: figure.savefig(handle, format=image_format, dpi=110)
        )
    finally:
        plt.close(figure)


def _title(report: SweepReport) -> str:
    pruned = sum(t.pruned for t in report.trials)
    return (
        f"sweep {report.sweep.id}: {len(report.trials)} trials, {pruned} pruned "
        f"(x), best run {report.best.run_id if report.best else '-'} (thick)"
    )


def _draw_curve(axis: Axes, trial: TrialView, *, best: bool, uses_loss: bool) -> None:
    if not trial.curve:
        return
    steps = [point.step for point in trial.curve]
    values = [point.loss if uses_loss else point.accuracy for point in trial.curve]
    (line,) = axis.plot(steps, values, linewidth=2.5 if best else 0.8, alpha=1.0 if best else 0.6)
    if trial.pruned:
        axis.plot(steps[-1], values[-1], marker="x", markersize=7, color=line.get_color())


def _draw_parameter(axis: Axes, report: SweepReport, name: str) -> None:
    points = [(t.params[name], t.objective, t.pruned) for t in report.trials if t.objective]
    numeric = all(isinstance(value, int | float) for value, _, _ in points)
    labels = sorted({str(value) for value, _, _ in points})
    for pruned in (False, True):
        chosen = [(value, objective) for value, objective, p in points if p is pruned]
        if not chosen:
            continue
        xs = [value if numeric else labels.index(str(value)) for value, _ in chosen]
        axis.scatter(
            xs,
            [objective for _, objective in chosen],
            marker="x" if pruned else "o",
            alpha=0.5 if pruned else 0.9,
            label="pruned" if pruned else "finished",
        )
    if not numeric:
        axis.set_xticks(range(len(labels)), labels)
    elif _log_scale(report, name):
        axis.set_xscale("log")
    axis.legend(fontsize="small")


def _varies(report: SweepReport, name: str) -> bool:
    return len({repr(t.params.get(name)) for t in report.trials}) > 1


def _log_scale(report: SweepReport, name: str) -> bool:
    from worker.sweep_spec import Distribution

    return any(
        p.name == name and p.distribution is Distribution.LOG_UNIFORM
        for p in report.spec.parameters
    )
