"""The Python API's dataset methods (a mixin of :class:`trainq.Client`): add, list, find, remove.

``trainq data`` calls the same code (``api_cli.dataset_intake``); it adds only output and the
progress line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from api_cli.sdk import _arguments as check

if TYPE_CHECKING:
    from storage import Repository
    from storage.dataset_records import DatasetUsage, DatasetVersionRecord


class DatasetMethods:
    """Dataset versions through the client's repository."""

    if TYPE_CHECKING:  # provided by the client

        @property
        def repository(self) -> Repository: ...

    def add_dataset(
        self,
        name: str,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        format: str | None = None,  # the name of the CLI's --format
        label_column: str = "label",
        class_names: Sequence[str] | None = None,
        test: Sequence[str | os.PathLike[str]] = (),
    ) -> DatasetVersionRecord:
        """Read, check and store a version of dataset ``name`` (``trainq data add``).

        Args:
            name: the dataset's name; the version is stored as ``NAME@N``.
            paths: a directory in the MNIST layout, or the training split's files (IDX images
                and labels, one ``.npz``, or one ``.csv``).
            format: ``idx``, ``npz`` or ``csv``; None: from the file names.
            label_column: CSV only: the header of the integer label column.
            class_names: one name per class, in label order.
            test: the test split's files (IDX: images and labels).

        Returns:
            The stored version; the version already stored when the same data was added
            before (under any name).

        Raises:
            InvalidConfigError: a bad name or option; nothing was read.
            InvalidDatasetError: a file fails a check (the message names file, split and
                problem); nothing was stored.
        """
        from api_cli.dataset_intake import DatasetFiles, add_dataset

        given = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        files = DatasetFiles(
            paths=tuple(Path(path) for path in given),
            format=format,
            label_column=label_column,
            class_names=None if class_names is None else tuple(class_names),
            test=tuple(Path(path) for path in test),
            label_option="label_column",
            class_names_option="class_names",
        )
        return add_dataset(self.repository, name, files).version

    def datasets(self, name: str | None = None) -> list[DatasetVersionRecord]:
        """Every stored version (or every version of ``name``), by name then number.

        Raises:
            InvalidConfigError: ``name`` is not a string.
        """
        if name is not None and not isinstance(name, str):
            raise check.refuse("name", "a dataset's name (or None)", name)
        return self.repository.list_dataset_versions(name)

    def dataset(self, ref: str) -> DatasetVersionRecord:
        """The version ``NAME`` (its newest), ``NAME@N`` or a hash (8+ characters) names
        (``fashion-mnist`` registers itself from the Debian files when first named).

        Raises:
            InvalidConfigError: ``ref`` is none of these forms.
            DatasetNotFoundError: nothing matches; the message says what is stored.
        """
        from api_cli.sdk._run_data import find_version

        return find_version(self.repository, ref, "ref")

    def remove_dataset(self, ref: str, *, force: bool = False) -> DatasetUsage:
        """Remove a version (``trainq data rm``); returns the runs that used it.

        Raises:
            InvalidConfigError: ``ref`` is not a reference, or ``force`` not True or False.
            DatasetNotFoundError: nothing matches ``ref``.
            InvalidStateError: runs use it and ``force`` is off; nothing was removed.
        """
        from api_cli.sdk._run_data import find_version

        force = check.flag(force, "force")
        version = find_version(self.repository, ref, "ref", register_default=False)
        return self.repository.delete_dataset_version(version.sha256, force=force)
