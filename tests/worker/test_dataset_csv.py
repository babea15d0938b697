"""CSV tables are read with their header; a bad line is named by its number and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from worker.datasets import (
    DatasetFormat,
    DatasetLimits,
    DatasetSource,
    DatasetVersionData,
    content_hash,
    read_dataset,
)
from worker.errors import InvalidDatasetError

TABLE = "a,b,label\n0.5,1,0\n1.5,2,1\n2.5,3,1\n3.5,5,0\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def read(path: Path, *, test: Path | None = None, **options: Any) -> DatasetVersionData:
    limits = DatasetLimits(**options.pop("limits", {}))
    source = DatasetSource(
        DatasetFormat.CSV, train=(path,), test=(test,) if test else (), **options
    )
    return read_dataset(source, limits=limits)


def test_the_label_column_becomes_the_labels_and_every_other_column_a_feature(
    tmp_path: Path,
) -> None:
    version = read(write(tmp_path / "t.csv", "a,label,b\n0.5,0,1\n1.5,1,2\n"))
    assert version.x_train.dtype == np.float32
    assert version.x_train.tolist() == [[0.5, 1.0], [1.5, 2.0]]
    assert version.y_train.tolist() == [0, 1]


def test_the_label_column_is_chosen_by_its_header_name(tmp_path: Path) -> None:
    version = read(write(tmp_path / "t.csv", "y,a\n1,0.5\n0,1.5\n"), label_column="y")
    assert version.y_train.tolist() == [1, 0] and version.num_features == 1


def test_a_ragged_row_is_named_by_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,b,label\n0.5,1,0\n1.5,2,1\n2.5,1\n")
    with pytest.raises(
        InvalidDatasetError, match="line 4 has 2 value\\(s\\) but the header has 3 columns"
    ):
        read(path)


def test_a_fractional_label_is_refused_as_not_an_integer(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,label\n0.5,0\n1.5,2.5\n")
    with pytest.raises(
        InvalidDatasetError,
        match=r"column 'label'\): holds '2.5' at line 3: labels must be integer",
    ):
        read(path)


def test_a_word_in_the_label_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,label\n0.5,0\n1.5,cat\n")
    with pytest.raises(
        InvalidDatasetError, match="line 3, column 'label' holds 'cat', not an integer class number"
    ):
        read(path)


def test_a_word_among_the_features_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,b,label\n0.5,x1,0\n1.5,2,1\n")
    with pytest.raises(InvalidDatasetError, match="line 2, column 'b' holds 'x1', not a number"):
        read(path)


def test_nan_in_a_feature_is_named_by_line_and_column(tmp_path: Path) -> None:
    # The blank line is skipped, and still counted in the line number.
    path = write(tmp_path / "t.csv", "a,b,label\n0.5,1,0\n\n1.5,nan,1\n")
    with pytest.raises(InvalidDatasetError, match="the first is 'nan' at line 4, column 'b'"):
        read(path)


def test_infinity_in_a_feature_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,label\ninf,0\n1.5,1\n")
    with pytest.raises(InvalidDatasetError, match="not finite numbers; the first is 'inf'"):
        read(path)


def test_a_missing_label_column_lists_the_columns_and_the_option(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", TABLE)
    with pytest.raises(
        InvalidDatasetError, match="has no column 'class' \\(--label\\); its columns are 'a', 'b'"
    ):
        read(path, label_column="class", label_option="--label")


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidDatasetError, match="has a header but no rows"):
        read(write(tmp_path / "t.csv", "a,label\n"))


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidDatasetError, match=r"t.csv: is empty \(0 bytes\)"):
        read(write(tmp_path / "t.csv", ""))


def test_a_column_named_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidDatasetError, match="names 'a' twice"):
        read(write(tmp_path / "t.csv", "a,a,label\n1,2,0\n"))


def test_text_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,label\n0.5,0\n1,1\n")
    path.write_bytes(b"\xff\xfe" + path.read_bytes())
    with pytest.raises(InvalidDatasetError, match="is not UTF-8 text"):
        read(path)


def test_a_test_table_with_other_columns_is_refused(tmp_path: Path) -> None:
    train = write(tmp_path / "train.csv", TABLE)
    test = write(tmp_path / "test.csv", "a,c,label\n1,2,0\n")
    with pytest.raises(
        InvalidDatasetError, match=r"test.csv \(test split, header\): has the columns"
    ):
        read(train, test=test)


def test_a_separate_test_table_becomes_the_test_split(tmp_path: Path) -> None:
    train = write(tmp_path / "train.csv", TABLE)
    test = write(tmp_path / "test.csv", "a,b,label\n9,9,1\n")
    version = read(train, test=test)
    assert version.x_test is not None and version.x_test.tolist() == [[9.0, 9.0]]


def test_the_training_table_given_again_as_the_test_table_is_refused(tmp_path: Path) -> None:
    train = write(tmp_path / "train.csv", TABLE)
    (tmp_path / "link.csv").symlink_to(train)
    with pytest.raises(InvalidDatasetError, match=r"link.csv: is the same file as .*train.csv"):
        read(train, test=tmp_path / "link.csv")


def test_the_same_rows_written_differently_are_one_version(tmp_path: Path) -> None:
    plain = write(tmp_path / "a.csv", TABLE)
    styled = write(
        tmp_path / "b.csv",
        '\ufeff"a","b","label"\r\n0.50,1.0,0\r\n1.5,2,1.0\r\n2.5,3e0,1\r\n3.5,5,0\r\n',
    )
    assert content_hash(read(plain)) == content_hash(read(styled))


def test_a_table_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    # The last line would fail to parse; the limit, checked from the line count, speaks first.
    path = write(tmp_path / "t.csv", "a,b,label\n" + "1,2,0\n" * 100 + "x,y,z\n")
    with pytest.raises(InvalidDatasetError, match=r"over the limit of 100 bytes"):
        read(path, limits={"max_canonical_bytes": 100})
