"""No table cuts a number: where a terminal is too narrow for every column, the text columns
wrap, and past that the table is printed wider and the terminal wraps its lines."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from api_cli import output
from api_cli.output import VisibleConsole, print_table
from storage import Database, Repository, Settings
from tests.cli.conftest import embedded_env
from tests.cli.seeding import succeeded_run
from tests.cli.test_tables import in_terminal

SWEEP_HEADER = ("trial", "run", "status", "params", "steps", "val_accuracy", "rung", "pruned")
TRIAL = (10, 10, "succeeded", "lr=0.0123456, momentum=0.9, batch_size=128", 3000, 0.8123, 2, "")


def drawn_at(columns: int, monkeypatch: pytest.MonkeyPatch, wrap: tuple[str, ...]) -> str:
    screen = io.StringIO()
    terminal = VisibleConsole(file=screen, width=columns, force_terminal=True, color_system=None)
    monkeypatch.setattr(output, "stdout", terminal)
    print_table("sweep 1", SWEEP_HEADER, [TRIAL], wrap=wrap)
    return screen.getvalue()


@pytest.mark.parametrize("columns", [80, 60, 40])
@pytest.mark.parametrize("wrap", [(), ("params",)])
def test_a_sweep_table_keeps_run_ids_and_steps_whole_at_any_width(
    columns: int, wrap: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    cells = drawn_at(columns, monkeypatch, wrap).split()
    assert cells.count("10") == 2, cells
    assert "3000" in cells and "0.8123" in cells


def test_a_table_that_fits_stays_within_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = drawn_at(80, monkeypatch, ("params",)).splitlines()
    assert all(len(line) <= 80 for line in lines), lines


def test_runs_list_in_a_narrow_terminal_keeps_every_number_whole(tmp_path: Path) -> None:
    settings = Settings.from_env(embedded_env(tmp_path))
    database = Database(settings.database_url)
    database.ensure_schema(auto_upgrade=True)
    run = succeeded_run(Repository(database), steps=20_000)
    screen = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", in_terminal(tmp_path, "runs", "list", columns=40))
    assert re.search(r"\b20000\b", screen), screen
    assert re.search(rf"^{run.id}\b", screen, re.MULTILINE), screen
