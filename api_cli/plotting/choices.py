"""The plot command's choices, kept apart from NumPy so that ``trainq --help`` stays light."""

from __future__ import annotations

from enum import StrEnum

#: Default EMA weight: 0 draws the bucket means as they are, 0.99 nearly flattens the curve.
DEFAULT_SMOOTHING = 0.6


class Metric(StrEnum):
    """Which per-step metric to draw."""

    LOSS = "loss"
    ACCURACY = "accuracy"
