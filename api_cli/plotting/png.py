"""PNG files through matplotlib's Agg backend (no display needed).

matplotlib is imported inside these functions only: ``trainq --help`` and every other command
must not pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from api_cli.output_file import write_all_or_nothing
from api_cli.plotting.choices import Metric
from api_cli.plotting.curves import Curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Curves are 1,200 x 700 pixels; a confusion matrix 900 x 800.
CURVES_SIZE_PX = (1200, 700)
CONFUSION_SIZE_PX = (900, 800)
_DPI = 100


def save_curves(curves: Sequence[Curve], metric: Metric, path: Path, *, smoothing: float) -> None:
    """Draw every curve on one pair of axes: the bucket means faint, the smoothed line solid."""
    figure = _figure(CURVES_SIZE_PX)
    axes = figure.add_subplot()
    for index, curve in enumerate(curves):
        colour = f"C{index % 10}"
        axes.plot(curve.steps, curve.means, color=colour, alpha=0.25, linewidth=0.8)
        axes.plot(curve.steps, curve.smoothed, color=colour, linewidth=1.8, label=curve.label)
    axes.set_xlabel("step")
    axes.set_ylabel(f"{metric.value} (training batch)")
    axes.set_title(
        f"{metric.value} per step — faint: bucket means, solid: EMA smoothing {smoothing:g}"
    )
    axes.grid(alpha=0.3)
    axes.ticklabel_format(axis="x", style="plain")
    axes.xaxis.set_major_formatter("{x:,.0f}")
    if metric is Metric.LOSS and _spans_decades(curves):
        axes.set_yscale("log")
    axes.legend(loc="best")
    _save(figure, path)


def save_confusion(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], title: str, path: Path
) -> None:
    """Draw a confusion matrix (rows: true class, columns: predicted) with counts in the cells."""
    matrix = np.asarray(confusion, dtype=np.int64)
    figure = _figure(CONFUSION_SIZE_PX)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, labels=list(class_names), rotation=45, ha="right")
    axes.set_yticks(ticks, labels=list(class_names))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(
            column,
            row,
            f"{count}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if count > threshold else "black",
        )
    _save(figure, path)


def _figure(size_px: tuple[int, int]) -> Figure:
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit: works on servers and in CI
    from matplotlib.figure import Figure

    width_px, height_px = size_px
    return Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI, layout="tight")


def _save(figure: Figure, path: Path) -> None:
    # No bbox_inches="tight": the file must have exactly the documented size.
    write_all_or_nothing(path, lambda handle: figure.savefig(handle, format="png", dpi=_DPI))


def _spans_decades(curves: Sequence[Curve]) -> bool:
    values = np.concatenate([curve.smoothed for curve in curves]) if curves else np.empty(0)
    values = values[np.isfinite(values) & (values > 0)]
    return bool(values.size) and float(values.max() / values.min()) > 30
