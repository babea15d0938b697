"""Fashion-MNIST, from the Debian package's files, as a dataset version like any other."""

from __future__ import annotations

from pathlib import Path

from worker.datasets.canonical import DatasetVersionData
from worker.datasets.mnist_layout import read_mnist_layout


def read_fashion_mnist(directory: Path | None = None) -> DatasetVersionData:
    """Fashion-MNIST through the IDX reader, with its ten class names.

    Args:
        directory: Holds the four IDX files; None means where the Debian package
            ``dataset-fashion-mnist`` installs them (``worker.data.SYSTEM_DATA_DIR``).

    Raises:
        InvalidDatasetError: when the files are missing or fail a check; the message says which.
    """
    # Imported here, not at the top: worker.data imports this package (its gzip reader) while
    # it is itself being imported.
    from worker.data import CLASS_NAMES, SYSTEM_DATA_DIR

    return read_mnist_layout(directory or SYSTEM_DATA_DIR, CLASS_NAMES)
