"""IDX files (MNIST layout) are read, gzipped or not, and every lie in them is refused."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tests.worker.conftest import write_idx
from worker.datasets import (
    DatasetFormat,
    DatasetLimits,
    DatasetSource,
    DatasetVersionData,
    ScalingKind,
    content_hash,
    read_dataset,
    read_mnist_layout,
)
from worker.errors import InvalidDatasetError

IMAGES, LABELS, FLOATS = 2051, 2049, 0x0D03  # magic numbers: ubyte x3, ubyte x1, float32 x3


def write_pair(
    directory: Path, prefix: str = "train", count: int = 6, *, compress: bool = False
) -> tuple[Path, Path]:
    """A small images/labels pair in the MNIST names: 4x4 images, labels cycling through 0..2."""
    directory.mkdir(parents=True, exist_ok=True)
    pixels = (np.arange(count * 16) % 256).astype(np.uint8).tobytes()
    labels = (np.arange(count) % 3).astype(np.uint8).tobytes()
    images = write_idx(
        directory / f"{prefix}-images-idx3-ubyte", IMAGES, (count, 4, 4), pixels, compress=compress
    )
    labels_path = write_idx(
        directory / f"{prefix}-labels-idx1-ubyte", LABELS, (count,), labels, compress=compress
    )
    return images, labels_path


def read_pair(images: Path, labels: Path, **limits: int) -> DatasetVersionData:
    source = DatasetSource(DatasetFormat.IDX, train=(images, labels))
    return read_dataset(source, limits=DatasetLimits(**limits))


def test_an_images_and_labels_pair_becomes_flat_uint8_features_and_int32_labels(
    tmp_path: Path,
) -> None:
    write_pair(tmp_path)
    version = read_mnist_layout(tmp_path)
    assert version.x_train.dtype == np.uint8 and version.x_train.shape == (6, 16)
    assert version.y_train.dtype == np.int32 and list(version.y_train) == [0, 1, 2, 0, 1, 2]
    assert (version.num_features, version.num_classes) == (16, 3)
    assert version.x_test is None and version.scaling.kind is ScalingKind.DIVIDE_BY_255
    assert not version.x_train.flags.writeable


def test_the_same_data_gzipped_or_plain_is_one_version(tmp_path: Path) -> None:
    write_pair(tmp_path / "plain")
    write_pair(tmp_path / "plain", "t10k", 3)
    write_pair(tmp_path / "gz", compress=True)
    write_pair(tmp_path / "gz", "t10k", 3, compress=True)
    plain, gzipped = read_mnist_layout(tmp_path / "plain"), read_mnist_layout(tmp_path / "gz")
    assert gzipped.x_test is not None and gzipped.x_test.shape == (3, 16)
    assert content_hash(plain) == content_hash(gzipped)


def test_an_empty_file_is_refused_by_name(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path)
    labels.write_bytes(b"")
    with pytest.raises(InvalidDatasetError, match=r"train-labels-idx1-ubyte: is empty \(0 bytes\)"):
        read_pair(images, labels)


def test_a_truncated_gzip_is_refused_as_truncated(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path, count=600, compress=True)
    images.write_bytes(images.read_bytes()[:-40])
    with pytest.raises(
        InvalidDatasetError, match=r"train split, images\): the gzip data end early"
    ):
        read_pair(images, labels)


def test_damaged_gzip_data_are_refused(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path, count=600, compress=True)
    data = bytearray(images.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 30] = b"\xff" * 30
    images.write_bytes(bytes(data))
    with pytest.raises(InvalidDatasetError, match=r"(gzip data are damaged|header promises)"):
        read_pair(images, labels)


def test_a_file_that_is_not_idx_at_all_is_refused(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path)
    images.write_text("pixel_0,pixel_1,label\n1,2,0\n")
    with pytest.raises(
        InvalidDatasetError, match="is not an IDX file: it starts with bytes 70 69 78 65"
    ):
        read_pair(images, labels)


def test_a_labels_file_whose_magic_number_says_three_dimensions_is_refused(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path)
    write_idx(labels, IMAGES, (6, 1, 1), bytes([0, 1, 2, 0, 1, 2]))  # the right bytes, wrong magic
    with pytest.raises(
        InvalidDatasetError, match=r"labels\): its magic number says 3 dimension\(s\).*swapped"
    ):
        read_pair(images, labels)


def test_a_magic_number_naming_no_idx_type_is_refused(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path)
    labels.write_bytes(b"\x00\x00\x07\x01" + (6).to_bytes(4, "big") + bytes(6))
    with pytest.raises(InvalidDatasetError, match="type code 0x07, which IDX does not define"):
        read_pair(images, labels)


def test_a_header_that_promises_more_images_than_the_file_holds_is_refused(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path)
    write_idx(images, IMAGES, (60_000, 4, 4), bytes(6 * 16))
    with pytest.raises(InvalidDatasetError, match=r"promises 60,000 images of 4x4 .* holds fewer"):
        read_pair(images, labels)


def test_a_file_longer_than_its_header_says_is_refused(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path)
    labels.write_bytes(labels.read_bytes() + b"\x01")
    with pytest.raises(InvalidDatasetError, match=r"promises 6 labels .* holds more"):
        read_pair(images, labels)


def test_image_and_label_counts_that_differ_are_refused(tmp_path: Path) -> None:
    images, _ = write_pair(tmp_path)
    labels = write_idx(tmp_path / "five-labels", LABELS, (5,), bytes([0, 1, 0, 1, 0]))
    with pytest.raises(InvalidDatasetError, match="has 5 labels but images has 6 examples"):
        read_pair(images, labels)


def test_one_file_given_as_images_and_labels_is_refused(tmp_path: Path) -> None:
    images, _ = write_pair(tmp_path)
    with pytest.raises(
        InvalidDatasetError,
        match=r"train-images-idx3-ubyte: is given twice \(one file, two roles\)",
    ):
        read_pair(images, images)


def test_a_second_name_for_the_same_file_is_refused(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path)
    alias = tmp_path / "alias-of-labels"
    alias.symlink_to(labels)
    source = DatasetSource(
        DatasetFormat.IDX, train=(images, labels), test=(images.with_name("x"), alias)
    )
    images.with_name("x").write_bytes(images.read_bytes())
    with pytest.raises(
        InvalidDatasetError, match=r"alias-of-labels: is the same file as .*train-labels-idx1-ubyte"
    ):
        read_dataset(source)


def test_a_file_over_the_size_limit_is_refused_before_its_payload_is_read(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path)
    # The header claims a million images; the file holds six. The limit speaks first.
    write_idx(images, IMAGES, (1_000_000, 4, 4), bytes(6 * 16))
    with pytest.raises(InvalidDatasetError, match=r"over the limit of 9.77 KiB \(10,000 bytes\)"):
        read_pair(images, labels, max_canonical_bytes=10_000)


def test_float32_idx_features_are_kept_as_float32_and_standardised(tmp_path: Path) -> None:
    _, labels = write_pair(tmp_path)
    values = np.arange(6 * 16, dtype=">f4").tobytes()
    images = write_idx(tmp_path / "features", FLOATS, (6, 4, 4), values)
    version = read_pair(images, labels)
    assert version.x_train.dtype == np.float32
    assert version.scaling.kind is ScalingKind.STANDARDISE


def test_a_directory_missing_its_labels_names_the_missing_file(tmp_path: Path) -> None:
    _, labels = write_pair(tmp_path)
    labels.unlink()
    with pytest.raises(InvalidDatasetError, match=r"missing train-labels-idx1-ubyte\[.gz\]"):
        read_mnist_layout(tmp_path)


def test_gzip_is_recognised_by_its_bytes_not_by_the_name(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path)
    renamed = tmp_path / "images-without-suffix"
    renamed.write_bytes(gzip.compress(images.read_bytes()))
    assert content_hash(read_pair(renamed, labels)) == content_hash(read_pair(images, labels))


def test_a_gzip_bomb_is_decompressed_no_further_than_its_header_promises(tmp_path: Path) -> None:
    images, labels = write_pair(tmp_path)
    # 8 header bytes and 6 labels, then 64 MiB of zeros that compress to a few dozen KiB.
    header = LABELS.to_bytes(4, "big") + (6).to_bytes(4, "big") + bytes([0, 1, 2, 0, 1, 2])
    labels.write_bytes(gzip.compress(header + bytes(64 * 2**20), compresslevel=9))
    assert labels.stat().st_size < 2**20
    with pytest.raises(InvalidDatasetError, match=r"holds more \(15 bytes\+\)"):
        read_pair(images, labels)
