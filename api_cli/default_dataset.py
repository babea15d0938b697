"""Fashion-MNIST as a stored version: registered by itself, once per database, from the Debian
package's files (``/usr/share/datasets/fashion-mnist``), as ``fashion-mnist@1``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from storage import Repository
    from storage.dataset_records import DatasetVersionRecord

DEFAULT_DATASET_NAME: Final = "fashion-mnist"


def ensure_default_dataset(repository: Repository) -> DatasetVersionRecord | None:
    """The stored Fashion-MNIST, registered now from the Debian files if no version named
    ``fashion-mnist`` exists yet.

    The check comes first and costs one query; registering reads, checks, hashes and stores the
    four IDX files (about 2 s, once per database). Two processes registering at once store it
    once: the same hash is one version.

    Returns:
        The newest version named ``fashion-mnist``; None when there is none and the Debian
        files are not on this machine (runs then load Fashion-MNIST as they always did).

    Raises:
        InvalidDatasetError: the Debian files are there but fail a check.
    """
    existing = repository.list_dataset_versions(DEFAULT_DATASET_NAME)
    if existing:
        return existing[-1]
    from api_cli.dataset_intake import store_version
    from worker.data import SYSTEM_DATA_DIR
    from worker.datasets import mnist_files, read_fashion_mnist
    from worker.errors import InvalidDatasetError

    try:
        files = mnist_files(SYSTEM_DATA_DIR)
    except InvalidDatasetError:
        return None  # not installed here: the run's own loader finds the files elsewhere
    names = [path.name for path in files.all_paths()]
    source = {
        "format": "idx",
        "directory": str(SYSTEM_DATA_DIR),
        "files": {"train": names[:2], "test": names[2:]},
        "registered": "automatically, as the default dataset",
    }
    added = store_version(repository, DEFAULT_DATASET_NAME, read_fashion_mnist(), source)
    return added.version
