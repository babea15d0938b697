"""The canonical form of a dataset version, and the one function that builds it from raw splits.

Whatever the format (IDX, NPZ, CSV), a version is the same few arrays: features ``(n, D)`` as
uint8 (images) or float32, labels ``(n,)`` int32 in 0..C-1, a training split and optionally a test
split, C class names (or none: the numbers stand for them), and the scaling (``scaling``). Its
content hash is taken over this form (``codec``), so the same data is one version whatever file
it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from worker.datasets.checks import (
    FeatureArray,
    LabelArray,
    canonical_bytes,
    canonical_features,
    canonical_labels,
    require_same_count,
    require_within_size,
)
from worker.datasets.class_names import checked_class_names, class_count
from worker.datasets.limits import DatasetLimits
from worker.datasets.problems import Origin, invalid
from worker.datasets.scaling import Scaling, scaling_for


@dataclass(frozen=True)
class RawSplit:
    """One split as a reader found it, before the checks every format shares."""

    features: npt.NDArray[Any]  # (n, ...) numbers, flattened to (n, D) by the checks
    labels: npt.NDArray[Any]  # (n,) integers
    features_origin: Origin  # for messages: file, split and "x_train", "images"…
    labels_origin: Origin


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity (or by content hash)
class DatasetVersionData:
    """One dataset version in canonical form; every array is read-only."""

    x_train: FeatureArray  # (n_train, D) uint8 images or float32 features
    y_train: LabelArray  # (n_train,) int32 in 0..C-1
    x_test: FeatureArray | None  # (n_test, D), same dtype as x_train; None without a test split
    y_test: LabelArray | None
    class_names: tuple[str, ...]  # C names, or () when the version has none
    num_features: int  # D
    num_classes: int  # C
    scaling: Scaling  # how features become the model's inputs (recorded, applied everywhere)

    def __post_init__(self) -> None:
        # Cheap invariants only: the builder and the decoder have checked the values.
        if self.x_train.dtype not in (np.uint8, np.float32) or self.y_train.dtype != np.int32:
            raise ValueError(f"canonical dtypes are uint8/float32 and int32: {self.x_train.dtype}")
        if (self.x_test is None) != (self.y_test is None):
            raise ValueError("x_test and y_test come together")
        if self.x_train.shape[1:] != (self.num_features,):
            raise ValueError(f"x_train {self.x_train.shape} does not have D={self.num_features}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for C={self.num_classes}")

    @property
    def has_test_split(self) -> bool:
        """Whether the version has a test split."""
        return self.x_test is not None

    @property
    def canonical_bytes(self) -> int:
        """Bytes of features and labels over all splits (what the size limit counts)."""
        itemsize = self.x_train.dtype.itemsize
        rows = self.x_train.shape[0] + (0 if self.x_test is None else self.x_test.shape[0])
        return canonical_bytes(rows, self.num_features, itemsize)

    def display_class_names(self) -> tuple[str, ...]:
        """The class names, or ``"0".."C-1"`` when the version has none."""
        return self.class_names or tuple(str(label) for label in range(self.num_classes))


def build_version(
    train: RawSplit,
    test: RawSplit | None = None,
    class_names: Sequence[str] | None = None,
    *,
    limits: DatasetLimits | None = None,
    class_names_option: str = "class_names",
) -> DatasetVersionData:
    """Check raw splits against every rule and return the canonical version.

    Args:
        train: The training split as read.
        test: The test split, or None.
        class_names: One name per class, or None (C is then the largest label + 1).
        limits: The bounds to check; None means :class:`DatasetLimits` (the module constants).
        class_names_option: How messages name ``class_names`` (the CLI says ``--class-names``).

    Raises:
        InvalidDatasetError: naming the file, split and array of the first problem found.
    """
    limits = limits or DatasetLimits()
    splits = [train] if test is None else [train, test]
    features, labels = [], []
    for split in splits:
        require_same_count(split.features, split.labels, split.features_origin, split.labels_origin)
        features.append(canonical_features(split.features, split.features_origin))
        labels.append(canonical_labels(split.labels, split.labels_origin))
    if test is not None:
        _require_same_kind(features[0], features[1], train.features_origin, test.features_origin)
    num_features = features[0].shape[1]
    names = checked_class_names(class_names, class_names_option, limits)
    num_classes = class_count(
        labels, [split.labels_origin for split in splits], names, class_names_option, limits
    )
    _require_two_classes_trained(labels[0], train.labels_origin)
    if num_features * num_classes > limits.max_parameters:
        raise invalid(
            train.features_origin,
            f"{num_features:,} features x {num_classes:,} classes make "
            f"{num_features * num_classes:,} weights, over the limit of "
            f"{limits.max_parameters:,}",
            "use fewer features (e.g. a smaller embedding) or fewer classes",
        )
    rows = sum(array.shape[0] for array in features)
    total_bytes = canonical_bytes(rows, num_features, features[0].dtype.itemsize)
    require_within_size(train.features_origin, total_bytes, limits)
    return DatasetVersionData(
        x_train=features[0],
        y_train=labels[0],
        x_test=features[1] if test is not None else None,
        y_test=labels[1] if test is not None else None,
        class_names=names,
        num_features=num_features,
        num_classes=num_classes,
        scaling=scaling_for(features[0]),
    )


def _require_same_kind(
    train: FeatureArray, test: FeatureArray, train_at: Origin, test_at: Origin
) -> None:
    if train.shape[1] != test.shape[1]:
        raise invalid(
            test_at,
            f"has {test.shape[1]:,} features per example but {train_at.what} has "
            f"{train.shape[1]:,}",
            "give both splits the same features (same image size, same columns)",
        )
    if train.dtype != test.dtype:
        kinds = {np.dtype(np.uint8): "uint8 images", np.dtype(np.float32): "numeric features"}
        raise invalid(
            test_at,
            f"holds {kinds[test.dtype]} but {train_at.what} holds {kinds[train.dtype]}",
            "give both splits the same dtype, so that one scaling fits both",
        )


def _require_two_classes_trained(labels: LabelArray, origin: Origin) -> None:
    present = np.unique(labels)
    if present.size < 2:
        raise invalid(
            origin,
            f"every label is {int(present[0])}: a single class",
            "a classifier needs examples of at least two classes in the training split",
        )


@dataclass(frozen=True)
class RawDataset:
    """What a reader found in the files: the splits and any class names they carry."""

    train: RawSplit
    test: RawSplit | None
    class_names: tuple[str, ...] | None  # names stored in the files (NPZ), None when none
