"""A run's XLA choice is how it ran, not what it is: shown with the device, never among the
hyperparameters that differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage import Database, Repository, Settings
from tests.cli.conftest import Trainq, embedded_env
from tests.cli.seeding import succeeded_run


@pytest.fixture(scope="module")
def twins(home: Path) -> tuple[int, int]:
    """Two runs alike in every hyperparameter, one compiled with XLA and one without."""
    database = Database(Settings.from_env(embedded_env(home)).database_url)
    database.ensure_schema(auto_upgrade=True)
    repository = Repository(database)
    return succeeded_run(repository, xla=True).id, succeeded_run(repository, xla=False).id


def test_compare_does_not_count_xla_as_a_differing_hyperparameter(
    trainq: Trainq, twins: tuple[int, int]
) -> None:
    result = trainq("compare", *map(str, twins), "--json")
    assert result.returncode == 0, result.stderr
    compared = json.loads(result.stdout)
    assert compared["differing"] == []
    assert [run["xla"] for run in compared["runs"]] == [True, False]


def test_the_compare_table_shows_xla_in_the_run_section_after_the_device(
    trainq: Trainq, twins: tuple[int, int]
) -> None:
    lines = trainq("compare", *map(str, twins)).stdout.splitlines()
    names = [line.split()[0] for line in lines if line.strip()]
    assert names.index("xla") == names.index("device_used") + 1
    assert names.index("xla") > names.index("learning_rate")


def test_runs_show_puts_xla_beside_the_device_not_among_the_hyperparameters(
    trainq: Trainq, twins: tuple[int, int]
) -> None:
    lines = trainq("runs", "show", str(twins[0])).stdout.splitlines()
    device = next(index for index, line in enumerate(lines) if line.startswith("device "))
    assert lines[device + 1].split() == ["xla", "True"]
    assert not any(line.strip().startswith("xla") and line.startswith(" ") for line in lines)
    shown = json.loads(trainq("runs", "show", str(twins[0]), "--json").stdout)
    assert shown["config"]["xla"] is True  # the stored config stays whole
