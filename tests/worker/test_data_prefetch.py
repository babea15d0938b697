"""A worker's main process preloads the versions its jobs used last from disk alone, and once up
fetches ahead the versions of the runs queued for its queues; a database that does not answer
never stops it starting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import Database, Repository
from storage.records import JobKind
from tests.storage.support import sqlite_url
from tests.worker.data_cache_support import (
    CountingStore,
    add_version,
    cache_settings,
    small_version,
)
from worker.cluster.services import services
from worker.cluster.warm_up import prefetch_queued_versions, preload_training_data
from worker.datasets.fetch import data_cache, forget_all, load_version, remembered

# Refuses connections at once: a database that does not answer.
UNREACHABLE_URL = "postgresql+psycopg://postgres@127.0.0.1:1/trainq"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "trainq.db")


@pytest.fixture
def store(database_url: str) -> Iterator[CountingStore]:
    database = Database(database_url)
    database.upgrade()
    yield CountingStore(Repository(database))
    database.dispose(close=True)


@pytest.fixture(autouse=True)
def empty_memory() -> Iterator[None]:
    forget_all()
    yield
    forget_all()


def queue_run(repository: Repository, queue: str, sha256: str | None) -> None:
    config = {} if sha256 is None else {"data_sha256": sha256}
    repository.create_run(kind=JobKind.TRAIN, config=config, seed=1, queue=queue, max_attempts=3)


def test_the_versions_of_runs_queued_for_the_worker_s_queues_are_fetched_to_disk_oldest_first(
    store: CountingStore, database_url: str, tmp_path: Path
) -> None:
    first, second, third, elsewhere = (
        add_version(store.repository, f"v{seed}", small_version(seed)).sha256
        for seed in (21, 22, 23, 24)
    )
    queue_run(store.repository, "train", first)
    queue_run(store.repository, "gpu", elsewhere)  # not a queue of this worker
    queue_run(store.repository, "train", None)  # the built-in Fashion-MNIST
    queue_run(store.repository, "train", first)
    queue_run(store.repository, "eval", second)
    queue_run(store.repository, "train", third)  # beyond the two fetched ahead
    settings = cache_settings(tmp_path, database_url)

    held = prefetch_queued_versions(store, settings, ["train", "eval"], max_versions=2)

    assert held == [first, second]
    assert sorted(store.fetches) == sorted([first, second])
    assert {entry.sha256 for entry in data_cache(settings).entries()} == {first, second}
    assert remembered() == []  # nothing held in the main process's memory
    assert prefetch_queued_versions(store, settings, ["train", "eval"], max_versions=2) == held
    assert len(store.fetches) == 2  # already on disk: not fetched again


def test_a_database_that_does_not_answer_costs_the_prefetch_a_warning_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = cache_settings(tmp_path, UNREACHABLE_URL)
    repository = Repository(Database(UNREACHABLE_URL))

    assert prefetch_queued_versions(repository, settings, ["train"]) == []
    assert "dataset versions of queued runs not prefetched" in caplog.text


def test_the_main_process_preloads_cached_versions_without_the_database(
    store: CountingStore, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha256 = add_version(store.repository, "digits", small_version(25)).sha256
    load_version(store, cache_settings(tmp_path, database_url), sha256)
    forget_all()
    monkeypatch.setenv("TRAINQ_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRAINQ_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TRAINQ_DATABASE_URL", UNREACHABLE_URL)
    services.cache_clear()
    try:
        preload_training_data()
    finally:
        services.cache_clear()

    assert remembered() == [sha256]
