"""Loading Fashion-MNIST: the look-up order, the checks on every file, the error messages."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import worker.data
from worker.config import Split
from worker.data import CLASS_NAMES, FILE_NAMES, FashionMnist, load_fashion_mnist
from worker.errors import DatasetCorruptError, DatasetNotFoundError

from .conftest import write_dataset, write_idx


def load_only(directory: Path) -> FashionMnist:
    """Load from ``directory`` alone: no system directory, no Keras cache, no download."""
    return load_fashion_mnist(directory, fallback_dirs=(), download=False)


def test_the_real_dataset_has_the_documented_shapes(fashion_mnist: FashionMnist) -> None:
    assert fashion_mnist.train_images.shape == (60_000, 784)
    assert fashion_mnist.train_labels.shape == (60_000,)
    assert fashion_mnist.test_images.shape == (10_000, 784)
    assert fashion_mnist.test_labels.shape == (10_000,)
    assert fashion_mnist.train_images.dtype == np.uint8
    assert np.bincount(fashion_mnist.train_labels).tolist() == [6_000] * 10
    assert not fashion_mnist.train_images.flags.writeable
    assert len(CLASS_NAMES) == 10


def test_split_returns_images_and_labels_of_that_split(fashion_mnist: FashionMnist) -> None:
    images, labels = fashion_mnist.split(Split.TEST)
    assert images is fashion_mnist.test_images
    assert labels is fashion_mnist.test_labels
    assert fashion_mnist.split("train")[0] is fashion_mnist.train_images
    with pytest.raises(ValueError, match="validation"):
        fashion_mnist.split("validation")


@pytest.mark.parametrize("compress", [False, True])
def test_plain_and_gzipped_files_load_and_are_cached(tmp_path: Path, compress: bool) -> None:
    write_dataset(tmp_path, compress=compress)
    data = load_only(tmp_path)
    assert data.source_dir == tmp_path.resolve()
    assert data.train_images[7, 0] == 7
    assert data.test_labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert load_only(tmp_path) is data


def test_the_explicit_directory_comes_before_the_fallbacks(tmp_path: Path) -> None:
    write_dataset(tmp_path / "explicit")
    write_dataset(tmp_path / "fallback")
    data = load_fashion_mnist(tmp_path / "explicit", fallback_dirs=[tmp_path / "fallback"])
    assert data.source_dir == (tmp_path / "explicit").resolve()


def test_a_fallback_directory_without_the_files_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write_dataset(tmp_path / "fallback")
    data = load_fashion_mnist(
        None, fallback_dirs=[tmp_path / "empty", tmp_path / "fallback"], download=False
    )
    assert data.source_dir == (tmp_path / "fallback").resolve()


def test_an_explicit_directory_without_the_files_is_an_error_not_a_fallback(
    tmp_path: Path,
) -> None:
    (tmp_path / "empty").mkdir()
    write_dataset(tmp_path / "fallback")
    with pytest.raises(DatasetNotFoundError) as caught:
        load_fashion_mnist(tmp_path / "empty", fallback_dirs=[tmp_path / "fallback"])
    message = str(caught.value)
    assert message.startswith(f"TRAINQ_DATA_DIR={tmp_path / 'empty'}: missing")
    assert "unset TRAINQ_DATA_DIR" in message


def test_nothing_found_says_how_to_get_the_files(tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    paths = write_dataset(partial)
    paths["t10k-labels"].unlink()
    with pytest.raises(DatasetNotFoundError) as caught:
        load_fashion_mnist(None, fallback_dirs=[tmp_path / "missing", partial], download=False)
    message = str(caught.value)
    assert f"{tmp_path / 'missing'}: no such directory" in message
    assert f"{partial}: missing t10k-labels-idx1-ubyte[.gz]" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "TRAINQ_DATA_DIR" in message
    for name in FILE_NAMES:
        assert name in message


def test_a_failed_download_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network() -> Path:
        raise OSError("Name or service not known")

    monkeypatch.setattr(worker.data, "_download_with_keras", no_network)
    with pytest.raises(DatasetNotFoundError, match="download through Keras failed: Name or"):
        load_fashion_mnist(None, fallback_dirs=(tmp_path,))


def test_a_bad_magic_number_names_the_file(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path)
    write_idx(paths["train-images"], 2049, (60_000, 28, 28), bytes(60_000 * 784))
    with pytest.raises(DatasetCorruptError, match=r"train-images-idx3-ubyte: bad magic number 20"):
        load_only(tmp_path)


def test_a_wrong_count_names_the_file(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path)
    write_idx(paths["t10k-labels"], 2049, (9_999,), bytes(9_999))
    with pytest.raises(DatasetCorruptError, match=r"t10k-labels-idx1-ubyte: wrong count.*9999"):
        load_only(tmp_path)


def test_wrong_image_dimensions_are_rejected(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path)
    write_idx(paths["t10k-images"], 2051, (10_000, 27, 29), bytes(10_000 * 783))
    with pytest.raises(DatasetCorruptError, match=r"wrong image dimensions 27x29"):
        load_only(tmp_path)


def test_a_truncated_file_is_rejected(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path)
    path = paths["train-images"]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetCorruptError, match=r"train-images-idx3-ubyte: truncated"):
        load_only(tmp_path)


def test_a_file_shorter_than_its_header_is_rejected(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path)
    paths["train-labels"].write_bytes(b"\x00\x00\x08")
    with pytest.raises(DatasetCorruptError, match=r"train-labels-idx1-ubyte: truncated: 3 bytes"):
        load_only(tmp_path)


def test_trailing_bytes_are_rejected(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path)
    with paths["t10k-labels"].open("ab") as stream:
        stream.write(b"\x01")
    with pytest.raises(DatasetCorruptError, match=r"t10k-labels-idx1-ubyte: too long"):
        load_only(tmp_path)


def test_a_truncated_gzip_is_rejected(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path, compress=True)
    path = paths["train-labels"]
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DatasetCorruptError, match=r"train-labels-idx1-ubyte.gz: cannot be read"):
        load_only(tmp_path)


def test_a_gzip_of_several_members_loads_whole(tmp_path: Path) -> None:
    # `cat a.gz b.gz` is a valid gzip file of both contents; gzip(1) and Python's gzip read it.
    paths = write_dataset(tmp_path, compress=True)
    path = paths["train-images"]
    content = gzip.decompress(path.read_bytes())
    size = len(content) // 3 + 1
    thirds = [content[i : i + size] for i in range(0, len(content), size)]
    path.write_bytes(b"".join(gzip.compress(third, compresslevel=1) for third in thirds))
    assert len(thirds) == 3
    assert load_only(tmp_path).train_images[250:253, 0].tolist() == [250, 0, 1]


def test_a_gzip_that_holds_too_much_is_rejected_without_reading_it_all(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path, compress=True)
    path = paths["t10k-labels"]
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()) + bytes(50_000_000)))
    with pytest.raises(DatasetCorruptError, match=r"t10k-labels-idx1-ubyte.gz: too long: 10009\+"):
        load_only(tmp_path)


def test_a_file_that_is_not_gzip_is_rejected(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path, compress=True)
    path = paths["t10k-labels"]
    path.write_bytes(gzip.decompress(path.read_bytes()))  # plain bytes under a .gz name
    with pytest.raises(DatasetCorruptError, match=r"t10k-labels-idx1-ubyte.gz: cannot be read"):
        load_only(tmp_path)


def test_labels_out_of_range_are_rejected(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path)
    labels = (np.arange(60_000) % 10).astype(np.uint8)
    labels[1234] = 10
    write_idx(paths["train-labels"], 2049, (60_000,), labels.tobytes())
    with pytest.raises(DatasetCorruptError, match=r"outside 0..9, the first is 10 at index 1234"):
        load_only(tmp_path)
