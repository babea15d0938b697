"""How a version's features become the model's inputs, recorded with the version.

uint8 images are divided by 255, as the seed's job always did. Float features are standardised
with the mean and standard deviation of the *training* split only (the test split must not leak
into what the model sees), a constant feature's deviation counting as 1 so it passes unchanged
but centred. The statistics are stored with the version as float32, so eval and predict apply
exactly the numbers training used.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

Float32Array = npt.NDArray[np.float32]

#: Rows summed at a time: bounds the float64 copy made while computing the statistics.
_STATISTICS_BLOCK_ROWS = 4096


class ScalingKind(StrEnum):
    """The two ways features are scaled; the value is what the canonical header stores."""

    DIVIDE_BY_255 = "divide_by_255"  # uint8 images
    STANDARDISE = "standardise"  # float32 features: (x - mean) / std, statistics of train


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Scaling:
    """The scaling of one version: its kind, and for standardising the per-feature statistics."""

    kind: ScalingKind
    mean: Float32Array | None = None  # (D,) float32, only for STANDARDISE
    std: Float32Array | None = None  # (D,) float32, > 0, only for STANDARDISE

    def __post_init__(self) -> None:
        has_statistics = self.mean is not None and self.std is not None
        if has_statistics != (self.kind is ScalingKind.STANDARDISE):
            raise ValueError(f"scaling {self.kind.value} with mean/std given: {has_statistics}")


def scaling_for(x_train: npt.NDArray[np.uint8] | Float32Array) -> Scaling:
    """The scaling of a version whose training features are ``x_train`` (n, D)."""
    if x_train.dtype == np.uint8:
        return Scaling(ScalingKind.DIVIDE_BY_255)
    mean = _column_sums(x_train, None) / x_train.shape[0]
    variance = _column_sums(x_train, mean) / x_train.shape[0]
    std = np.sqrt(variance).astype(np.float32)
    std[std == 0] = 1.0  # a constant feature: centred, never divided by zero
    return Scaling(ScalingKind.STANDARDISE, mean=_frozen(mean.astype(np.float32)), std=_frozen(std))


def apply_scaling(features: npt.NDArray[np.uint8] | Float32Array, scaling: Scaling) -> Float32Array:
    """The model's float32 inputs for ``features`` (n, D) of the version ``scaling`` belongs to.

    The arithmetic is the training step's: ``float32(x) / 255`` for images, and
    ``(float32(x) - mean) / std`` in float32 for features.
    """
    if scaling.kind is ScalingKind.DIVIDE_BY_255:
        return features.astype(np.float32) / np.float32(255.0)
    assert scaling.mean is not None and scaling.std is not None  # guaranteed by __post_init__
    return (features.astype(np.float32) - scaling.mean) / scaling.std


def _column_sums(
    x: npt.NDArray[np.uint8] | Float32Array, mean: npt.NDArray[np.float64] | None
) -> npt.NDArray[np.float64]:
    """Per-column sums of ``x`` (or of its squared deviations from ``mean``), in float64.

    Fixed blocks of rows, each summed by NumPy in its fixed order, in float64, then rounded to
    float32: the same data give the same statistics, and so the same content hash, wherever they
    are added (a different rounding could only make a second version, never a wrong one).
    """
    total = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, x.shape[0], _STATISTICS_BLOCK_ROWS):
        block = x[start : start + _STATISTICS_BLOCK_ROWS].astype(np.float64)
        if mean is not None:
            block -= mean
            block *= block
        total += block.sum(axis=0)
    return total


def _frozen(array: Float32Array) -> Float32Array:
    array.flags.writeable = False
    return array
