"""NPZ archives (``np.savez``): ``x_train``, ``y_train``, optionally ``x_test``, ``y_test`` and
``class_names``. Loaded with ``allow_pickle=False``, always: an NPZ may hold pickled objects, and
unpickling runs code. Each array's shape and dtype are read from its header, and the size limit
checked, before any array is loaded.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from worker.datasets.canonical import RawDataset, RawSplit
from worker.datasets.checks import canonical_bytes, feature_itemsize, require_within_size
from worker.datasets.files import checked_file_size
from worker.datasets.limits import DatasetLimits
from worker.datasets.problems import Origin, echo, file_problem, invalid

TRAIN_KEYS = ("x_train", "y_train")
TEST_KEYS = ("x_test", "y_test")
CLASS_NAMES_KEY = "class_names"
_SAVE_HINT = "save it with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)


def read_npz(
    path: Path, *, test_path: Path | None = None, limits: DatasetLimits | None = None
) -> RawDataset:
    """Read the splits (and class names, if stored) of an NPZ file, and of a separate test file.

    Raises:
        InvalidDatasetError: naming the file, split and array of the problem.
    """
    limits = limits or DatasetLimits()
    arrays = _load(path, TRAIN_KEYS, (*TEST_KEYS, CLASS_NAMES_KEY), limits)
    if test_path is not None:
        if "x_test" in arrays:
            raise file_problem(
                path,
                f"holds x_test and y_test, and {test_path} was given as the test split too",
                "give the test split once: drop the separate test file, or those arrays",
            )
        arrays.update(_load(test_path, TEST_KEYS, (), limits))
    train = _split(arrays, path, "train")
    test = _split(arrays, test_path or path, "test") if "x_test" in arrays else None
    names = arrays.get(CLASS_NAMES_KEY)
    return RawDataset(train, test, None if names is None else _class_names(names, path))


def _load(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...], limits: DatasetLimits
) -> dict[str, npt.NDArray[Any]]:
    checked_file_size(path)
    if not zipfile.is_zipfile(path):
        raise file_problem(path, "is not an NPZ file (not a zip archive)", _SAVE_HINT)
    try:
        headers = _headers(path)
    except _READ_ERRORS as exc:
        raise file_problem(path, f"is damaged ({exc})", f"write it again: {_SAVE_HINT}") from None
    unknown = sorted(set(headers) - set(required) - set(optional))
    missing = [key for key in required if key not in headers]
    if unknown or missing:
        problem = "; ".join(
            part
            for part in (
                f"has no {', '.join(missing)}" if missing else "",
                f"holds arrays trainq does not know: {', '.join(map(echo, unknown[:5]))}"
                if unknown
                else "",
            )
            if part
        )
        allowed = ", ".join((*required, *optional))
        raise file_problem(path, f"{problem} (it may hold {allowed})", _SAVE_HINT)
    if ("x_test" in headers) != ("y_test" in headers):
        raise file_problem(path, "holds only one of x_test and y_test", "give both, or neither")
    _require_no_objects(path, headers)
    _require_within_size(path, headers, limits)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in headers}
    except _READ_ERRORS as exc:
        raise file_problem(path, f"is damaged ({exc})", f"write it again: {_SAVE_HINT}") from None


def _headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
    """Each array's shape and dtype, from the ``.npy`` headers inside the archive."""
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            key = member.removesuffix(".npy")
            with archive.open(member) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
            headers[key] = (tuple(shape), np.dtype(dtype))
    return headers


def _require_no_objects(path: Path, headers: dict[str, tuple[Any, np.dtype[Any]]]) -> None:
    for key, (_, dtype) in headers.items():
        if dtype.hasobject:
            raise invalid(
                Origin(path, "test" if key in TEST_KEYS else "train", key),
                "holds Python objects, which only pickle can load, and trainq never unpickles",
                "save plain numeric arrays (e.g. np.asarray(x, dtype=np.float32))",
            )


def _require_within_size(
    path: Path, headers: dict[str, tuple[tuple[int, ...], np.dtype[Any]]], limits: DatasetLimits
) -> None:
    total = 0
    for key in ("x_train", "x_test"):
        if key in headers:
            shape, dtype = headers[key]
            rows = shape[0] if shape else 1
            features = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
            total += canonical_bytes(rows, features, feature_itemsize(dtype))
    require_within_size(Origin(path, "train", "x_train"), total, limits)


def _split(arrays: dict[str, npt.NDArray[Any]], path: Path, split: str) -> RawSplit:
    features, labels = f"x_{split}", f"y_{split}"
    return RawSplit(
        arrays[features], arrays[labels], Origin(path, split, features), Origin(path, split, labels)
    )


def _class_names(names: npt.NDArray[Any], path: Path) -> tuple[str, ...]:
    if names.ndim != 1 or names.dtype.kind != "U":
        raise invalid(
            Origin(path, "train", CLASS_NAMES_KEY),
            f"has shape {names.shape} and dtype {names.dtype}",
            "store the class names as a 1-D array of strings (np.array(['cat', 'dog']))",
        )
    return tuple(str(name) for name in names)
