"""The checks every format shares, each turning what a reader found into canonical arrays.

Features become ``(n, D)`` uint8 (images) or float32 (anything else numeric), labels ``(n,)``
int32. Each check names the file, split and array of what it refuses (see ``problems``).
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from worker.datasets.limits import DatasetLimits, describe_bytes
from worker.datasets.problems import Origin, echo, invalid

AnyArray = npt.NDArray[Any]
FeatureArray = npt.NDArray[np.uint8] | npt.NDArray[np.float32]
LabelArray = npt.NDArray[np.int32]

_LABEL_BYTES = 4  # int32
_Scalar = TypeVar("_Scalar", bound=np.generic)


def canonical_bytes(rows: int, features: int, feature_itemsize: int) -> int:
    """Bytes of ``rows`` examples of ``features`` features and one int32 label each."""
    return rows * (features * feature_itemsize + _LABEL_BYTES)


def feature_itemsize(dtype: np.dtype[Any]) -> int:
    """1 for uint8 (kept as images), 4 for every other numeric dtype (kept as float32)."""
    return 1 if dtype == np.uint8 else 4


def require_within_size(origin: Origin, total_bytes: int, limits: DatasetLimits) -> None:
    """Refuse a version over the size limit; readers call it before reading a payload."""
    if total_bytes > limits.max_canonical_bytes:
        raise invalid(
            origin,
            f"the data take {describe_bytes(total_bytes)} as features and labels, over the "
            f"limit of {describe_bytes(limits.max_canonical_bytes)} per dataset version",
            "use fewer examples or features, or split it into several datasets",
        )


def canonical_features(features: AnyArray, origin: Origin) -> FeatureArray:
    """``features`` as ``(n, D)`` uint8 or float32, C-ordered and read-only, every value finite."""
    if features.ndim < 2:
        raise invalid(
            origin,
            f"has shape {features.shape}: one row per example is needed",
            "give shape (examples, features) or (examples, height, width)",
        )
    if features.shape[0] == 0:
        raise invalid(origin, "holds no examples", "give at least one example per split")
    kind = features.dtype.kind
    if kind not in "buif":
        raise invalid(
            origin,
            f"holds {features.dtype} values, not numbers",
            "give numeric features (uint8 images, or integers or floats)",
        )
    flat = features.reshape(features.shape[0], -1)
    if flat.shape[1] == 0:
        raise invalid(origin, f"has shape {features.shape}: no features", "give at least one")
    if features.dtype == np.uint8:
        return _read_only(np.ascontiguousarray(flat))
    if kind == "f":
        _require_finite(flat, origin, "")
    with np.errstate(over="ignore"):  # an overflow becomes infinity, refused just below
        converted = np.ascontiguousarray(flat, dtype=np.float32)
    if kind == "f" or features.dtype.itemsize > 2:
        _require_finite(converted, origin, " once stored as float32 (its largest is 3.4e38)")
    return _read_only(converted)


def canonical_labels(labels: AnyArray, origin: Origin) -> LabelArray:
    """``labels`` as ``(n,)`` int32, read-only, every one at least 0."""
    if labels.ndim != 1:
        raise invalid(
            origin,
            f"has shape {labels.shape}: labels need one dimension",
            "give one integer class per example, shape (examples,) (e.g. y.ravel())",
        )
    if labels.dtype.kind not in "biu":
        raise invalid(
            origin,
            f"holds {labels.dtype} values: labels must be integers (class numbers 0..C-1)",
            "convert them (e.g. y.astype(int)), or map class names to numbers",
        )
    if labels.size and labels.dtype.kind == "i" and int(labels.min()) < 0:
        first = int(np.flatnonzero(labels < 0)[0])
        raise invalid(
            origin,
            f"label {int(labels[first])} at row {first + 1} is negative",
            "number the classes 0..C-1",
        )
    if labels.size and int(labels.max()) > np.iinfo(np.int32).max:
        raise invalid(origin, f"label {int(labels.max())} is too large", "number classes 0..C-1")
    return _read_only(np.ascontiguousarray(labels, dtype=np.int32))


def require_same_count(
    features: AnyArray, labels: AnyArray, features_at: Origin, labels_at: Origin
) -> None:
    """Refuse a split whose feature rows and labels differ in number."""
    if features.shape[0] != labels.shape[0]:
        raise invalid(
            labels_at,
            f"has {labels.shape[0]:,} labels but {features_at.what} has {features.shape[0]:,} "
            "examples",
            "give exactly one label per example (are the two files from the same set?)",
        )


def _require_finite(values: AnyArray, origin: Origin, context: str) -> None:
    finite = np.isfinite(values)
    if finite.all():
        return
    row, column = (int(i) for i in np.argwhere(~finite)[0])
    raise invalid(
        origin,
        f"holds {np.count_nonzero(~finite):,} value(s) that are not finite numbers{context}; "
        f"the first is {echo(values[row, column])} at row {row + 1}, feature {column + 1}",
        "remove or fill the missing or infinite values before adding the dataset",
    )


def _read_only(array: npt.NDArray[_Scalar]) -> npt.NDArray[_Scalar]:
    # A read-only view, not a copy (a version may be 2 GiB): readers hand over arrays they made
    # and never change afterwards.
    view = array.view()
    view.flags.writeable = False
    return view
