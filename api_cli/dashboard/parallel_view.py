"""The sweep page's parallel coordinates: one vertical axis per parameter that varies between the
trials and one for the metric, one line per scored trial (the page's own script draws them).

The axes say how to place a value, so the script needs no knowledge of sweep files: a parameter
listed with ``values`` is categorical (its values evenly spaced, in file order, numbers or not),
a ``log_uniform`` one is on a log axis, any other number on a linear one.
"""

from __future__ import annotations

import math
from typing import Any

from api_cli.dashboard.views import finite
from worker.sweep_report import SweepReport, TrialView
from worker.sweep_spec import Distribution, ParameterSpec

#: Axis kinds, as the page's script reads them.
CATEGORICAL = "categorical"
LOG = "log"
LINEAR = "linear"


def parallel_coordinates(report: SweepReport) -> dict[str, Any]:
    """The axes (parameters that vary, then the metric) and one line per trial with a metric.

    Trials without a metric yet (planned, running before their first checkpoint, failed early)
    are counted in ``unscored``, not drawn: a line needs a value on every axis.
    """
    scored = [t for t in report.trials if finite(t.objective) is not None]
    best = report.best
    axes = [
        _parameter_axis(spec, [t.params.get(spec.name) for t in scored])
        for spec in report.spec.parameters
        if len({_key(t.params.get(spec.name)) for t in scored}) > 1
    ]
    metric = report.spec.objective.value
    objectives = [float(t.objective) for t in scored if t.objective is not None]
    axes.append(
        {
            "name": metric,
            "kind": LINEAR,
            "low": min(objectives, default=0.0),
            "high": max(objectives, default=1.0),
            "metric": True,
            "maximize": report.spec.maximize,
        }
    )
    return {
        "metric": metric,
        "status": report.sweep.status.value,
        "axes": axes,
        "trials": [_line(t, best, axes[:-1]) for t in scored],
        "unscored": len(report.trials) - len(scored),
    }


def _key(value: Any) -> str:
    """A value as a category key: 1 and 1.0 and True stay apart, as the sweep file wrote them."""
    return f"{type(value).__name__}:{value!r}"


def _parameter_axis(spec: ParameterSpec, values: list[Any]) -> dict[str, Any]:
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if spec.values is not None or not numeric:
        listed = [str(v) for v in spec.values or ()]
        seen = sorted({str(v) for v in values} - set(listed))  # stored values the file lost
        return {"name": spec.name, "kind": CATEGORICAL, "categories": listed + seen}
    log = spec.distribution is Distribution.LOG_UNIFORM and all(v > 0 for v in values)
    return {
        "name": spec.name,
        "kind": LOG if log else LINEAR,
        "low": float(min(values)),
        "high": float(max(values)),
    }


def _line(trial: TrialView, best: TrialView | None, axes: list[dict[str, Any]]) -> dict[str, Any]:
    """One trial: its value on each axis (categories as their label), how it ended."""
    values: list[Any] = []
    for axis in axes:
        value = trial.params.get(axis["name"])
        if axis["kind"] == CATEGORICAL:
            values.append(str(value))
        else:
            values.append(float(value) if value is not None and math.isfinite(value) else None)
    values.append(finite(trial.objective))
    params = ", ".join(f"{a['name']}={trial.params.get(a['name'])}" for a in axes)
    return {
        "trial": trial.trial,
        "run_id": trial.run_id,
        "status": trial.status,
        "pruned": trial.pruned,
        "pruned_at": trial.rung_reached if trial.pruned else None,
        "best": best is not None and trial.trial == best.trial,
        "values": values,
        "title": f"trial {trial.trial} (run {trial.run_id}, {trial.status}"
        + (f", pruned at step {trial.steps_done}" if trial.pruned else "")
        + f"): {params}",
    }
