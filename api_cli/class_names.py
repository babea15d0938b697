"""The class names of the dataset a run trained on, for tables, JSON and plots.

A run without a dataset trained on the built-in Fashion-MNIST: its ten names. A run on a stored
version shows that version's names, or the numbers when it has none; a version removed since
(``trainq data rm --force``) leaves the numbers too, never another dataset's names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.errors import DatasetNotFoundError
from worker.data import CLASS_NAMES

if TYPE_CHECKING:
    from storage import Repository


def run_class_names(repository: Repository, run_id: int) -> tuple[str, ...]:
    """Class ``i``'s name at index ``i``; empty when only the numbers are known."""
    sha256 = repository.get_run(run_id).config.get("data_sha256")
    if not isinstance(sha256, str):
        return CLASS_NAMES
    try:
        version = repository.get_dataset_version(sha256)
    except DatasetNotFoundError:
        return ()
    return tuple(version.class_names) or tuple(str(label) for label in range(version.classes))
