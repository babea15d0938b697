"""What ``trainq data add`` is given, and the one function that reads it into a version.

Nothing here stores anything: a source is read and checked completely, and only a version that
passed every check comes back, for the caller to hash and store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from worker.datasets.canonical import DatasetVersionData, RawDataset, build_version
from worker.datasets.csv_table import read_csv
from worker.datasets.files import require_distinct_files
from worker.datasets.idx import read_idx_split
from worker.datasets.limits import DatasetLimits
from worker.datasets.npz import read_npz
from worker.datasets.problems import file_problem
from worker.errors import InvalidDatasetError


class DatasetFormat(StrEnum):
    """The formats a version can be read from."""

    IDX = "idx"  # images and labels files, gzipped or not (MNIST layout)
    NPZ = "npz"  # x_train, y_train[, x_test, y_test][, class_names]
    CSV = "csv"  # a header, an integer label column, numeric features


@dataclass(frozen=True)
class DatasetSource:
    """The files of one version and how to read them (what ``trainq data add`` parses into).

    ``train`` is (images, labels) for IDX and (file,) for NPZ and CSV; ``test`` likewise, or ()
    when there is no separate test split (an NPZ may carry its own).
    """

    format: DatasetFormat
    train: tuple[Path, ...]
    test: tuple[Path, ...] = ()
    label_column: str = "label"  # CSV only
    class_names: tuple[str, ...] | None = None
    # How messages name the options, in the caller's words (the CLI: "--label", "--class-names").
    label_option: str = "label_column"
    class_names_option: str = "class_names"


def infer_format(paths: Sequence[Path]) -> DatasetFormat:
    """The format the file names suggest: ``.npz``, ``.csv``, else IDX.

    Raises:
        InvalidDatasetError: when the names suggest two different formats.
    """
    formats = {_format_of(path) for path in paths}
    if len(formats) != 1:
        raise InvalidDatasetError(
            f"{', '.join(map(str, paths))}: the file names suggest formats "
            f"{', '.join(sorted(formats))}; give the format explicitly (idx, npz or csv)"
        )
    return formats.pop()


def read_dataset(
    source: DatasetSource, *, limits: DatasetLimits | None = None
) -> DatasetVersionData:
    """Read and check every file of ``source``; return the canonical version.

    Raises:
        InvalidDatasetError: naming the file, split and problem; nothing has been stored.
    """
    _require_file_counts(source)
    require_distinct_files([*source.train, *source.test])
    raw = _read_raw(source, limits)
    names = source.class_names
    if names is not None and raw.class_names is not None and names != raw.class_names:
        raise file_problem(
            source.train[0],
            f"stores class_names {list(raw.class_names)[:5]}… but {source.class_names_option} "
            "gives others",
            f"drop {source.class_names_option} to use the stored names, or fix them",
        )
    return build_version(
        raw.train,
        raw.test,
        names if names is not None else raw.class_names,
        limits=limits,
        class_names_option=source.class_names_option,
    )


def _read_raw(source: DatasetSource, limits: DatasetLimits | None) -> RawDataset:
    test = source.test[0] if source.test else None
    if source.format is DatasetFormat.NPZ:
        return read_npz(source.train[0], test_path=test, limits=limits)
    if source.format is DatasetFormat.CSV:
        return read_csv(
            source.train[0],
            label_column=source.label_column,
            test_path=test,
            limits=limits,
            label_option=source.label_option,
        )
    train = read_idx_split(source.train[0], source.train[1], "train", limits)
    if not source.test:
        return RawDataset(train, None, None)
    return RawDataset(train, read_idx_split(source.test[0], source.test[1], "test", limits), None)


def _require_file_counts(source: DatasetSource) -> None:
    wanted = 2 if source.format is DatasetFormat.IDX else 1
    what = "an images file and a labels file" if wanted == 2 else "one file"
    for split, paths in (("train", source.train), ("test", source.test)):
        if len(paths) != wanted and (split == "train" or paths):
            raise InvalidDatasetError(
                f"{source.format.value} {split} split: {len(paths)} file(s) given; "
                f"give {what}{' (or none)' if split == 'test' else ''}"
            )


def _format_of(path: Path) -> DatasetFormat:
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes[-1:] == [".npz"]:
        return DatasetFormat.NPZ
    if suffixes[-1:] == [".csv"]:
        return DatasetFormat.CSV
    return DatasetFormat.IDX
