"""The one way a job gets a dataset version: by its content hash, verified, fetched at most once.

Look-up order, each step verified against the hash asked for before it is trusted:

1. this process's memory (a version loaded before, or preloaded by the worker's main process
   before it forked this job process);
2. Fashion-MNIST's own version, read from its files where they are installed (the Debian
   package), as jobs always did: no database fetch, and the content hash decides;
3. the worker's on-disk cache (``worker.datasets.cache``; a damaged copy is deleted);
4. the store (``read_dataset_chunks``), every chunk and the whole checked by ``decode_chunks``,
   then kept on disk for the worker's other job processes and its next jobs.

So a job never trains on anything but the version its run recorded: every path ends in a SHA-256
over the canonical bytes equal to the one asked for. A version removed from the cluster is
:class:`~worker.errors.DatasetNotAvailableError`: the job fails with what to do, without retry.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from storage import Settings
from storage.errors import DatasetNotFoundError as StoredVersionNotFoundError
from worker.datasets.cache import DataCache
from worker.datasets.canonical import DatasetVersionData
from worker.datasets.codec import (
    DatasetChunk,
    content_hash,
    decode_chunks,
    decode_verified,
    short_hash,
)
from worker.datasets.scaling import Scaling, ScalingKind
from worker.errors import (
    DatasetCorruptError,
    DatasetNotAvailableError,
    DatasetNotFoundError,
    InvalidConfigError,
)

logger = logging.getLogger(__name__)

#: The content hash of Fashion-MNIST as the Debian package ``dataset-fashion-mnist`` ships it
#: (``content_hash(read_fashion_mnist())``; a test keeps it true).
FASHION_MNIST_SHA256: Final = "0eab4dca8fed1e40b9e8953db095c4e81545dd90a7141dd2e70cd082e94ec36e"
#: Versions a process keeps in memory: the one it trains on and one more (an evaluation, the
#: next run), since a version may be up to 2 GiB.
MEMORY_VERSIONS: Final = 2
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DatasetChunkReader(Protocol):
    """What loading needs of the store (``storage.Repository`` is one)."""

    def read_dataset_chunks(self, sha256: str) -> list[tuple[int, bytes, str]]:
        """The version's chunks (index, bytes, SHA-256) in order; DatasetNotFoundError when gone."""
        ...


_memory: OrderedDict[str, DatasetVersionData] = OrderedDict()
_memory_lock = threading.Lock()


def load_version(
    repository: DatasetChunkReader, settings: Settings, sha256: str, *, label: str | None = None
) -> DatasetVersionData:
    """The dataset version whose content hash is ``sha256``, verified; fetched at most once per
    worker while its cache keeps it.

    Args:
        repository: The store, asked only when no verified copy is at hand.
        settings: Where the cache is (``TRAINQ_DATA_CACHE``) and its budget; ``TRAINQ_DATA_DIR``.
        sha256: The content hash the run recorded (``data_sha256``).
        label: How messages name the version (``NAME@N``, the run's ``data_name``).

    Raises:
        InvalidConfigError: ``sha256`` is not a content hash (64 lowercase hex characters).
        DatasetNotAvailableError: the version is no longer stored in this cluster.
        DatasetDamagedError: the stored copy fails its checksums (the cache is never blamed:
            a damaged cached copy is fetched again).
        DatabaseUnavailableError: the store cannot be reached (the job's outage handling).
    """
    _check_hash(sha256)
    with _memory_lock:
        if sha256 in _memory:
            _memory.move_to_end(sha256)
            return _memory[sha256]
    version = _load(repository, settings, sha256, label)
    remember(sha256, version)
    return version


def remember(sha256: str, version: DatasetVersionData) -> None:
    """Keep ``version`` (verified to be ``sha256``) in this process's memory."""
    with _memory_lock:
        _memory[sha256] = version
        _memory.move_to_end(sha256)
        while len(_memory) > MEMORY_VERSIONS:
            _memory.popitem(last=False)


def remembered() -> list[str]:
    """The hashes held in this process's memory, least recently used first."""
    with _memory_lock:
        return list(_memory)


def forget_all() -> None:
    """Empty this process's memory of versions (tests; a process that needs the room)."""
    with _memory_lock:
        _memory.clear()


def data_cache(settings: Settings) -> DataCache:
    """The on-disk cache ``settings`` name."""
    return DataCache(settings.data_cache_path, settings.data_cache_max_bytes)


def preload_cached_versions(settings: Settings, *, max_versions: int, max_bytes: int) -> list[str]:
    """Load into memory the most recently used versions of the disk cache, never the database.

    Called in a worker's main process before it forks, so its job processes find them loaded.

    Args:
        settings: Where the cache is.
        max_versions: At most this many (never more than :data:`MEMORY_VERSIONS`).
        max_bytes: Their files together at most this many bytes.

    Returns:
        The hashes now in memory, most recently used first.
    """
    cache = data_cache(settings)
    loaded: list[str] = []
    budget = max_bytes
    for entry in reversed(cache.entries()):
        if len(loaded) >= min(max_versions, MEMORY_VERSIONS):
            break
        if entry.size_bytes > budget:
            continue
        version = cache.load(entry.sha256, _decoder(entry.sha256, None), mark_used=False)
        if version is not None:
            remember(entry.sha256, version)
            loaded.append(entry.sha256)
            budget -= entry.size_bytes
    # remember() puts the last loaded first out: put the most recent back at the end.
    for sha256 in reversed(loaded):
        with _memory_lock:
            if sha256 in _memory:
                _memory.move_to_end(sha256)
    return loaded


def prefetch_to_disk(repository: DatasetChunkReader, settings: Settings, sha256: str) -> bool:
    """Make sure the disk cache holds ``sha256`` (fetched and verified if it does not), without
    keeping it in memory: for a worker's main process, ahead of the jobs that will need it.

    Returns:
        True when the cache holds it now (or it is Fashion-MNIST, read from its files).

    Raises:
        The errors of :func:`load_version`.
    """
    _check_hash(sha256)
    if sha256 == FASHION_MNIST_SHA256 and _from_fashion_mnist_files(settings) is not None:
        return True
    cache = data_cache(settings)
    if cache.entry_path(sha256).exists():
        return True
    with cache.filling(sha256):
        if cache.entry_path(sha256).exists():
            return True
        chunks = _fetch(repository, sha256, None)
        _verified(chunks, sha256, None)
        return cache.store(sha256, (data for _, data, _ in chunks), _size(chunks))


def _load(
    repository: DatasetChunkReader, settings: Settings, sha256: str, label: str | None
) -> DatasetVersionData:
    if sha256 == FASHION_MNIST_SHA256:
        version = _from_fashion_mnist_files(settings)
        if version is not None:
            return version
    cache = data_cache(settings)
    decode = _decoder(sha256, label)
    version = cache.load(sha256, decode)
    if version is not None:
        return version
    with cache.filling(sha256):
        # Another job process may have fetched it while this one waited for the lock.
        version = cache.load(sha256, decode, filling=True)
        if version is not None:
            return version
        chunks = _fetch(repository, sha256, label)
        version = _verified(chunks, sha256, label)
        cache.store(sha256, (data for _, data, _ in chunks), _size(chunks))
    logger.info(
        "dataset %s fetched from the store (%d bytes in %d chunks) and cached",
        label or short_hash(sha256),
        _size(chunks),
        len(chunks),
    )
    return version


def _fetch(
    repository: DatasetChunkReader, sha256: str, label: str | None
) -> list[tuple[int, bytes, str]]:
    try:
        return repository.read_dataset_chunks(sha256)
    except StoredVersionNotFoundError:  # never added, or removed (trainq data rm --force)
        raise removed_from_cluster(sha256, label) from None


def removed_from_cluster(sha256: str, label: str | None) -> DatasetNotAvailableError:
    """The error of a job on a version this cluster no longer stores: what to do next."""
    name = f"{label} ({short_hash(sha256)})" if label else short_hash(sha256)
    return DatasetNotAvailableError(
        f"dataset {name} was removed from this cluster (trainq data rm --force), so this "
        "job cannot run on it: add the same data again (trainq data add NAME PATH...; the "
        "same data gets the same hash, and the run can then be resumed) or train a new run "
        "on another version (trainq data list)"
    )


def _verified(
    chunks: Sequence[tuple[int, bytes, str]], sha256: str, label: str | None
) -> DatasetVersionData:
    return decode_chunks(
        (DatasetChunk(index, data, digest) for index, data, digest in chunks), sha256, label=label
    )


def _decoder(sha256: str, label: str | None) -> functools.partial[DatasetVersionData]:
    return functools.partial(decode_verified, expected_hash=sha256, label=label)


def _size(chunks: Iterable[tuple[int, bytes, str]]) -> int:
    return sum(len(data) for _, data, _ in chunks)


def _from_fashion_mnist_files(settings: Settings) -> DatasetVersionData | None:
    """Fashion-MNIST from its installed files when they hash to its version; else None."""
    # Imported here: worker.data imports worker.datasets while it is itself being imported.
    from worker.data import CLASS_NAMES, load_fashion_mnist

    try:
        # Cached per process, and preloaded by the worker's main process: no second read.
        files = load_fashion_mnist(settings.data_dir, download=False)
    except (DatasetNotFoundError, DatasetCorruptError) as exc:
        logger.info("Fashion-MNIST's files are not usable here (%s); using the store", exc)
        return None
    version = DatasetVersionData(
        x_train=files.train_images,
        y_train=_labels(files.train_labels),
        x_test=files.test_images,
        y_test=_labels(files.test_labels),
        class_names=CLASS_NAMES,
        num_features=files.train_images.shape[1],
        num_classes=len(CLASS_NAMES),
        scaling=Scaling(ScalingKind.DIVIDE_BY_255),
    )
    if content_hash(version) != FASHION_MNIST_SHA256:
        logger.info(
            "Fashion-MNIST's files in %s are another copy; using the store", files.source_dir
        )
        return None
    return version


def _labels(labels: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
    converted = labels.astype(np.int32)  # the canonical label dtype
    converted.flags.writeable = False
    return converted


def _check_hash(sha256: str) -> None:
    # The hash becomes a file name: anything but a hash (from a message, say) stops here.
    if not isinstance(sha256, str) or _SHA256.fullmatch(sha256) is None:
        raise InvalidConfigError(
            f"data_sha256 {sha256[:80]!r} is not a dataset version's content hash (64 lowercase "
            "hex characters); the run's config is damaged"
            if isinstance(sha256, str)
            else f"data_sha256 {sha256!r} is not a content hash"
        )
