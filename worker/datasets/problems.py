"""Where a value came from, and the one way a reader reports a problem with it.

Every message has the same shape: the file, the split and the array or column, the problem in the
words a person uses, then what to do. A reader never lets NumPy's or zlib's own error reach the
user alone; it says which file and split it was reading.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from worker.errors import InvalidDatasetError

#: At most this many characters of a value taken from a file go into a message.
MAX_ECHO_CHARS = 40


@dataclass(frozen=True)
class Origin:
    """One array of one split: ``data.npz`` / ``train`` / ``y_train``."""

    path: Path | None  # None for arrays handed over in memory
    split: str  # "train" or "test"
    what: str  # the array or column in the user's words: "y_train", "labels", "column 'label'"

    def at(self, what: str) -> Origin:
        """The same file and split, another array or column."""
        return replace(self, what=what)

    def describe(self) -> str:
        """``data.npz (train split, y_train)``."""
        where = str(self.path) if self.path is not None else "arrays in memory"
        return f"{where} ({self.split} split, {self.what})"


def invalid(origin: Origin, problem: str, advice: str) -> InvalidDatasetError:
    """The error for ``problem`` in ``origin``, ending with ``advice`` (what to do next)."""
    return InvalidDatasetError(f"{origin.describe()}: {problem}; {advice}")


def file_problem(path: Path, problem: str, advice: str) -> InvalidDatasetError:
    """The error for a problem with a whole file, before any split is known."""
    return InvalidDatasetError(f"{path}: {problem}; {advice}")


def echo(value: object) -> str:
    """``value`` quoted for a message, cut to :data:`MAX_ECHO_CHARS` characters."""
    text = str(value)
    if len(text) > MAX_ECHO_CHARS:
        text = text[:MAX_ECHO_CHARS] + "…"
    return repr(text)
