"""A directory in the MNIST layout: four IDX files under their usual names, gzipped or not.

MNIST, Fashion-MNIST and KMNIST are all distributed this way. The test pair is optional; the
plain file is preferred when both it and its ``.gz`` exist (as ``worker/data.py`` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from worker.datasets.canonical import DatasetVersionData, build_version
from worker.datasets.files import require_distinct_files
from worker.datasets.idx import read_idx_split
from worker.datasets.limits import DatasetLimits
from worker.datasets.problems import file_problem

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"


@dataclass(frozen=True)
class MnistFiles:
    """The IDX files of one directory in the MNIST layout."""

    train_images: Path
    train_labels: Path
    test_images: Path | None  # None: the version has no test split
    test_labels: Path | None

    def all_paths(self) -> list[Path]:
        """Every file, train first."""
        return [
            path
            for path in (self.train_images, self.train_labels, self.test_images, self.test_labels)
            if path is not None
        ]


def mnist_files(directory: Path) -> MnistFiles:
    """The IDX files in ``directory`` under the MNIST names.

    Raises:
        InvalidDatasetError: when the directory or a training file is missing, or only one of
            the two test files is there.
    """
    if not directory.is_dir():
        raise file_problem(directory, "no such directory", "check the path")
    found = {name: _find(directory, name) for name in (TRAIN_IMAGES, TRAIN_LABELS)}
    test_images, test_labels = _find(directory, TEST_IMAGES), _find(directory, TEST_LABELS)
    missing = [name for name, path in found.items() if path is None]
    if (test_images is None) != (test_labels is None):
        missing.append(TEST_LABELS if test_labels is None else TEST_IMAGES)
    if missing:
        raise file_problem(
            directory,
            f"missing {', '.join(f'{name}[.gz]' for name in missing)}",
            f"a directory in the MNIST layout holds {TRAIN_IMAGES}, {TRAIN_LABELS} and "
            f"optionally {TEST_IMAGES}, {TEST_LABELS}, each gzipped (.gz) or not",
        )
    train_images, train_labels = found[TRAIN_IMAGES], found[TRAIN_LABELS]
    assert train_images is not None and train_labels is not None
    return MnistFiles(train_images, train_labels, test_images, test_labels)


def read_mnist_layout(
    directory: Path,
    class_names: Sequence[str] | None = None,
    *,
    limits: DatasetLimits | None = None,
) -> DatasetVersionData:
    """Read and check a directory in the MNIST layout into its canonical form.

    Raises:
        InvalidDatasetError: naming the file, split and problem.
    """
    files = mnist_files(directory)
    require_distinct_files(files.all_paths())
    train = read_idx_split(files.train_images, files.train_labels, "train", limits)
    test = None
    if files.test_images is not None and files.test_labels is not None:
        test = read_idx_split(files.test_images, files.test_labels, "test", limits)
    return build_version(train, test, class_names, limits=limits)


def _find(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None
