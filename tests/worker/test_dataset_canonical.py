"""The canonical form: class names, the scaling recorded with a version, read-only arrays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from worker.datasets import (
    DatasetLimits,
    RawSplit,
    ScalingKind,
    apply_scaling,
    build_version,
)
from worker.datasets.problems import Origin
from worker.errors import InvalidDatasetError

TRAIN = Origin(None, "train", "x_train")
TEST = Origin(None, "test", "x_test")


def split(x: np.ndarray, y: np.ndarray, origin: Origin = TRAIN) -> RawSplit:  # type: ignore[type-arg]
    labels_at = origin.at("y_" + origin.split)
    return RawSplit(x, y, origin, labels_at)


def test_features_are_standardised_with_statistics_of_the_training_split_only() -> None:
    rng = np.random.default_rng(7)
    x_train = rng.normal(3.0, 2.0, size=(500, 4))
    x_test = rng.normal(-50.0, 9.0, size=(100, 4))  # far away: it must not move the statistics
    version = build_version(
        split(x_train, np.arange(500) % 2), split(x_test, np.arange(100) % 2, TEST)
    )
    scaling = version.scaling
    assert scaling.kind is ScalingKind.STANDARDISE
    assert scaling.mean is not None and scaling.std is not None
    assert scaling.mean.dtype == np.float32 and scaling.std.dtype == np.float32
    np.testing.assert_allclose(scaling.mean, x_train.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(scaling.std, x_train.std(axis=0), rtol=1e-6)
    scaled = apply_scaling(version.x_train, scaling)
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, atol=1e-5)


def test_a_constant_feature_keeps_a_deviation_of_one_and_is_only_centred() -> None:
    x = np.column_stack([np.full(6, 4.0), np.arange(6.0)])
    version = build_version(split(x, np.arange(6) % 2))
    assert version.scaling.std is not None and version.scaling.std[0] == 1.0
    assert apply_scaling(version.x_train, version.scaling)[:, 0].tolist() == [0.0] * 6


def test_images_are_divided_by_255_exactly_as_the_training_step_does() -> None:
    images = np.arange(256, dtype=np.uint8).reshape(8, 32)
    version = build_version(split(images, np.arange(8) % 2))
    assert version.scaling.kind is ScalingKind.DIVIDE_BY_255 and version.scaling.mean is None
    expected = images.astype(np.float32) / np.float32(255.0)  # worker/prediction.py's arithmetic
    assert np.array_equal(apply_scaling(version.x_train, version.scaling), expected)


def test_the_canonical_arrays_are_read_only() -> None:
    version = build_version(split(np.ones((4, 2)), np.array([0, 1, 0, 1])))
    with pytest.raises(ValueError, match="read-only"):
        version.x_train[0, 0] = 5
    with pytest.raises(ValueError, match="read-only"):
        version.y_train[0] = 1


def test_a_version_without_class_names_shows_the_numbers() -> None:
    version = build_version(split(np.ones((4, 2)), np.array([0, 1, 2, 1])))
    assert version.class_names == () and version.display_class_names() == ("0", "1", "2")


def test_more_class_names_than_labels_used_make_the_classes() -> None:
    version = build_version(split(np.ones((4, 2)), np.array([0, 1, 0, 1])), None, ("a", "b", "c"))
    assert version.num_classes == 3


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (("only",), "lists 1 name"),
        (("a", ""), "name 2 is empty"),
        (("a", "a"), "'a' is listed twice"),
        (("a", "b\nc"), "control characters"),
        (("a", "x" * 201), "over 200 characters"),
    ],
)
def test_bad_class_names_are_refused_naming_the_option(
    names: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(InvalidDatasetError, match=f"^--class-names: .*{problem}"):
        build_version(
            split(np.ones((4, 2)), np.array([0, 1, 0, 1])),
            None,
            names,
            class_names_option="--class-names",
        )


def test_class_names_over_the_class_limit_are_refused() -> None:
    names = tuple(str(i) for i in range(6))
    with pytest.raises(InvalidDatasetError, match=r"lists 6 name.*between 2 and 5"):
        build_version(
            split(np.ones((4, 2)), np.array([0, 1, 0, 1])),
            None,
            names,
            limits=DatasetLimits(max_classes=5),
        )


def test_uint8_training_images_with_float_test_features_are_refused() -> None:
    train = split(np.ones((4, 2), np.uint8), np.array([0, 1, 0, 1]))
    test = split(np.ones((2, 2), np.float32), np.array([0, 1]), TEST)
    with pytest.raises(
        InvalidDatasetError, match="holds numeric features but x_train holds uint8 images"
    ):
        build_version(train, test)


def test_test_labels_beyond_the_class_names_are_refused() -> None:
    train = split(np.ones((4, 2)), np.array([0, 1, 0, 1]))
    test = split(np.ones((2, 2)), np.array([0, 2]), TEST)
    with pytest.raises(InvalidDatasetError, match="labels in y_test go up to 2 but class_names"):
        build_version(train, test, ("a", "b"))


def test_the_package_imports_neither_tensorflow_nor_sqlalchemy_nor_celery() -> None:
    frameworks = ("tensorflow", "sqlalchemy", "celery", "keras")
    code = (
        f"import sys, worker.datasets; print(sorted(m for m in {frameworks!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout.strip() == "[]"
