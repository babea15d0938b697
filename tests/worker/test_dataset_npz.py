"""NPZ files are read without pickle, and what they hold is checked before it is stored."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from worker.datasets import (
    MAX_CANONICAL_BYTES,
    DatasetFormat,
    DatasetLimits,
    DatasetSource,
    DatasetVersionData,
    ScalingKind,
    read_dataset,
)
from worker.errors import InvalidDatasetError


def features(rows: int = 8, columns: int = 3) -> np.ndarray[Any, Any]:
    return np.arange(rows * columns, dtype=np.float64).reshape(rows, columns) / 7


def labels(rows: int = 8, classes: int = 2) -> np.ndarray[Any, Any]:
    return np.arange(rows) % classes


def write_npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def read(path: Path, *, test: Path | None = None, **options: Any) -> DatasetVersionData:
    limits = DatasetLimits(**options.pop("limits", {}))
    source = DatasetSource(
        DatasetFormat.NPZ, train=(path,), test=(test,) if test else (), **options
    )
    return read_dataset(source, limits=limits)


def test_train_and_test_arrays_and_stored_class_names_are_read(tmp_path: Path) -> None:
    path = write_npz(
        tmp_path / "d.npz",
        x_train=features(),
        y_train=labels(),
        x_test=features(4),
        y_test=labels(4),
        class_names=np.array(["cat", "dog"]),
    )
    version = read(path)
    assert version.x_train.dtype == np.float32 and version.x_train.shape == (8, 3)
    assert version.x_test is not None and version.x_test.shape == (4, 3)
    assert version.class_names == ("cat", "dog") and version.num_classes == 2
    assert version.scaling.kind is ScalingKind.STANDARDISE


def test_uint8_images_of_any_shape_are_flattened_and_kept_as_uint8(tmp_path: Path) -> None:
    images = np.arange(8 * 5 * 5, dtype=np.uint8).reshape(8, 5, 5)
    version = read(write_npz(tmp_path / "d.npz", x_train=images, y_train=labels()))
    assert version.x_train.dtype == np.uint8 and version.x_train.shape == (8, 25)
    assert version.scaling.kind is ScalingKind.DIVIDE_BY_255


class _Trap:
    """Unpickling it creates a file: the proof that a loader ran pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_an_array_of_python_objects_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    pickle.dumps(_Trap(marker))  # the trap pickles
    objects = np.empty(8, dtype=object)
    objects[:] = [_Trap(marker)] * 8
    path = write_npz(tmp_path / "d.npz", x_train=features(), y_train=objects)
    with pytest.raises(InvalidDatasetError, match=r"y_train\): holds Python objects"):
        read(path)
    assert not marker.exists()


def test_a_file_that_is_not_a_zip_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.save(path.with_suffix(".npy"), features())
    path.write_bytes(path.with_suffix(".npy").read_bytes())
    with pytest.raises(InvalidDatasetError, match=r"d.npz: is not an NPZ file \(not a zip"):
        read(path)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    path.touch()
    with pytest.raises(InvalidDatasetError, match=r"d.npz: is empty \(0 bytes\)"):
        read(path)


def test_a_missing_array_and_an_unknown_one_are_named(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", X_train=features(), y_train=labels())
    with pytest.raises(InvalidDatasetError, match=r"has no x_train; holds arrays .*'X_train'"):
        read(path)


def test_x_test_without_y_test_is_refused(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", x_train=features(), y_train=labels(), x_test=features())
    with pytest.raises(InvalidDatasetError, match="holds only one of x_test and y_test"):
        read(path)


def test_float_labels_are_refused_as_not_integers(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", x_train=features(), y_train=labels().astype(float))
    with pytest.raises(
        InvalidDatasetError, match=r"y_train\): holds float64 values: labels must be"
    ):
        read(path)


def test_nan_in_the_features_is_refused_with_its_position(tmp_path: Path) -> None:
    x = features()
    x[5, 2] = np.nan
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=labels())
    with pytest.raises(InvalidDatasetError, match="first is 'nan' at row 6, feature 3"):
        read(path)


def test_infinity_in_the_test_features_is_refused(tmp_path: Path) -> None:
    x_test = features(4)
    x_test[0, 0] = -np.inf
    path = write_npz(
        tmp_path / "d.npz", x_train=features(), y_train=labels(), x_test=x_test, y_test=labels(4)
    )
    with pytest.raises(InvalidDatasetError, match=r"test split, x_test\): holds 1 value"):
        read(path)


def test_a_value_too_large_for_float32_is_refused(tmp_path: Path) -> None:
    x = features()
    x[1, 1] = 1e300
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=labels())
    with pytest.raises(InvalidDatasetError, match="once stored as float32"):
        read(path)


def test_feature_rows_and_labels_that_differ_in_number_are_refused(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", x_train=features(8), y_train=labels(7))
    with pytest.raises(InvalidDatasetError, match="y_train\\): has 7 labels but x_train has 8"):
        read(path)


def test_labels_beyond_the_class_names_are_refused_in_the_users_words(tmp_path: Path) -> None:
    y = labels(13, classes=13)
    path = write_npz(tmp_path / "d.npz", x_train=features(13), y_train=y)
    names = tuple(f"class {i}" for i in range(10))
    with pytest.raises(
        InvalidDatasetError,
        match="labels in y_train go up to 12 but --class-names lists 10 names",
    ):
        read(path, class_names=names, class_names_option="--class-names")


def test_a_single_class_is_refused(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", x_train=features(), y_train=np.full(8, 3))
    with pytest.raises(InvalidDatasetError, match="every label is 3: a single class"):
        read(path)


def test_more_than_a_thousand_classes_are_refused(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", x_train=features(2), y_train=np.array([0, 1500]))
    with pytest.raises(InvalidDatasetError, match="1,501 classes, over the limit of 1,000"):
        read(path)


def test_more_than_ten_million_weights_are_refused(tmp_path: Path) -> None:
    path = write_npz(
        tmp_path / "d.npz", x_train=np.zeros((2, 10_001), np.float32), y_train=np.array([0, 999])
    )
    with pytest.raises(
        InvalidDatasetError, match="make 10,001,000 weights, over the limit of 10,000,000"
    ):
        read(path)


def test_the_size_limit_is_two_gib_and_is_checked_from_the_headers_before_loading(
    tmp_path: Path,
) -> None:
    assert MAX_CANONICAL_BYTES == 2 * 1024**3
    # An archive whose x_train header claims 2**29 rows of 4 float32 features, and holds none.
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("x_train.npy", "w") as stream:
            header = {"descr": "<f4", "fortran_order": False, "shape": (2**29, 4)}
            np.lib.format.write_array_header_1_0(stream, header)
        with archive.open("y_train.npy", "w") as stream:
            np.lib.format.write_array(stream, labels())
    with pytest.raises(
        InvalidDatasetError, match=r"over the limit of 2 GiB \(2,147,483,648 bytes\)"
    ):
        read(path)


def test_a_smaller_limit_is_stated_with_its_number(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", x_train=features(100, 10), y_train=labels(100))
    with pytest.raises(
        InvalidDatasetError, match=r"take 4.3 KiB \(4,400 bytes\) .* limit of 1,000 bytes"
    ):
        read(path, limits={"max_canonical_bytes": 1000})


def test_a_test_split_with_other_features_is_refused(tmp_path: Path) -> None:
    path = write_npz(
        tmp_path / "d.npz",
        x_train=features(8, 3),
        y_train=labels(),
        x_test=features(4, 2),
        y_test=labels(4),
    )
    with pytest.raises(InvalidDatasetError, match="has 2 features per example but x_train has 3"):
        read(path)


def test_a_test_split_given_twice_is_refused(tmp_path: Path) -> None:
    path = write_npz(
        tmp_path / "d.npz", x_train=features(), y_train=labels(), x_test=features(), y_test=labels()
    )
    test = write_npz(tmp_path / "t.npz", x_test=features(), y_test=labels())
    with pytest.raises(InvalidDatasetError, match="give the test split once"):
        read(path, test=test)


def test_a_separate_test_file_is_read_as_the_test_split(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", x_train=features(), y_train=labels())
    test = write_npz(tmp_path / "t.npz", x_test=features(4), y_test=labels(4))
    version = read(path, test=test)
    assert version.y_test is not None and list(version.y_test) == [0, 1, 0, 1]


def test_labels_with_two_dimensions_are_refused_with_a_fix(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", x_train=features(), y_train=labels().reshape(8, 1))
    with pytest.raises(InvalidDatasetError, match=r"has shape \(8, 1\).*y.ravel\(\)"):
        read(path)


def test_text_features_are_refused(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", x_train=np.full((8, 2), "a"), y_train=labels())
    with pytest.raises(InvalidDatasetError, match="holds <U1 values, not numbers"):
        read(path)


def test_negative_labels_are_refused(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", x_train=features(), y_train=labels() - 1)
    with pytest.raises(InvalidDatasetError, match="label -1 at row 1 is negative"):
        read(path)
