"""Real stores with dataset versions in them, for the tests of the worker's data cache.

SQLite: a migrated file per test. PostgreSQL: one database per test session, migrated once,
emptied before each test. No mocks: ``CountingStore`` only counts the real store's fetches.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from storage import Database, Repository, Settings
from storage.dataset_records import DatasetVersionRecord
from storage.records import RunRecord, RunStatus
from worker.datasets import DatasetVersionData, Scaling, ScalingKind, content_hash, iter_chunks


@dataclass
class CountingStore:
    """The real repository, counting how often a version's chunks are read from it."""

    repository: Repository
    fetches: list[str] = field(default_factory=list)

    def read_dataset_chunks(self, sha256: str) -> list[tuple[int, bytes, str]]:
        """The real chunks; counted."""
        self.fetches.append(sha256)
        return self.repository.read_dataset_chunks(sha256)

    def list_runs(
        self, *, statuses: Sequence[RunStatus] | None = None, limit: int | None = None
    ) -> list[RunRecord]:
        """The real runs."""
        return self.repository.list_runs(statuses=statuses, limit=limit)


def small_version(seed: int, *, rows: int = 300, features: int = 32) -> DatasetVersionData:
    """A version of random uint8 images in three classes, different for each seed."""
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, (rows, features), dtype=np.uint8)
    y_train = (np.arange(rows) % 3).astype(np.int32)
    for array in (x_train, y_train):
        array.flags.writeable = False
    return DatasetVersionData(
        x_train=x_train,
        y_train=y_train,
        x_test=None,
        y_test=None,
        class_names=("a", "b", "c"),
        num_features=features,
        num_classes=3,
        scaling=Scaling(ScalingKind.DIVIDE_BY_255),
    )


def add_version(
    repository: Repository, name: str, version: DatasetVersionData, *, chunk_bytes: int = 4096
) -> DatasetVersionRecord:
    """Store ``version`` under ``name`` in small chunks (several per version)."""
    chunks = [(c.index, c.data, c.sha256) for c in iter_chunks(version, chunk_bytes)]
    record, added = repository.add_dataset_version(
        name=name,
        sha256=content_hash(version),
        feature_kind=str(version.x_train.dtype),
        features=version.num_features,
        classes=version.num_classes,
        train_examples=version.x_train.shape[0],
        test_examples=0 if version.x_test is None else version.x_test.shape[0],
        class_names=list(version.class_names),
        size_bytes=sum(len(data) for _, data, _ in chunks),
        source={"format": "npz", "files": ["test.npz"]},
        chunks=chunks,
    )
    assert added
    return record


def cache_settings(tmp_path: Path, database_url: str, *, max_bytes: int = 1024**3) -> Settings:
    """Settings whose data cache is ``tmp_path/cache`` with a budget of ``max_bytes`` (set
    directly: budgets of a few versions this small are below what TRAINQ_DATA_CACHE_MAX_BYTES
    accepts)."""
    environ = {
        "TRAINQ_HOME": str(tmp_path / "home"),
        "TRAINQ_DATABASE_URL": database_url,
        "TRAINQ_DATA_CACHE": str(tmp_path / "cache"),
    }
    return dataclasses.replace(Settings.from_env(environ), data_cache_max_bytes=max_bytes)


def race_to_load(
    database_url: str, cache_dir: str, sha256: str, ready: object, out: object
) -> None:
    """In a process of its own: wait for the other racer, load ``sha256``, report what it did.

    ``ready`` is a ``multiprocessing.Barrier``, ``out`` a ``multiprocessing.Queue``: it receives
    ``(pid, fetches, content hash of what was loaded)``.
    """
    from worker.datasets.fetch import load_version

    settings = Settings.from_env(
        {
            "TRAINQ_HOME": cache_dir,
            "TRAINQ_DATABASE_URL": database_url,
            "TRAINQ_DATA_CACHE": cache_dir,
        }
    )
    store = _SlowFetch(Repository(Database(database_url)))
    ready.wait()  # type: ignore[attr-defined]
    version = load_version(store, settings, sha256)
    out.put((os.getpid(), len(store.fetches), content_hash(version)))  # type: ignore[attr-defined]


class _SlowFetch(CountingStore):
    """A fetch held open long enough for the other racer, past the barrier too, to look the
    version up: without the fill lock it would find no copy and fetch it a second time. (The
    pause only widens that window; the test counts fetches, it times nothing.)"""

    def read_dataset_chunks(self, sha256: str) -> list[tuple[int, bytes, str]]:
        time.sleep(1.0)
        return super().read_dataset_chunks(sha256)
