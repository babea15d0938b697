"""A queued run says its place in its queue and when it should start."""

from __future__ import annotations

from pathlib import Path

import pytest

from api_cli.live import format_duration, place_in_queue
from storage import Database, Repository
from tests.cli.seeding import queued_run, running_run, succeeded_run


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.ensure_schema(auto_upgrade=True)
    return Repository(database)


def test_a_queued_run_starts_when_a_worker_slot_frees_at_the_measured_speed(
    repository: Repository,
) -> None:
    succeeded_run(repository, steps=1000, wall_steps_per_s=500.0)  # the queue's measured speed
    running_run(repository, 1000, 1.0, steps=11_000)  # 10,000 steps left: 20 s
    queued_run(repository, steps=5000)  # 10 s, taken by the second worker at once
    queued_run(repository, steps=2500)  # 5 s, after the second worker's 10 s
    mine = queued_run(repository, steps=1000)
    place = place_in_queue(repository, mine, workers=2)
    assert place.position == 3
    assert place.starts_in_s == pytest.approx(15.0)
    assert place.describe() == "3rd in queue 'train', starts in ~15 s"


def test_a_queue_no_worker_consumes_says_so_instead_of_a_time(repository: Repository) -> None:
    succeeded_run(repository)
    mine = queued_run(repository, queue="gpu")
    place = place_in_queue(repository, mine, workers=0)
    assert place.describe() == "1st in queue 'gpu'; no online worker consumes it"


def test_without_a_finished_run_to_measure_only_the_place_is_given(
    repository: Repository,
) -> None:
    mine = queued_run(repository)
    assert place_in_queue(repository, mine, workers=1).describe() == "1st in queue 'train'"


def test_durations_read_like_speech() -> None:
    assert [format_duration(s) for s in (42, 150, 7300)] == ["42 s", "2 min 30 s", "2 h 1 min"]
