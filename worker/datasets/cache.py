"""A worker's on-disk cache of dataset versions: bounded, least recently used out first, shared.

One file per version, named by its content hash and holding its canonical bytes (``codec``), so
a copy is checked by hashing it: every load verifies it, and a damaged copy is deleted (the
caller fetches it again). The job processes of a worker share the directory:

- a version is filled under an exclusive ``flock`` on ``<hash>.lock``, so processes racing for
  the same version fetch it once: the others wait, then read what the first wrote;
- a file is written to ``<hash>.<pid>.tmp``, fsynced, then renamed into place and the directory
  fsynced, so a crash leaves at most a stray temporary file (removed by a later fill), never a
  half entry under a version's name (and a half entry would fail its hash anyway);
- the space is checked and made, and the file renamed in, under ``.lock`` (the cache's own), so
  the entries stay within the byte budget. An entry's modification time is its last use; the
  oldest go first. An entry another process is filling or deleting is skipped.

Readers take no lock: a file is only ever replaced by a rename or unlinked, and an open file
reads whole after either. Lock files are deleted by whoever holds them when they are done; a
process that locked a deleted lock file sees that its inode is no longer the path's and tries
again (the usual way to delete flock files safely).

The cache is only a speed-up: a disk that is full, read-only or failing costs a warning and a
fetch, never a job.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeVar, overload

from worker.errors import DatasetDamagedError

logger = logging.getLogger(__name__)

#: The layout's version: a later trainq that stores entries differently uses another directory.
LAYOUT: Final = "v1"
ENTRY_SUFFIX: Final = ".trqd"
_LOCK_SUFFIX: Final = ".lock"
_TMP_SUFFIX: Final = ".tmp"
_CACHE_LOCK: Final = ".lock"

T = TypeVar("T")


@dataclass(frozen=True)
class CacheEntry:
    """One version held by the cache."""

    sha256: str
    size_bytes: int
    last_used_ns: int  # the file's modification time: when a job last loaded it


class DataCache:
    """The cache under ``root`` (``TRAINQ_DATA_CACHE``), holding at most ``max_bytes``."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        """Use ``root/v1`` (created on the first write) with a budget of ``max_bytes``."""
        self.directory = root / LAYOUT
        self.max_bytes = max_bytes

    def entry_path(self, sha256: str) -> Path:
        """Where the version ``sha256`` (already checked to be 64 hex characters) is kept."""
        return self.directory / f"{sha256}{ENTRY_SUFFIX}"

    def load(
        self,
        sha256: str,
        decode: Callable[[bytes], T],
        *,
        filling: bool = False,
        mark_used: bool = True,
    ) -> T | None:
        """The decoded copy of ``sha256``, or None when there is none or it was damaged.

        Args:
            sha256: The version's content hash.
            decode: Checks the bytes against ``sha256`` and decodes them (``decode_verified``);
                its :class:`DatasetDamagedError` makes the copy count as damaged: deleted.
            filling: True inside :meth:`filling` for this version (its lock is held already).
            mark_used: False to leave its place in the eviction order (a preload is no use).
        """
        path = self.entry_path(sha256)
        try:
            with path.open("rb") as stream:
                blob = stream.read()
                inode = os.fstat(stream.fileno()).st_ino
        except FileNotFoundError:
            return None
        except OSError as exc:  # an unreadable disk is a miss: the fill replaces the file
            logger.warning("data cache: cannot read %s (%s); fetching it again", path, exc)
            return None
        try:
            value = decode(blob)
        except DatasetDamagedError as exc:
            logger.warning("data cache: %s; deleting %s and fetching it again", exc, path)
            self._delete_damaged(sha256, inode, locked=filling)
            return None
        if mark_used:
            _mark_used(path)
        return value

    @contextlib.contextmanager
    def filling(self, sha256: str) -> Iterator[None]:
        """Hold ``sha256``'s fill lock: one process fetches a version, the others wait for it.

        Without a directory to lock in (it cannot be created), nothing is held: each process
        fetches for itself, as it would with no cache.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = _lock(self._lock_path(sha256), blocking=True)
        except OSError as exc:
            logger.warning("data cache: %s is unusable (%s); not caching", self.directory, exc)
            yield
            return
        try:
            yield
        finally:
            _unlock_and_remove(fd, self._lock_path(sha256))

    def store(self, sha256: str, parts: Iterable[bytes], size_bytes: int) -> bool:
        """Keep ``parts`` (the canonical bytes, in order) as ``sha256``; call inside
        :meth:`filling`. Older entries are evicted first to stay within the budget.

        Returns:
            True when the entry is in place; False when it is larger than the whole budget or
            the disk refused it (logged).
        """
        if size_bytes > self.max_bytes:
            logger.info(
                "data cache: version %s (%d bytes) is larger than TRAINQ_DATA_CACHE_MAX_BYTES=%d; "
                "not cached, so every job that needs it fetches it",
                sha256[:12],
                size_bytes,
                self.max_bytes,
            )
            return False
        tmp = self.directory / f"{sha256}.{os.getpid()}{_TMP_SUFFIX}"
        try:
            _write_synced(tmp, parts)
            with self._cache_lock():
                self._evict(keep=tmp, room_for=size_bytes)
                os.replace(tmp, self.entry_path(sha256))
                _sync_directory(self.directory)
            _mark_used(self.entry_path(sha256))
        except OSError as exc:
            logger.warning("data cache: cannot keep version %s (%s)", sha256[:12], exc)
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        return True

    def entries(self) -> list[CacheEntry]:
        """The versions held, least recently used first."""
        found = []
        try:
            paths = list(self.directory.glob(f"*{ENTRY_SUFFIX}"))
        except OSError:
            return []
        for path in paths:
            try:
                status = path.stat()
            except OSError:  # evicted since the listing
                continue
            found.append(
                CacheEntry(path.name[: -len(ENTRY_SUFFIX)], status.st_size, status.st_mtime_ns)
            )
        return sorted(found, key=lambda entry: (entry.last_used_ns, entry.sha256))

    def _evict(self, *, keep: Path, room_for: int) -> None:
        """Delete least recently used entries until ``room_for`` more bytes fit, besides the
        entry whose temporary file is ``keep``; drop stray temporary files of fills that died.
        Called under the cache lock and the fill lock of ``keep``'s version."""
        filling = keep.name.split(".", 1)[0]
        self._remove_stray_tmp_files(keep, filling)
        entries = [entry for entry in self.entries() if entry.sha256 != filling]
        total = sum(entry.size_bytes for entry in entries)
        for entry in entries:
            if total + room_for <= self.max_bytes:
                return
            if self._delete_unless_busy(entry.sha256):
                total -= entry.size_bytes
                logger.info(
                    "data cache: evicted version %s (%d bytes, least recently used)",
                    entry.sha256[:12],
                    entry.size_bytes,
                )

    def _remove_stray_tmp_files(self, keep: Path, filling: str) -> None:
        for tmp in self.directory.glob(f"*{_TMP_SUFFIX}"):
            sha256 = tmp.name.split(".", 1)[0]
            if tmp == keep:
                continue
            if sha256 == filling:  # this process holds its fill lock: any other is stray
                with contextlib.suppress(OSError):
                    tmp.unlink()
                continue
            # Free fill lock: no process is writing it, so it is what a crash left behind.
            fd = _lock(self._lock_path(sha256), blocking=False)
            if fd is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                _unlock_and_remove(fd, self._lock_path(sha256))

    def _delete_unless_busy(self, sha256: str) -> bool:
        fd = _lock(self._lock_path(sha256), blocking=False)
        if fd is None:  # being filled (or deleted) by another process: leave it
            return False
        try:
            self.entry_path(sha256).unlink(missing_ok=True)
        finally:
            _unlock_and_remove(fd, self._lock_path(sha256))
        return True

    def _delete_damaged(self, sha256: str, inode: int, *, locked: bool) -> None:
        """Delete the entry read as damaged, unless another process replaced it meanwhile."""
        # flock is per open file: taking the lock again in the process holding it would wait
        # for ever, so a caller inside filling() says so.
        with contextlib.suppress(OSError), contextlib.ExitStack() as stack:
            if not locked:
                stack.enter_context(self.filling(sha256))
            path = self.entry_path(sha256)
            if path.stat().st_ino == inode:
                path.unlink()

    @contextlib.contextmanager
    def _cache_lock(self) -> Iterator[None]:
        fd = os.open(self.directory / _CACHE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock; this file is never deleted

    def _lock_path(self, sha256: str) -> Path:
        return self.directory / f"{sha256}{_LOCK_SUFFIX}"


@overload
def _lock(path: Path, *, blocking: Literal[True]) -> int: ...
@overload
def _lock(path: Path, *, blocking: Literal[False]) -> int | None: ...
def _lock(path: Path, *, blocking: bool) -> int | None:
    """An open descriptor holding an exclusive flock on ``path``; None when not blocking and
    another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        # The holder deleted this lock file while we waited: lock the path's current file.
        os.close(fd)


def _unlock_and_remove(fd: int, path: Path) -> None:
    # Unlinked while still held, so whoever waits on the old file sees it is stale.
    try:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    finally:
        os.close(fd)


def _mark_used(path: Path) -> None:
    # The clock's full resolution: the kernel's own stamp is coarse (a few milliseconds), and
    # two uses within it would tie in the least-recently-used order.
    now = time.time_ns()
    with contextlib.suppress(OSError):  # on a read-only disk the order is only less exact
        os.utime(path, ns=(now, now))


def _write_synced(path: Path, parts: Iterable[bytes]) -> None:
    with path.open("wb") as stream:
        for part in parts:
            stream.write(part)
        stream.flush()
        os.fsync(stream.fileno())


def _sync_directory(directory: Path) -> None:
    # The rename is durable only once the directory's entry is on disk too.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
