"""A worker fetches a dataset version once, verifies it every time, and keeps a bounded cache
shared by its job processes; on SQLite and on PostgreSQL, with the real store."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from storage import Database, Repository
from tests.services import (
    create_postgres_database,
    drop_postgres_database,
    postgres_url,
    require_postgres,
)
from tests.storage.support import execute_sql, sqlite_url
from tests.worker.data_cache_support import (
    CountingStore,
    add_version,
    cache_settings,
    race_to_load,
    small_version,
)
from worker.data import FashionMnist
from worker.datasets import DatasetVersionData, content_hash, read_fashion_mnist
from worker.datasets.cache import DataCache
from worker.datasets.fetch import (
    FASHION_MNIST_SHA256,
    data_cache,
    forget_all,
    load_version,
    preload_cached_versions,
    remembered,
)
from worker.errors import DatasetNotAvailableError, DeterministicJobError, InvalidConfigError


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[Database]:
    require_postgres()
    name = f"trainq_test_data_cache_{os.getpid()}"
    create_postgres_database(name)
    database = Database(postgres_url(name))
    database.upgrade()
    yield database
    database.dispose(close=True)
    drop_postgres_database(name)


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "trainq.db"
    database = Database(sqlite_url(path))
    database.upgrade()
    database.dispose(close=True)
    return path


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty migrated store: a fresh SQLite file, or the emptied PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "trainq.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        found = Database(sqlite_url(path))
        yield found
        found.dispose(close=True)
        return
    found = request.getfixturevalue("postgres_database")
    execute_sql(found, "TRUNCATE dataset_chunks, dataset_versions, runs RESTART IDENTITY CASCADE")
    yield found


@pytest.fixture
def store(database: Database) -> CountingStore:
    return CountingStore(Repository(database))


@pytest.fixture(autouse=True)
def empty_memory() -> Iterator[None]:
    """Each test starts, and leaves, with no version in this process's memory."""
    forget_all()
    yield
    forget_all()


def same_data(left: DatasetVersionData, right: DatasetVersionData) -> bool:
    return content_hash(left) == content_hash(right) and np.array_equal(left.x_train, right.x_train)


def test_a_version_is_fetched_once_then_a_new_job_process_reads_the_verified_disk_copy(
    store: CountingStore, database: Database, tmp_path: Path
) -> None:
    version = small_version(1)
    record = add_version(store.repository, "digits", version)
    settings = cache_settings(tmp_path, database.url)

    first = load_version(store, settings, record.sha256, label=record.label)
    again = load_version(store, settings, record.sha256)  # this process's memory
    forget_all()  # as a new job process of the same worker
    from_disk = load_version(store, settings, record.sha256)

    assert store.fetches == [record.sha256]
    assert again is first
    assert same_data(first, version) and same_data(from_disk, version)
    assert data_cache(settings).entry_path(record.sha256).read_bytes() == b"".join(
        data for _, data, _ in store.repository.read_dataset_chunks(record.sha256)
    )


@pytest.mark.parametrize(
    "damage",
    ["a flipped byte", "cut short", "empty", "another version's bytes"],
)
def test_a_damaged_cache_entry_is_detected_deleted_and_fetched_again(
    store: CountingStore, database: Database, tmp_path: Path, damage: str
) -> None:
    version = small_version(2)
    record = add_version(store.repository, "digits", version)
    other = add_version(store.repository, "other", small_version(3))
    settings = cache_settings(tmp_path, database.url)
    load_version(store, settings, record.sha256)
    load_version(store, settings, other.sha256)
    forget_all()
    entry = data_cache(settings).entry_path(record.sha256)
    good = entry.read_bytes()
    damaged = {
        "a flipped byte": good[:-5] + bytes([good[-5] ^ 1]) + good[-4:],
        "cut short": good[: len(good) // 2],
        "empty": b"",
        "another version's bytes": data_cache(settings).entry_path(other.sha256).read_bytes(),
    }[damage]
    entry.write_bytes(damaged)

    loaded = load_version(store, settings, record.sha256)

    assert same_data(loaded, version)  # never the damaged copy, never the other version
    assert store.fetches == [record.sha256, other.sha256, record.sha256]
    assert entry.read_bytes() == good  # the entry was replaced by a good one


def test_a_version_removed_from_the_cluster_fails_the_job_saying_so(
    store: CountingStore, database: Database, tmp_path: Path
) -> None:
    record = add_version(store.repository, "digits", small_version(4))
    store.repository.delete_dataset_version(record.sha256, force=False)
    settings = cache_settings(tmp_path, database.url)

    with pytest.raises(DatasetNotAvailableError) as raised:
        load_version(store, settings, record.sha256, label="digits@1")

    assert isinstance(raised.value, DeterministicJobError)  # FAILED, no retry
    message = str(raised.value)
    assert f"dataset digits@1 ({record.short_hash}) was removed from this cluster" in message
    assert "trainq data add" in message


def test_a_removed_version_still_in_the_cache_is_served_verified_from_it(
    store: CountingStore, database: Database, tmp_path: Path
) -> None:
    # The bytes are the version the run recorded (the hash says so): a resume may use them.
    version = small_version(5)
    record = add_version(store.repository, "digits", version)
    settings = cache_settings(tmp_path, database.url)
    load_version(store, settings, record.sha256)
    store.repository.delete_dataset_version(record.sha256, force=False)
    forget_all()

    assert same_data(load_version(store, settings, record.sha256), version)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "0" * 63, "A" * 64, ""])
def test_anything_but_a_content_hash_is_refused_before_it_can_name_a_file(
    store: CountingStore, database: Database, tmp_path: Path, bad: str
) -> None:
    settings = cache_settings(tmp_path, database.url)
    with pytest.raises(InvalidConfigError, match="data_sha256"):
        load_version(store, settings, bad)
    assert store.fetches == []
    assert not (tmp_path / "cache").exists()


def test_two_job_processes_racing_for_one_version_fetch_it_once_and_both_get_it(
    store: CountingStore, database: Database, tmp_path: Path
) -> None:
    version = small_version(6, rows=20_000)
    record = add_version(store.repository, "digits", version, chunk_bytes=64 * 1024)
    context = multiprocessing.get_context("spawn")  # this process may hold TensorFlow
    ready, out = context.Barrier(2), context.Queue()
    racers = [
        context.Process(
            target=race_to_load,
            args=(database.url, str(tmp_path / "cache"), record.sha256, ready, out),
        )
        for _ in range(2)
    ]
    for racer in racers:
        racer.start()
    results = [out.get(timeout=120) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)

    assert [racer.exitcode for racer in racers] == [0, 0]
    assert sorted(fetches for _, fetches, _ in results) == [0, 1]
    assert {loaded for _, _, loaded in results} == {record.sha256}
    assert [entry.sha256 for entry in DataCache(tmp_path / "cache", 1024**3).entries()] == [
        record.sha256
    ]


def test_the_cache_stays_within_its_budget_evicting_the_least_recently_used_first(
    store: CountingStore, database: Database, tmp_path: Path
) -> None:
    records = [add_version(store.repository, f"v{seed}", small_version(seed)) for seed in (7, 8, 9)]
    size = records[0].size_bytes
    settings = cache_settings(tmp_path, database.url, max_bytes=2 * size + size // 2)
    a, b, c = (record.sha256 for record in records)
    load_version(store, settings, a)
    load_version(store, settings, b)
    forget_all()
    load_version(store, settings, a)  # a disk hit: a is now more recently used than b

    load_version(store, settings, c)  # room for two: b goes

    cache = data_cache(settings)
    assert [entry.sha256 for entry in cache.entries()] == [a, c]
    assert sum(entry.size_bytes for entry in cache.entries()) <= settings.data_cache_max_bytes
    assert store.fetches == [a, b, c]
    forget_all()
    load_version(store, settings, b)  # evicted: fetched again, and a (now oldest) goes
    assert store.fetches == [a, b, c, b]
    assert [entry.sha256 for entry in cache.entries()] == [c, b]


def test_a_version_larger_than_the_whole_budget_is_loaded_but_not_kept(
    store: CountingStore, database: Database, tmp_path: Path
) -> None:
    small = add_version(store.repository, "small", small_version(10, rows=100))
    large = add_version(store.repository, "large", small_version(11, rows=40_000))
    settings = cache_settings(tmp_path, database.url, max_bytes=1024**2)
    load_version(store, settings, small.sha256)

    loaded = load_version(store, settings, large.sha256)

    assert loaded.x_train.shape == (40_000, 32)
    assert [entry.sha256 for entry in data_cache(settings).entries()] == [small.sha256]


def test_a_crash_while_writing_leaves_no_entry_and_the_next_fill_removes_its_remains(
    store: CountingStore, database: Database, tmp_path: Path
) -> None:
    version = small_version(12)
    record = add_version(store.repository, "digits", version)
    settings = cache_settings(tmp_path, database.url)
    context = multiprocessing.get_context("spawn")
    writer = context.Process(
        target=_crash_while_storing, args=(str(tmp_path / "cache"), record.sha256)
    )
    writer.start()
    writer.join(timeout=60)
    cache = data_cache(settings)
    assert writer.exitcode == 9
    assert cache.entries() == []  # half a file never carries a version's name
    assert len(list(cache.directory.glob("*.tmp"))) == 1

    other = add_version(store.repository, "other", small_version(13))
    load_version(store, settings, other.sha256)  # a later fill tidies up
    assert list(cache.directory.glob("*.tmp")) == []
    assert same_data(load_version(store, settings, record.sha256), version)


def _crash_while_storing(root: str, sha256: str) -> None:
    cache = DataCache(Path(root), 1024**3)

    def parts() -> Iterator[bytes]:
        yield b"TRQD" + b"\0" * 4096
        os._exit(9)  # killed mid-write: no exception handler, no clean-up runs

    with cache.filling(sha256):
        cache.store(sha256, parts(), 10_000)


def test_an_unusable_cache_directory_costs_a_fetch_per_process_never_a_job(
    store: CountingStore, database: Database, tmp_path: Path
) -> None:
    version = small_version(14)
    record = add_version(store.repository, "digits", version)
    (tmp_path / "a-file").write_bytes(b"")
    settings = dataclasses.replace(
        cache_settings(tmp_path, database.url), data_cache_dir=tmp_path / "a-file" / "cache"
    )

    first = load_version(store, settings, record.sha256)
    forget_all()
    second = load_version(store, settings, record.sha256)

    assert same_data(first, version) and same_data(second, version)
    assert store.fetches == [record.sha256, record.sha256]


def test_fashion_mnist_is_read_from_its_installed_files_without_a_fetch(
    store: CountingStore, database: Database, tmp_path: Path, fashion_mnist: FashionMnist
) -> None:
    files_version = read_fashion_mnist(fashion_mnist.source_dir)
    settings = cache_settings(tmp_path, database.url)

    loaded = load_version(store, settings, FASHION_MNIST_SHA256)

    assert content_hash(files_version) == FASHION_MNIST_SHA256
    assert same_data(loaded, files_version)
    assert loaded.class_names == files_version.class_names
    assert store.fetches == []


def test_a_main_process_preloads_the_most_recently_used_versions_from_disk_alone(
    store: CountingStore, database: Database, tmp_path: Path
) -> None:
    records = [
        add_version(store.repository, f"v{seed}", small_version(seed)) for seed in (15, 16, 17)
    ]
    settings = cache_settings(tmp_path, database.url)
    for record in records:
        load_version(store, settings, record.sha256)
    forget_all()
    size = records[0].size_bytes

    # No store: preloading never asks the database.
    assert preload_cached_versions(settings, max_versions=2, max_bytes=10 * size) == [
        records[2].sha256,
        records[1].sha256,
    ]
    assert remembered() == [records[1].sha256, records[2].sha256]
    forget_all()
    assert preload_cached_versions(settings, max_versions=2, max_bytes=size) == [records[2].sha256]
    assert len(store.fetches) == 3
