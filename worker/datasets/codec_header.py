"""The JSON header of the canonical bytes, read strictly: anything unexpected is damage.

Every reading error is a ``ValueError`` naming what is wrong; the codec turns it into
:class:`~worker.errors.DatasetDamagedError` with the version's name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from worker.datasets.canonical import DatasetVersionData
from worker.datasets.limits import MAX_CLASSES
from worker.datasets.scaling import Scaling, ScalingKind

_KEYS = {"arrays", "class_names", "num_classes", "num_features", "scaling"}
_FEATURE_DTYPES = {"|u1", "<f4"}
_LABEL_DTYPE = "<i4"
_SHAPE_DIMS = {"x_train": 2, "y_train": 1, "x_test": 2, "y_test": 1}


@dataclass(frozen=True)
class ArraySpec:
    """One array of the payload: its name, little-endian dtype and shape."""

    name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class CanonicalHeader:
    """What the header says the payload holds."""

    arrays: tuple[ArraySpec, ...]
    class_names: tuple[str, ...]
    num_classes: int
    num_features: int
    scaling: ScalingKind


def parse_header(raw: bytes) -> CanonicalHeader:
    """Read and check the header's JSON; raises ValueError for anything unexpected."""
    try:
        header = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict) or set(header) != _KEYS:
        raise ValueError("the header's keys are not those of a dataset version")
    num_features, num_classes = header["num_features"], header["num_classes"]
    if not (_is_count(num_features) and _is_count(num_classes) and num_classes <= MAX_CLASSES):
        raise ValueError(f"D={num_features!r}, C={num_classes!r} are out of range")
    names = header["class_names"]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError("class_names is not a list of strings")
    if names and len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for C={num_classes}")
    scaling = ScalingKind(header["scaling"])  # ValueError for an unknown kind
    arrays = tuple(_array_spec(entry) for entry in _list(header["arrays"]))
    _require_layout(arrays, scaling, num_features)
    return CanonicalHeader(arrays, tuple(names), num_classes, num_features, scaling)


def version_from_arrays(
    header: CanonicalHeader, arrays: dict[str, npt.NDArray[Any]]
) -> DatasetVersionData:
    """The version the header and its decoded arrays describe, after a last range check."""
    for labels in ("y_train", "y_test"):
        if labels in arrays and arrays[labels].size:
            low, high = int(arrays[labels].min()), int(arrays[labels].max())
            if low < 0 or high >= header.num_classes:
                raise ValueError(f"{labels} holds labels {low}..{high}, not in 0..C-1")
    mean, std = arrays.get("scaling_mean"), arrays.get("scaling_std")
    return DatasetVersionData(
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_test=arrays.get("x_test"),
        y_test=arrays.get("y_test"),
        class_names=header.class_names,
        num_features=header.num_features,
        num_classes=header.num_classes,
        scaling=Scaling(header.scaling, mean=mean, std=std),
    )


def _require_layout(arrays: tuple[ArraySpec, ...], scaling: ScalingKind, features: int) -> None:
    names = [spec.name for spec in arrays]
    expected = ["x_train", "y_train"]
    if "x_test" in names:
        expected += ["x_test", "y_test"]
    if scaling is ScalingKind.STANDARDISE:
        expected += ["scaling_mean", "scaling_std"]
    if names != expected:
        raise ValueError(f"arrays {names}, expected {expected}")
    by_name = {spec.name: spec for spec in arrays}
    feature_dtype = by_name["x_train"].dtype.str
    if feature_dtype not in _FEATURE_DTYPES:
        raise ValueError(f"x_train has dtype {feature_dtype}")
    if (feature_dtype == "|u1") != (scaling is ScalingKind.DIVIDE_BY_255):
        raise ValueError(f"scaling {scaling.value} does not fit x_train's dtype {feature_dtype}")
    for name, spec in by_name.items():
        dims = _SHAPE_DIMS.get(name, 1)
        wanted = feature_dtype if name.startswith("x_") else _LABEL_DTYPE
        if name.startswith("scaling_"):
            wanted = "<f4"
        if spec.dtype.str != wanted or len(spec.shape) != dims:
            raise ValueError(f"{name} is {spec.dtype.str} {spec.shape}, expected {wanted}")
        if (dims == 2 and spec.shape[1] != features) or (
            name.startswith("scaling_") and spec.shape != (features,)
        ):
            raise ValueError(f"{name} has shape {spec.shape}, expected {features} features")
    for split in ("train", "test"):
        if (
            f"x_{split}" in by_name
            and by_name[f"x_{split}"].shape[0] != by_name[f"y_{split}"].shape[0]
        ):
            raise ValueError(f"x_{split} and y_{split} differ in length")


def _array_spec(entry: Any) -> ArraySpec:
    if not isinstance(entry, dict) or set(entry) != {"name", "dtype", "shape"}:
        raise ValueError(f"array entry {entry!r} is malformed")
    shape = _list(entry["shape"])
    if not isinstance(entry["name"], str) or not all(_is_count(dim, 0) for dim in shape):
        raise ValueError(f"array entry {entry!r} is malformed")
    return ArraySpec(entry["name"], np.dtype(str(entry["dtype"])), tuple(shape))


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{value!r} is not a list")
    return value


def _is_count(value: Any, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum
