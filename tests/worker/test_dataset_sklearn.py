"""Real data that nobody here wrote: scikit-learn's digits, exported as CSV and NPZ, read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits

from worker.datasets import (
    DatasetFormat,
    DatasetSource,
    DatasetVersionData,
    content_hash,
    decode_chunks,
    iter_chunks,
    read_dataset,
)


@pytest.fixture(scope="module")
def digits() -> Any:
    return load_digits()  # 1,797 8x8 images, pixels 0..16 as float64, shipped in the wheel


def write_csv(path: Path, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> Path:
    header = ",".join([*(f"pixel_{i}" for i in range(x.shape[1])), "digit"])
    rows = np.column_stack([x, y])
    np.savetxt(path, rows, delimiter=",", header=header, comments="", fmt="%.17g")
    return path


def test_digits_as_csv_and_as_npz_read_back_equal_and_are_one_version(
    digits: Any, tmp_path: Path
) -> None:
    x, y = digits.data, digits.target
    names = tuple(str(name) for name in digits.target_names)
    train, test = slice(0, 1500), slice(1500, None)
    csv_train = write_csv(tmp_path / "train.csv", x[train], y[train])
    csv_test = write_csv(tmp_path / "test.csv", x[test], y[test])
    npz = tmp_path / "digits.npz"
    np.savez(npz, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])

    from_csv = read_dataset(
        DatasetSource(
            DatasetFormat.CSV,
            train=(csv_train,),
            test=(csv_test,),
            label_column="digit",
            class_names=names,
        )
    )
    from_npz = read_dataset(DatasetSource(DatasetFormat.NPZ, train=(npz,), class_names=names))

    for version in (from_csv, from_npz):
        assert (version.num_features, version.num_classes) == (64, 10)
        assert np.array_equal(version.x_train, x[train].astype(np.float32))
        assert np.array_equal(version.y_train, y[train])
        assert version.x_test is not None and np.array_equal(version.x_test, x[test])
        assert version.y_test is not None and np.array_equal(version.y_test, y[test])
    assert content_hash(from_csv) == content_hash(from_npz)


def test_digits_survive_the_chunked_round_trip(digits: Any, tmp_path: Path) -> None:
    npz = tmp_path / "digits.npz"
    np.savez(npz, x_train=digits.data, y_train=digits.target)
    version: DatasetVersionData = read_dataset(DatasetSource(DatasetFormat.NPZ, train=(npz,)))
    decoded = decode_chunks(iter_chunks(version, chunk_bytes=64 * 1024), content_hash(version))
    assert np.array_equal(decoded.x_train, version.x_train)
    assert decoded.scaling.std is not None and version.scaling.std is not None
    assert np.array_equal(decoded.scaling.std, version.scaling.std)
    # digits has constant pixels (always 0 in the corners): their deviation counts as 1.
    assert (decoded.scaling.std == 1.0).any()
