"""Training curves ready to draw: read downsampled from storage, bucketed, smoothed.

A run can have millions of steps; a plot has a thousand or so points across. So the curve is
read with ``every=k`` (storage keeps one step in k, as NumPy arrays: no per-step Python objects),
about :data:`SAMPLES_PER_POINT` samples per point are averaged into each point (a batch's loss is
noisy; the mean of a few spread over the bucket is an unbiased estimate of the bucket's mean), and
the points are smoothed with a bias-corrected exponential moving average, as TensorBoard does.
Non-finite values (a diverged run) are left out of the means rather than poisoning them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from api_cli.output import visible
from api_cli.plotting.choices import DEFAULT_SMOOTHING, Metric

if TYPE_CHECKING:
    from api_cli.sdk import Client
    from storage.records import RunRecord

FloatArray = npt.NDArray[np.float64]

#: Points per curve in a PNG; a terminal chart asks for its own (its width in dots).
DEFAULT_POINTS = 1_000
#: Stored steps read per plotted point, at most.
SAMPLES_PER_POINT = 8


@dataclass(frozen=True)
class Curve:
    """One run's metric, downsampled to ``len(steps)`` points."""

    run_id: int
    label: str
    #: The last step of each point's bucket.
    steps: FloatArray
    #: The mean of each bucket's samples (NaN where a bucket held no finite value).
    means: FloatArray
    #: ``means`` smoothed with the bias-corrected EMA.
    smoothed: FloatArray


def run_label(run: RunRecord) -> str:
    """``run 7 (recipe)``: the id, and the name when there is one (control characters shown as
    escapes: the label goes into terminal charts as it is)."""
    return f"run {run.id} ({visible(run.name, one_line=True)})" if run.name else f"run {run.id}"


def stride_for(steps_done: int, points: int) -> int:
    """The ``every=`` that reads at most ``SAMPLES_PER_POINT * points`` of ``steps_done`` steps."""
    budget = max(1, points) * SAMPLES_PER_POINT
    return max(1, math.ceil(steps_done / budget))


def load_curve(
    client: Client,
    run: RunRecord,
    metric: Metric,
    *,
    points: int = DEFAULT_POINTS,
    smoothing: float = DEFAULT_SMOOTHING,
) -> Curve:
    """Read ``run``'s ``metric`` downsampled from storage and bucket and smooth it."""
    every = stride_for(run.steps_done, points)
    metrics = client.metrics(run.id, every=every)
    values = metrics.loss if metric is Metric.LOSS else metrics.accuracy
    steps, means = bucket_means(metrics.steps, values, points)
    return Curve(run.id, run_label(run), steps, means, smooth(means, smoothing))


def bucket_means(
    steps: npt.NDArray[np.int64], values: npt.NDArray[np.float32], points: int
) -> tuple[FloatArray, FloatArray]:
    """Average consecutive samples into at most ``points`` buckets of equal size."""
    count = int(steps.shape[0])
    if count == 0:
        return np.empty(0), np.empty(0)
    per_bucket = max(1, math.ceil(count / max(1, points)))
    buckets = math.ceil(count / per_bucket)
    padded = buckets * per_bucket
    finite = np.isfinite(values)
    sums = np.zeros(padded)
    sums[:count] = np.where(finite, values, 0.0)
    counts = np.zeros(padded)
    counts[:count] = finite
    totals = sums.reshape(buckets, per_bucket).sum(axis=1)
    filled = counts.reshape(buckets, per_bucket).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(filled > 0, totals / np.maximum(filled, 1), np.nan)
    ends = np.minimum(np.arange(1, buckets + 1) * per_bucket, count) - 1
    return steps[ends].astype(np.float64), means


def smooth(values: FloatArray, weight: float) -> FloatArray:
    """Bias-corrected EMA (TensorBoard's smoothing); NaN points stay NaN and are skipped."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight {weight} must be in [0, 1)")
    smoothed = np.full(values.shape, np.nan)
    average = 0.0
    seen = 0
    for index, value in enumerate(values.tolist()):
        if not math.isfinite(value):
            continue
        seen += 1
        average = weight * average + (1.0 - weight) * value
        smoothed[index] = average / (1.0 - weight**seen)
    return smoothed


def value_range(curves: Sequence[Curve]) -> tuple[float, float]:
    """The smallest and largest finite value over every curve's means (0, 1 if none)."""
    finite = [curve.means[np.isfinite(curve.means)] for curve in curves]
    values = np.concatenate(finite) if finite else np.empty(0)
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    if low == high:
        return low - 0.5, high + 0.5
    return low, high
