"""A damaged, unreadable or unwritable persistent XLA cache never fails a run.

TensorFlow's persistent XLA cache (turned on by ``xla_choice.use_compile_cache``) fails the
compiled call itself when an entry cannot be read (a truncated entry: ``OutOfRangeError``; other
damage: ``DataLossError``) or written (a full disk: ``ResourceExhaustedError``; a file where the
directory should be: ``FailedPreconditionError``), and the failing function remembers the
failure: calling it again fails the same way. So a failure that is the cache's (by its type, and
by the cache's directory or TensorFlow's wording for a short read in its message, so that no
other error is ever taken for one) is met by setting the directory aside
(``compiled.damaged-<time>``; only trainq's own directory is touched) and calling a freshly traced
function once more (:func:`set_aside`): the cache then misses, XLA compiles and writes a new
entry, and the result is what a clean compile gives, since the cache holds compiled code, never
state. When that call fails too, nothing can be written there (a full disk): the cache is turned
off for this home for a day (``compiled.off``, honoured by later processes) and
:class:`CompileCacheUnusableError` is raised for the job to hand its run back without spending
its attempt (:func:`give_up`). TensorFlow reads its XLA flags once per process, so only a new
process trains without the cache (TF 2.21 has ``--tf_xla_persistent_cache_read_only``, but no
way to change a flag after import).

No TensorFlow at import: ``xla_choice`` (imported by the CLI) asks :func:`turned_off`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Final

from worker.errors import WorkerError

logger = logging.getLogger(__name__)

#: How long a cache that could not be written stays off for a home (a full disk may be freed).
OFF_FOR_S: Final = 24 * 3600.0

#: TensorFlow's errors for an entry it cannot read or write; others are never the cache's.
_CACHE_ERROR_NAMES: Final = frozenset(
    {
        "DataLossError",  # an entry that does not parse
        "OutOfRangeError",  # a truncated entry
        "ResourceExhaustedError",  # a full disk
        "FailedPreconditionError",  # a file where the directory should be
        "PermissionDeniedError",
        "NotFoundError",  # the directory set aside by another process while this one wrote
        "UnknownError",  # an errno TensorFlow does not map (a read-only file system)
    }
)

#: What TensorFlow says when an entry is shorter than its header: the message names no file.
_SHORT_READ: Final = "Read less bytes than requested"

_active: list[Path] = []  # the directory this process's TensorFlow keeps its entries in


class CompileCacheUnusableError(WorkerError):
    """Raised when the persistent XLA cache failed a compiled call twice: this process cannot
    compile XLA until it ends; the job hands its run back without spending its attempt."""


def activate(directory: Path) -> None:
    """Record that this process's TensorFlow will keep its XLA entries in ``directory``."""
    _active[:] = [directory]


def active_directory() -> Path | None:
    """The directory this process's XLA entries go to; None when the cache is not on."""
    return _active[0] if _active else None


def off_marker(directory: Path) -> Path:
    """The file that turns the cache in ``directory`` off for later processes."""
    return directory.with_name(f"{directory.name}.off")


def turned_off(directory: Path) -> bool:
    """Whether a process here failed to write to ``directory`` within :data:`OFF_FOR_S`."""
    marker = off_marker(directory)
    try:
        if time.time() - marker.stat().st_mtime < OFF_FOR_S:
            return True
        marker.unlink()  # long enough: try again (the free-space check still applies)
    except OSError:
        pass
    return False


def is_cache_error(error: BaseException, directory: Path) -> bool:
    """Whether ``error`` came from reading or writing the cache in ``directory``."""
    if type(error).__name__ not in _CACHE_ERROR_NAMES:
        return False
    message = str(error)
    return str(directory) in message or (
        type(error).__name__ == "OutOfRangeError" and _SHORT_READ in message
    )


def set_aside(error: BaseException) -> Path | None:
    """Move the cache's directory out of the way when ``error`` is the cache's.

    Returns:
        Where it was moved (None when a concurrent process moved it first, or it is a mount
        point), for the caller to trace its function again and call it once more; raises
        ``error`` itself when it is not the cache's.
    """
    directory = active_directory()
    if directory is None or not is_cache_error(error, directory):
        raise error
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside = directory.with_name(f"{directory.name}.damaged-{stamp}-{os.getpid()}")
    try:
        os.rename(directory, aside)
    except OSError:
        return None
    _remove_older_set_asides(directory, keep=aside)
    with contextlib.suppress(OSError):
        directory.mkdir()
    return aside


def compiled_again(error: BaseException, aside: Path | None) -> None:
    """Say, in one warning line, that the cache failed a call and a fresh compile replaced it."""
    where = f"set aside as {aside.name}" if aside is not None else "left as it is"
    logger.warning(
        "XLA compile cache: %s failed (%s: %s); %s, chunk compiled again",
        active_directory(),
        type(error).__name__,
        _first_line(error),
        where,
    )


def give_up(error: BaseException) -> CompileCacheUnusableError:
    """Turn the cache off for later processes after it failed a fresh compile too.

    Returns the error for the caller to raise; raises ``error`` itself when it is not the
    cache's.
    """
    directory = active_directory()
    if directory is None or not is_cache_error(error, directory):
        raise error
    marker = off_marker(directory)
    try:
        marker.write_text(f"{type(error).__name__}: {_first_line(error)}\n")
        after = f"off for {OFF_FOR_S / 3600:.0f} h ({marker} says why)"
    except OSError as exc:
        after = f"could not be turned off ({exc.strerror})"
    return CompileCacheUnusableError(
        f"XLA compile cache {directory} cannot be used ({type(error).__name__}: "
        f"{_first_line(error)}); {after}; the run goes back to the queue, its attempt not spent"
    )


def _remove_older_set_asides(directory: Path, *, keep: Path) -> None:
    """Keep only the newest directory set aside: each holds a copy of the compiled chunks."""
    for older in directory.parent.glob(f"{directory.name}.damaged-*"):
        if older != keep:
            _remove_tree(older)


def _remove_tree(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            for entry in path.iterdir():
                entry.unlink()  # XLA's entries are flat files
            path.rmdir()
        else:
            path.unlink()


def _first_line(error: BaseException) -> str:
    """TensorFlow's message without its ``[Op:…]`` suffix, on one line."""
    message = str(error).splitlines()[0] if str(error) else ""
    return message.split(" [Op:")[0]
