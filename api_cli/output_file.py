"""Writing an output file all or nothing: ``export``, ``plot`` and ``sweep plot`` share it.

A full disk, a read-only directory or a denied permission ends in ``OutputWriteError`` (exit 73)
with the reason in words, and no file is left behind: neither a half-written one under the
requested name nor the temporary one beside it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from storage.errors import OutputWriteError


def write_all_or_nothing(out: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` with a binary file beside ``out``, then rename that file to ``out``.

    Raises:
        OutputWriteError: the file could not be written; the message says why (no space left,
            read-only file system, permission denied) and names ``--out``.
    """
    # Written beside the target, then renamed: never a half-written file under the requested
    # name; the leading dot hides it meanwhile, and the pid keeps two writers to one directory
    # apart.
    temporary = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with temporary.open("xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        reason = (exc.strerror or type(exc).__name__).lower()
        raise OutputWriteError(
            f"cannot write {out}: {reason}; free some space or choose another --out"
        ) from None
