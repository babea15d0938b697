"""CSV tables: a header, then one example a row; one integer label column, every other column a
numeric feature. UTF-8 (a byte-order mark is fine), comma-separated, ``"`` quotes, blank lines
skipped. NumPy's C parser reads the table; when it refuses one, a second pass with the ``csv``
module finds the first bad line and says what is wrong with it in words.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from worker.datasets.canonical import RawDataset, RawSplit
from worker.datasets.checks import canonical_bytes, require_within_size
from worker.datasets.files import checked_file_size
from worker.datasets.limits import DatasetLimits
from worker.datasets.problems import Origin, echo, invalid
from worker.errors import InvalidDatasetError

_ENCODING = "utf-8-sig"
_LABEL_LIMIT = 2**31  # labels become int32
_BLOCK_BYTES = 16 * 2**20


def read_csv(
    path: Path,
    *,
    label_column: str = "label",
    test_path: Path | None = None,
    limits: DatasetLimits | None = None,
    label_option: str = "label_column",
) -> RawDataset:
    """Read a training table, and a separate test table with the same header.

    Args:
        path: The training table.
        label_column: The header name of the column holding the class numbers 0..C-1.
        test_path: The test table, or None.
        limits: The bounds to check; None means the module constants.
        label_option: How messages name ``label_column`` (the CLI says ``--label``).

    Raises:
        InvalidDatasetError: naming the file, split, line and column of the first problem.
    """
    limits = limits or DatasetLimits()
    header = _header(path, "train")
    train = _read_table(path, "train", header, label_column, label_option, limits)
    test = None
    if test_path is not None:
        test_header = _header(test_path, "test")
        if test_header != header:
            raise invalid(
                Origin(test_path, "test", "header"),
                f"has the columns {_columns(test_header)}, the training table {_columns(header)}",
                "give the test table the same columns, in the same order",
            )
        test = _read_table(test_path, "test", header, label_column, label_option, limits)
    return RawDataset(train, test, None)


def _header(path: Path, split: str) -> list[str]:
    checked_file_size(path)
    origin = Origin(path, split, "header")
    try:
        with path.open(encoding=_ENCODING, newline="") as stream:
            header = next(csv.reader(stream), [])
    except UnicodeDecodeError as exc:
        raise invalid(origin, f"is not UTF-8 text ({exc.reason})", "save it as UTF-8") from None
    except csv.Error as exc:
        raise invalid(origin, f"cannot be parsed ({exc})", "check the file") from None
    names = [name.strip() for name in header]
    if not names or any(not name for name in names):
        raise invalid(origin, "has an empty column name", "name every column on the first line")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise invalid(origin, f"names {_columns(duplicates)} twice", "name each column once")
    return names


def _read_table(
    path: Path,
    split: str,
    header: list[str],
    label_column: str,
    label_option: str,
    limits: DatasetLimits,
) -> RawSplit:
    origin = Origin(path, split, "table")
    if label_column not in header:
        raise invalid(
            origin,
            f"has no column {echo(label_column)} ({label_option}); its columns are "
            f"{_columns(header)}",
            f"set {label_option} to the column that holds the class numbers",
        )
    if len(header) < 2:
        raise invalid(origin, "has only the label column", "give at least one feature column")
    # Newlines bound the rows: refuse an oversized table before parsing any of it.
    rows_at_most = _count_newlines(path)
    require_within_size(origin, canonical_bytes(rows_at_most, len(header) - 1, 4), limits)
    table = _parse(path, origin, header, label_column)
    if table.shape[0] == 0:
        raise invalid(origin, "has a header but no rows", "give at least one example")
    label_index = header.index(label_column)
    features = np.delete(table, label_index, axis=1)
    feature_names = [name for name in header if name != label_column]
    _require_finite(features, path, origin, feature_names)
    labels = _integer_labels(table[:, label_index], path, origin.at(f"column {echo(label_column)}"))
    return RawSplit(
        features,
        labels,
        origin.at(f"feature columns of {path.name}"),
        origin.at(f"column {echo(label_column)}"),
    )


def _parse(path: Path, origin: Origin, header: list[str], label_column: str) -> npt.NDArray[Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked
            return np.loadtxt(
                path,
                delimiter=",",
                skiprows=1,
                dtype=np.float64,
                ndmin=2,
                comments=None,
                quotechar='"',
                encoding=_ENCODING,
            )
    except UnicodeDecodeError as exc:
        raise invalid(origin, f"is not UTF-8 text ({exc.reason})", "save it as UTF-8") from None
    except ValueError as exc:
        raise _first_bad_line(path, origin, header, label_column) or invalid(
            origin, f"cannot be parsed ({echo(exc)})", "check the file"
        ) from None


def _first_bad_line(
    path: Path, origin: Origin, header: list[str], label_column: str
) -> InvalidDatasetError | None:
    """The error for the first line NumPy could not parse, or None if none is found."""
    for line, row in _data_rows(path):
        if len(row) != len(header):
            return invalid(
                origin,
                f"line {line} has {len(row)} value(s) but the header has {len(header)} columns",
                "give every row one value per column (a ragged row, a stray comma?)",
            )
        for name, value in zip(header, row, strict=True):
            try:
                float(value)
            except ValueError:
                what = "an integer class number" if name == label_column else "a number"
                return invalid(
                    origin,
                    f"line {line}, column {echo(name)} holds {echo(value)}, not {what}",
                    "give numbers only (map text categories to numbers first)",
                )
    return None


def _data_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank row after the header with its line number, as NumPy counts rows."""
    with path.open(encoding=_ENCODING, newline="") as stream:
        reader = csv.reader(stream)
        next(reader, None)
        for row in reader:
            if row:
                yield reader.line_num, row


def _line_of_row(path: Path, row: int) -> int:
    for index, (line, _) in enumerate(_data_rows(path)):
        if index == row:
            return line
    return row + 2  # not reached: the row was parsed from this file


def _require_finite(
    features: npt.NDArray[np.float64], path: Path, origin: Origin, names: list[str]
) -> None:
    finite = np.isfinite(features)
    if finite.all():
        return
    row, column = (int(i) for i in np.argwhere(~finite)[0])
    raise invalid(
        origin,
        f"holds {np.count_nonzero(~finite):,} value(s) that are not finite numbers; the first "
        f"is {echo(features[row, column])} at line {_line_of_row(path, row)}, column "
        f"{echo(names[column])}",
        "remove or fill the missing or infinite values before adding the dataset",
    )


def _integer_labels(
    values: npt.NDArray[np.float64], path: Path, origin: Origin
) -> npt.NDArray[np.int64]:
    whole = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < _LABEL_LIMIT)
    if not whole.all():
        row = int(np.flatnonzero(~whole)[0])
        raise invalid(
            origin,
            f"holds {echo(values[row])} at line {_line_of_row(path, row)}: labels must be "
            "integer class numbers 0..C-1",
            "give each row's class as a whole number (map class names to numbers first)",
        )
    return values.astype(np.int64)


def _count_newlines(path: Path) -> int:
    count = 0
    with path.open("rb") as stream:
        while block := stream.read(_BLOCK_BYTES):
            count += block.count(b"\n")
    return count


def _columns(names: list[str]) -> str:
    shown = ", ".join(echo(name) for name in names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "")
