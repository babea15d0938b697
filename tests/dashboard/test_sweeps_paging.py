"""The sweeps index pages in the database: a page loads its own sweeps, the rest are counted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api_cli.dashboard.sweeps_index import SWEEPS_PER_PAGE, sweeps_index
from storage import Database, Repository
from storage.sweep_records import SweepRecord
from worker.sweeps import submit_sweep

SWEEP = {
    "name": "paged",
    "method": "grid",
    "seed": 1,
    "parameters": {"lr": {"values": [0.01]}, "steps": {"value": 100}},
}


class CountingRepository(Repository):
    """The real repository, counting the sweeps it loads for listings."""

    loaded = 0

    def list_sweeps(self, **kwargs: Any) -> list[SweepRecord]:
        sweeps = super().list_sweeps(**kwargs)
        self.loaded += len(sweeps)
        return sweeps


def test_a_page_of_the_sweeps_index_loads_only_its_own_sweeps(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.ensure_schema(auto_upgrade=True)
    repository = CountingRepository(database)
    ids = [submit_sweep(repository, dict(SWEEP), max_attempts=1).id for _ in range(30)]

    index = sweeps_index(repository, 2, datetime.now(UTC))

    assert (index["total"], index["pages"], index["hidden"]) == (30, 2, 0)
    assert [row["id"] for row in index["rows"]] == ids[::-1][SWEEPS_PER_PAGE:]
    assert repository.loaded == 30 - SWEEPS_PER_PAGE  # not all 30 (twice) to count them
