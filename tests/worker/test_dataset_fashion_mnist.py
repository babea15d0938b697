"""Fashion-MNIST from the Debian package is one dataset version like any other."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from worker.data import CLASS_NAMES, FashionMnist
from worker.datasets import (
    DatasetVersionData,
    ScalingKind,
    content_hash,
    read_fashion_mnist,
    read_mnist_layout,
)


@pytest.fixture(scope="module")
def version(fashion_mnist: FashionMnist) -> DatasetVersionData:
    return read_fashion_mnist(fashion_mnist.source_dir)


def test_it_loads_through_the_idx_reader_with_its_class_names(version: DatasetVersionData) -> None:
    assert version.x_train.shape == (60_000, 784) and version.x_train.dtype == np.uint8
    assert version.x_test is not None and version.x_test.shape == (10_000, 784)
    assert version.class_names == CLASS_NAMES and version.num_classes == 10
    assert version.scaling.kind is ScalingKind.DIVIDE_BY_255


def test_it_holds_exactly_what_the_training_loader_reads(
    version: DatasetVersionData, fashion_mnist: FashionMnist
) -> None:
    assert np.array_equal(version.x_train, fashion_mnist.train_images)
    assert np.array_equal(version.y_train, fashion_mnist.train_labels)
    assert version.x_test is not None and version.y_test is not None
    assert np.array_equal(version.x_test, fashion_mnist.test_images)
    assert np.array_equal(version.y_test, fashion_mnist.test_labels)


def test_two_loads_have_the_same_hash(
    version: DatasetVersionData, fashion_mnist: FashionMnist
) -> None:
    again = read_fashion_mnist(fashion_mnist.source_dir)
    assert again is not version
    assert content_hash(again) == content_hash(version)


def test_the_unzipped_files_are_the_same_version(
    version: DatasetVersionData, fashion_mnist: FashionMnist, tmp_path: Path
) -> None:
    for source in fashion_mnist.source_dir.iterdir():
        if source.name.endswith("-ubyte.gz"):
            with gzip.open(source) as packed, (tmp_path / source.stem).open("wb") as plain:
                shutil.copyfileobj(packed, plain)
        elif source.name.endswith("-ubyte"):
            shutil.copyfile(source, tmp_path / source.name)
    unzipped = read_mnist_layout(tmp_path, CLASS_NAMES)
    assert content_hash(unzipped) == content_hash(version)
