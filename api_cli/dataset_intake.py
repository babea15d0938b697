"""Adding a dataset version: read and check the files, hash the canonical form, store it.

Shared by ``trainq data add`` and the Python API (``Client.add_dataset``); no Typer or Rich here:
the CLI passes a :class:`IntakeProgress` that draws the progress line. Everything is read and
checked before anything is stored, and a version is stored whole or not at all (one
transaction); the same data added again is the version already there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from api_cli.options import checked_option
from storage.dataset_refs import check_dataset_name
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage import Repository
    from storage.dataset_records import DatasetVersionRecord
    from worker.datasets import DatasetVersionData


class IntakeProgress(Protocol):
    """Told what an add is doing, to show it (the CLI draws a progress line on a terminal)."""

    def phase(self, description: str, total_bytes: int | None = None) -> None:
        """A new phase starts: reading and checking (no total), hashing, storing (in bytes)."""

    def advance(self, done_bytes: int) -> None:
        """``done_bytes`` more bytes of the current phase are done."""


class _Silent:
    def phase(self, description: str, total_bytes: int | None = None) -> None:
        pass

    def advance(self, done_bytes: int) -> None:
        pass


@dataclass(frozen=True)
class DatasetFiles:
    """What ``trainq data add`` was given, before anything is read."""

    paths: tuple[Path, ...]  # a directory in the MNIST layout, or the training split's files
    format: str | None = None  # idx, npz or csv; None: from the file names
    label_column: str = "label"  # CSV only
    class_names: tuple[str, ...] | None = None
    test: tuple[Path, ...] = ()  # the test split's files (IDX: images and labels)
    # How messages name the label column and class names: the CLI's options, or the API's
    # arguments (``label_column``, ``class_names``).
    label_option: str = "--label"
    class_names_option: str = "--class-names"


@dataclass(frozen=True)
class AddedVersion:
    """The outcome of an add: the version, and whether it was stored now."""

    version: DatasetVersionRecord
    created: bool  # False: the same data was stored already (under this or another name)


def parse_class_names(text: str | None, option: str = "--class-names") -> tuple[str, ...] | None:
    """``"cat,dog, bird"`` → ``("cat", "dog", "bird")``.

    Raises:
        InvalidConfigError: an empty name (``a,,b``), naming ``option``.
    """
    if text is None:
        return None
    names = tuple(part.strip() for part in text.split(","))
    if any(not name for name in names):
        raise InvalidConfigError(
            f"{option} {text[:80]!r}: a name is empty; give one name per class, e.g. cat,dog,bird"
        )
    return names


def add_dataset(
    repository: Repository,
    name: str,
    files: DatasetFiles,
    *,
    progress: IntakeProgress | None = None,
) -> AddedVersion:
    """Read, check, hash and store one version of ``name``.

    Raises:
        InvalidConfigError: a bad name or option (exit 2); nothing was read.
        InvalidDatasetError: a file fails a check (exit 2), naming file, split and problem;
            nothing was stored.
    """
    progress = progress or _Silent()
    checked_option("dataset name", check_dataset_name, name)
    progress.phase("reading and checking")
    version, source = read_files(files)
    return store_version(repository, name, version, source, progress=progress)


def read_files(files: DatasetFiles) -> tuple[DatasetVersionData, dict[str, Any]]:
    """The canonical version of ``files`` and the ``source`` JSON that records them.

    Raises:
        InvalidConfigError: options that do not fit together (a directory and --test...).
        InvalidDatasetError: a file fails a check.
    """
    from worker.datasets import DatasetFormat, DatasetSource, infer_format, read_dataset

    if not files.paths:
        raise InvalidConfigError("give the dataset's files (or a directory in the MNIST layout)")
    if len(files.paths) == 1 and files.paths[0].is_dir():
        return _read_directory(files)
    try:
        chosen = DatasetFormat(files.format) if files.format else infer_format(files.paths)
    except ValueError:
        raise InvalidConfigError(f"--format {files.format!r}: use idx, npz or csv") from None
    source = DatasetSource(
        format=chosen,
        train=files.paths,
        test=files.test,
        label_column=files.label_column,
        class_names=files.class_names,
        label_option=files.label_option,
        class_names_option=files.class_names_option,
    )
    version = read_dataset(source)
    return version, _source_json(chosen.value, files.paths, files.test, files)


def _read_directory(files: DatasetFiles) -> tuple[DatasetVersionData, dict[str, Any]]:
    from worker.datasets import mnist_files, read_mnist_layout

    directory = files.paths[0]
    if files.format not in (None, "idx"):
        raise InvalidConfigError(
            f"{directory} is a directory: only --format idx reads one (the MNIST layout)"
        )
    if files.test:
        raise InvalidConfigError(
            f"{directory} is a directory in the MNIST layout: its test split is its t10k files; "
            "drop --test"
        )
    found = mnist_files(directory)
    version = read_mnist_layout(directory, files.class_names)
    test = tuple(path for path in (found.test_images, found.test_labels) if path is not None)
    source = _source_json("idx", (found.train_images, found.train_labels), test, files)
    return version, source | {"directory": str(directory)}


def _source_json(
    format_name: str, train: Sequence[Path], test: Sequence[Path], files: DatasetFiles
) -> dict[str, Any]:
    """What was added, for people: the format and the files' names (not their contents)."""
    source: dict[str, Any] = {
        "format": format_name,
        "files": {"train": [path.name for path in train], "test": [path.name for path in test]},
    }
    if format_name == "csv":
        source["label_column"] = files.label_column
    return source


def store_version(
    repository: Repository,
    name: str,
    version: DatasetVersionData,
    source: dict[str, Any],
    *,
    progress: IntakeProgress | None = None,
) -> AddedVersion:
    """Hash ``version`` and store it as ``name``'s next number (or find it stored already)."""
    from worker.datasets import iter_chunks

    progress = progress or _Silent()
    # One pass to learn the hash and size (the store checks both against the chunks it gets).
    progress.phase("hashing", version.canonical_bytes)
    digest, size_bytes = hashlib.sha256(), 0
    for chunk in iter_chunks(version):
        digest.update(chunk.data)
        size_bytes += len(chunk.data)
        progress.advance(len(chunk.data))

    def chunks() -> Iterator[tuple[int, bytes, str]]:
        progress.phase("storing", size_bytes)
        for chunk in iter_chunks(version):
            yield chunk.index, chunk.data, chunk.sha256
            progress.advance(len(chunk.data))

    record, created = repository.add_dataset_version(
        name=name,
        sha256=digest.hexdigest(),
        feature_kind=version.x_train.dtype.name,
        features=version.num_features,
        classes=version.num_classes,
        train_examples=int(version.x_train.shape[0]),
        test_examples=0 if version.x_test is None else int(version.x_test.shape[0]),
        class_names=version.class_names,
        size_bytes=size_bytes,
        source=source,
        chunks=chunks(),
    )
    return AddedVersion(record, created)
