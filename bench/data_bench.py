"""Dataset benchmark (not a test): ``trainq data add`` of a Fashion-MNIST-sized version, on SQLite
and PostgreSQL, side by side in one run.

    python -m bench.data_bench [--repeats 3] [--json]

Each repetition adds Fashion-MNIST (the Debian package's four IDX files: 60,000 + 10,000 images of
784 bytes) to an empty database through the same code as ``trainq data add``
(``api_cli.dataset_intake``), timing each phase: reading and checking the files, hashing the
canonical form, storing it (one transaction of 4 MiB chunks, each chunk and the whole checked
again by the store). Then adding the same files again (found by hash: nothing stored). Reported:
median seconds per phase and backend, the ratio PostgreSQL/SQLite for storing, and the stored size
(the canonical bytes, the SQLite file, PostgreSQL's dataset tables with their TOAST).

Uses a throwaway PostgreSQL database ``trainq_bench_data`` on 127.0.0.1:5432 (user postgres).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from api_cli.dataset_intake import DatasetFiles, IntakeProgress, read_files, store_version
from storage import Database, Repository
from tests.services import create_postgres_database, drop_postgres_database, postgres_url
from worker.data import SYSTEM_DATA_DIR

BENCH_DATABASE = "trainq_bench_data"


class _PhaseClock(IntakeProgress):
    """Notes when each phase of ``store_version`` starts (hashing, storing)."""

    def __init__(self) -> None:
        self.starts: dict[str, float] = {}

    def phase(self, description: str, total_bytes: int | None = None) -> None:
        self.starts[description] = time.perf_counter()

    def advance(self, done_bytes: int) -> None:
        pass


@dataclass(frozen=True)
class Result:
    """One backend's figures (medians over the repetitions)."""

    backend: str
    read_s: float
    hash_s: float
    store_s: float
    add_s: float  # read + hash + store: what `trainq data add` spends past its start-up
    again_s: float  # the same files added again (hash found: nothing stored)
    canonical_bytes: int
    stored_bytes: int  # on disk, in the database


def _one_add(url: str, size_of: Callable[[Database], int]) -> dict[str, float]:
    database = Database(url)
    database.ensure_schema(auto_upgrade=True)
    repository = Repository(database)
    files = DatasetFiles(paths=(SYSTEM_DATA_DIR,))
    started = time.perf_counter()
    version, source = read_files(files)
    clock = _PhaseClock()
    read_done = time.perf_counter()
    added = store_version(repository, "fashion-mnist", version, source, progress=clock)
    done = time.perf_counter()
    again_started = time.perf_counter()
    again = store_version(repository, "fashion-mnist", version, source)
    again_done = time.perf_counter()
    assert added.created and not again.created
    figures = {
        "read_s": read_done - started,
        "hash_s": clock.starts["storing"] - clock.starts["hashing"],
        "store_s": done - clock.starts["storing"],
        "add_s": done - started,
        "again_s": again_done - again_started,
        "canonical_bytes": float(added.version.size_bytes),
        "stored_bytes": float(size_of(database)),
    }
    database.dispose(close=True)
    return figures


def _sqlite_size(database: Database) -> int:
    database.dispose(close=True)  # the last close checkpoints the WAL into the file
    path = database.file_path
    assert path is not None
    return path.stat().st_size


def _postgres_size(database: Database) -> int:
    from sqlalchemy import text

    with database.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT pg_total_relation_size('dataset_chunks') "
                    "+ pg_total_relation_size('dataset_versions')"
                )
            ).scalar_one()
        )


def bench(repeats: int) -> list[Result]:
    """Add Fashion-MNIST ``repeats`` times to an empty database of each backend, alternating."""
    runs: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgresql": []}
    with tempfile.TemporaryDirectory() as directory:
        for repeat in range(repeats):
            sqlite_url = f"sqlite:///{Path(directory) / f'bench{repeat}.db'}"
            runs["sqlite"].append(_one_add(sqlite_url, _sqlite_size))
            create_postgres_database(BENCH_DATABASE)
            try:
                runs["postgresql"].append(_one_add(postgres_url(BENCH_DATABASE), _postgres_size))
            finally:
                drop_postgres_database(BENCH_DATABASE)
    results = []
    for backend, figures in runs.items():
        medians: dict[str, Any] = {
            key: statistics.median(run[key] for run in figures) for key in figures[0]
        }
        medians["canonical_bytes"] = int(medians["canonical_bytes"])
        medians["stored_bytes"] = int(medians["stored_bytes"])
        results.append(Result(backend=backend, **medians))
    return results


def main() -> None:
    """Run the benchmark and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = bench(args.repeats)
    if args.json:
        print(json.dumps([asdict(result) for result in results], indent=2))
        return
    mib = 1024**2
    print(f"trainq data add: Fashion-MNIST, median of {args.repeats}")
    print(f"{'backend':<11}{'read':>8}{'hash':>8}{'store':>8}{'add':>8}{'again':>8}{'stored':>12}")
    for r in results:
        print(
            f"{r.backend:<11}{r.read_s:>7.2f}s{r.hash_s:>7.2f}s{r.store_s:>7.2f}s"
            f"{r.add_s:>7.2f}s{r.again_s:>7.2f}s{r.stored_bytes / mib:>8.1f} MiB"
        )
    sqlite, postgres = results
    print(
        f"canonical size {sqlite.canonical_bytes / mib:.1f} MiB; storing on PostgreSQL takes "
        f"{postgres.store_s / sqlite.store_s:.2f}x SQLite's time; a whole add "
        f"{postgres.add_s / sqlite.add_s:.2f}x"
    )


if __name__ == "__main__":
    main()
