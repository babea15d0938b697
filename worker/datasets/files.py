"""Checks on the input files themselves, made before any of them is read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from worker.datasets.problems import file_problem


def checked_file_size(path: Path) -> int:
    """The size of ``path`` in bytes, after checking that it is a readable, non-empty file.

    Raises:
        InvalidDatasetError: when it is missing, not a regular file, unreadable or empty.
    """
    try:
        status = path.stat()
    except FileNotFoundError:
        raise file_problem(path, "no such file", "check the path") from None
    except OSError as exc:
        raise file_problem(path, f"cannot be read ({exc.strerror})", "check the path") from None
    if path.is_dir():
        raise file_problem(path, "is a directory, not a file", "give the file's path")
    if not path.is_file():
        raise file_problem(path, "is not a regular file", "give a regular file's path")
    if not os.access(path, os.R_OK):
        raise file_problem(path, "cannot be read (permission denied)", "check its permissions")
    if status.st_size == 0:
        raise file_problem(
            path, "is empty (0 bytes)", "the copy or download probably failed: get it again"
        )
    return status.st_size


def require_distinct_files(paths: Sequence[Path]) -> None:
    """Refuse one file given twice, under the same name or two (a link, ``./x`` and ``x``).

    Raises:
        InvalidDatasetError: naming both names of the file.
    """
    seen: dict[tuple[int, int], Path] = {}
    for path in paths:
        checked_file_size(path)
        status = path.stat()
        identity = (status.st_dev, status.st_ino)
        first = seen.get(identity)
        if first is None:
            seen[identity] = path
        else:
            same = "is given twice" if first == path else f"is the same file as {first}"
            raise file_problem(
                path,
                f"{same} (one file, two roles)",
                "give each file once: images, labels and test files must be different files",
            )
