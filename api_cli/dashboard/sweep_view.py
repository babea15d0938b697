"""The sweep page's data: trials and rung decisions (from ``worker.sweep_report``, the same
reader as ``trainq sweep show``), every trial's validation curve, and each parameter against the
trials' final metric as scatter points laid out for a small inline SVG.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from api_cli.dashboard.views import finite
from worker.sweep_report import SweepReport, TrialView, sweep_report
from worker.sweep_spec import Distribution, Objective

if TYPE_CHECKING:
    from storage import Repository

#: Size of one parameter's scatter plot, in SVG user units (the plot area inside a margin).
PLOT_WIDTH = 260
PLOT_HEIGHT = 160
_MARGIN = 30
#: Space between the plot area's edge and the outermost points (a mark is never cut in half).
_INSET = 8


def sweep_page(repository: Repository, sweep_id: int) -> dict[str, Any]:
    """Everything the sweep page shows.

    Raises:
        SweepNotFoundError: no sweep has this id.
    """
    report = sweep_report(repository, sweep_id)
    best = report.best
    return {
        "sweep": report.to_json(),
        "metric": report.spec.objective.value,
        "trials": [_trial_row(trial, best) for trial in report.trials],
        "rung_results": [
            {
                "rung_step": r.rung_step,
                "trial": r.trial,
                "run_id": r.run_id,
                "objective": r.objective,
                "continued": r.continued,
            }
            for r in repository.list_rung_results(sweep_id)
        ],
        "best": _trial_row(best, best) if best else None,
        "parameters": [_scatter(report, name) for name in _varying(report)],
    }


def _trial_row(trial: TrialView, best: TrialView | None) -> dict[str, Any]:
    return {
        "trial": trial.trial,
        "run_id": trial.run_id,
        "status": trial.status,
        "params": trial.params,
        "steps_done": trial.steps_done,
        "steps": trial.steps,
        "objective": finite(trial.objective),
        "rung_reached": trial.rung_reached,
        "pruned": trial.pruned,
        "best": best is not None and trial.trial == best.trial,
    }


def sweep_curves(repository: Repository, sweep_id: int) -> dict[str, Any]:
    """Every trial's validation metric against step, for the chart (polled while it runs).

    Raises:
        SweepNotFoundError: no sweep has this id.
    """
    report = sweep_report(repository, sweep_id)
    uses_loss = report.spec.objective is Objective.VAL_LOSS
    return {
        "metric": report.spec.objective.value,
        "status": report.sweep.status.value,
        "trials": [
            {
                "trial": t.trial,
                "run_id": t.run_id,
                "pruned": t.pruned,
                "best": report.best is not None and t.trial == report.best.trial,
                "steps": [p.step for p in t.curve],
                "values": [finite(p.loss if uses_loss else p.accuracy) for p in t.curve],
            }
            for t in report.trials
            if t.curve
        ],
    }


def _varying(report: SweepReport) -> list[str]:
    names = [p.name for p in report.spec.parameters]
    return [n for n in names if len({repr(t.params.get(n)) for t in report.trials}) > 1]


def _scatter(report: SweepReport, name: str) -> dict[str, Any]:
    """One parameter against the final metric: points already placed in the plot's box.

    A parameter listed with ``values`` (or any non-number) is categorical: its values evenly
    spaced in file order, each labelled; a ``log_uniform`` one is placed by its log.
    """
    points = [
        (t.params.get(name), t.objective, t) for t in report.trials if t.objective is not None
    ]
    spec = next(p for p in report.spec.parameters if p.name == name)
    log = spec.distribution is Distribution.LOG_UNIFORM
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v, _, _ in points)
    categorical = spec.values is not None or not numeric
    listed = [str(v) for v in spec.values or ()]
    labels = listed + sorted({str(v) for v, _, _ in points} - set(listed))

    def x_of(value: Any) -> float:
        if categorical:
            return float(labels.index(str(value)))
        return math.log10(value) if log and value > 0 else float(value)

    xs = [x_of(v) for v, _, _ in points]
    ys = [float(o) for _, o, _ in points if o is not None]
    # Categories keep their place whichever were scored; a lone one sits in the middle.
    span = [0.0, float(len(labels) - 1)] if categorical and len(labels) > 1 else xs
    place_x = _axis(span, _MARGIN + _INSET, PLOT_WIDTH - _INSET)
    place_y = _axis(ys, PLOT_HEIGHT - _INSET, _INSET)  # SVG's y grows downwards
    if categorical:
        ticks = [{"x": place_x(float(i)), "label": label} for i, label in enumerate(labels)]
    else:
        ticks = [
            {"x": place_x(min(xs, default=0)), "label": _label(min(xs, default=0), log)},
            {"x": place_x(max(xs, default=0)), "label": _label(max(xs, default=0), log)},
        ]
    return {
        "name": name,
        "log": log and not categorical,
        "categorical": categorical,
        "x_ticks": ticks,
        "y_range": (f"{min(ys, default=0):.4g}", f"{max(ys, default=0):.4g}"),
        "points": [
            {
                "x": place_x(x),
                "y": place_y(y),
                "trial": t.trial,
                "pruned": t.pruned,
                "title": f"trial {t.trial}: {name}={value}, {report.spec.objective.value}={y:.4g}",
            }
            for x, y, (value, _, t) in zip(xs, ys, points, strict=True)
        ],
        "width": PLOT_WIDTH + _MARGIN,
        "height": PLOT_HEIGHT + _MARGIN,
        "margin": _MARGIN,
    }


def _axis(values: list[float], start: float, end: float) -> Any:
    low, high = min(values, default=0.0), max(values, default=1.0)
    span = high - low

    def place(value: float) -> float:
        if not span:
            return round((start + end) / 2, 1)  # one value: the middle, not an edge
        return round(start + (value - low) / span * (end - start), 1)

    return place


def _label(value: float, log: bool) -> str:
    return f"{10**value:.3g}" if log else f"{value:.4g}"
