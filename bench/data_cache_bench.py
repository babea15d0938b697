"""Data cache benchmark (not a test): a new worker's time to a new version's ready-to-train
arrays, fetched from the database, against a hit in its disk cache, side by side in one run.

    python -m bench.data_cache_bench [--backend sqlite|postgres|both] [--repeats 3] [--json]

A Fashion-MNIST-sized version (60,000 + 10,000 rows of 784 uint8 features, 10 classes: 55 MB
canonical, 14 chunks of 4 MiB) is stored once. Then, alternating, each in a fresh process (a new
worker's job process: nothing in memory):

- *cold*: an empty cache: ``load_version`` fetches every chunk, checks each and the whole hash,
  decodes, and writes the cache file (tmp + fsync + rename);
- *disk hit*: the cache filled by the cold load: ``load_version`` reads the file, checks its
  hash and decodes;
- *memory hit*: a second ``load_version`` in the same process.

Beside them, Fashion-MNIST's own version read from the Debian package's files (its content hash
checked), the path the default runs take. Times are of ``load_version`` alone (not the
interpreter's start) to the arrays a job trains on; the first training step after them is the
same whichever way the arrays came, so it is left out. Medians over ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import queue
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from storage import Database, Repository, Settings
from tests.services import create_postgres_database, drop_postgres_database, postgres_url
from worker.datasets import (
    DatasetVersionData,
    Scaling,
    ScalingKind,
    content_hash,
    iter_chunks,
)

BENCH_DATABASE = "trainq_bench_data_cache"
TRAIN_ROWS, TEST_ROWS, FEATURES, CLASSES = 60_000, 10_000, 784, 10


def bench_version() -> DatasetVersionData:
    """Fashion-MNIST's shape, random pixels (a hash of its own: never the files' version)."""
    rng = np.random.default_rng(2024)

    def split(rows: int) -> tuple[Any, Any]:
        x = rng.integers(0, 256, (rows, FEATURES), dtype=np.uint8)
        y = rng.integers(0, CLASSES, rows).astype(np.int32)
        x.flags.writeable = y.flags.writeable = False
        return x, y

    (x_train, y_train), (x_test, y_test) = split(TRAIN_ROWS), split(TEST_ROWS)
    return DatasetVersionData(
        x_train, y_train, x_test, y_test, (), FEATURES, CLASSES, Scaling(ScalingKind.DIVIDE_BY_255)
    )


def store_version(database_url: str) -> str:
    Database(database_url).upgrade()
    version = bench_version()
    chunks = [(c.index, c.data, c.sha256) for c in iter_chunks(version)]
    repository = Repository(Database(database_url))
    record, _ = repository.add_dataset_version(
        name="bench",
        sha256=content_hash(version),
        feature_kind="uint8",
        features=FEATURES,
        classes=CLASSES,
        train_examples=TRAIN_ROWS,
        test_examples=TEST_ROWS,
        class_names=[],
        size_bytes=sum(len(data) for _, data, _ in chunks),
        source={"format": "bench"},
        chunks=chunks,
    )
    return record.sha256


def timed_loads(database_url: str, cache_dir: str, sha256: str, out: Any) -> None:
    """In a fresh process: time a first and a second ``load_version``."""
    from worker.datasets.fetch import load_version

    settings = Settings.from_env(
        {
            "TRAINQ_HOME": cache_dir,
            "TRAINQ_DATABASE_URL": database_url,
            "TRAINQ_DATA_CACHE": cache_dir,
        }
    )
    repository = Repository(Database(database_url))
    repository.list_dataset_versions()  # the connection is the worker's already: not timed
    started = time.perf_counter()
    version = load_version(repository, settings, sha256)
    first = time.perf_counter()
    again = load_version(repository, settings, sha256)
    second = time.perf_counter()
    assert again is version and version.x_train.shape == (TRAIN_ROWS, FEATURES)
    out.put((first - started, second - first))


def in_fresh_process(database_url: str, cache_dir: Path, sha256: str) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=timed_loads, args=(database_url, str(cache_dir), sha256, out))
    process.start()
    while True:  # a process that died never answers: stop waiting then
        try:
            result: tuple[float, float] = out.get(timeout=1)
            break
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError(f"the timed process exited {process.exitcode}") from None
    process.join()
    return result


def fashion_mnist_files_s() -> float | None:
    """Fashion-MNIST's version from its files in a fresh process (None when not installed)."""
    from worker.data import SYSTEM_DATA_DIR

    if not SYSTEM_DATA_DIR.is_dir():
        return None
    with tempfile.TemporaryDirectory() as cache:
        from worker.datasets.fetch import FASHION_MNIST_SHA256

        Database(f"sqlite:///{cache}/unused.db").upgrade()  # never asked: the files answer
        return in_fresh_process(f"sqlite:///{cache}/unused.db", Path(cache), FASHION_MNIST_SHA256)[
            0
        ]


def bench_backend(name: str, database_url: str, repeats: int) -> dict[str, Any]:
    sha256 = store_version(database_url)
    cold, disk, memory = [], [], []
    for _ in range(repeats):
        cache = Path(tempfile.mkdtemp(prefix="trainq-bench-cache-"))
        try:
            first, hit = in_fresh_process(database_url, cache, sha256)  # empty cache
            cold.append(first)
            memory.append(hit)
            first, hit = in_fresh_process(database_url, cache, sha256)  # the file it wrote
            disk.append(first)
            memory.append(hit)
        finally:
            shutil.rmtree(cache)
    median = statistics.median
    return {
        "backend": name,
        "cold_fetch_s": median(cold),
        "disk_hit_s": median(disk),
        "memory_hit_s": median(memory),
        "cold_over_disk_hit": median(cold) / median(disk),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    results = []
    if options.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as directory:
            results.append(
                bench_backend("sqlite", f"sqlite:///{directory}/bench.db", options.repeats)
            )
    if options.backend in ("postgres", "both"):
        create_postgres_database(BENCH_DATABASE)
        try:
            results.append(bench_backend("postgres", postgres_url(BENCH_DATABASE), options.repeats))
        finally:
            drop_postgres_database(BENCH_DATABASE)
    files = fashion_mnist_files_s()
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "version": f"{TRAIN_ROWS:,}+{TEST_ROWS:,} x {FEATURES} uint8, {CLASSES} classes",
        "results": results,
        "fashion_mnist_files_s": files,
    }
    if options.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['version']} on {report['machine']}; medians of {options.repeats}")
    print(
        f"{'backend':<10} {'cold fetch':>11} {'disk hit':>9} {'memory hit':>11} {'cold/disk':>10}"
    )
    for row in results:
        print(
            f"{row['backend']:<10} {row['cold_fetch_s']:>10.3f}s {row['disk_hit_s']:>8.3f}s "
            f"{row['memory_hit_s'] * 1e6:>9.1f}us {row['cold_over_disk_hit']:>9.2f}x"
        )
    if files is not None:
        print(f"Fashion-MNIST from the Debian package's files (hash checked): {files:.3f}s")


if __name__ == "__main__":
    main()
