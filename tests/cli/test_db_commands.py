"""`trainq db` as Alembic users expect it: current, history, an upgrade that says what it did, and
plain `alembic` commands that work against the project's migrations and trainq's database."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import embedded_env, trainq_in

ROOT = Path(__file__).resolve().parents[2]


def alembic_in(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env=embedded_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_upgrade_of_an_empty_database_says_what_it_created_and_then_that_nothing_is_left(
    tmp_path: Path,
) -> None:
    before = trainq_in(tmp_path, "db", "current", "--format", "json")
    assert before.returncode == 3, before.stderr
    assert json.loads(before.stdout)["current"] == []

    created = trainq_in(tmp_path, "db", "upgrade")
    assert created.returncode == 0, created.stderr
    assert "created the trainq schema" in created.stdout
    assert "runs" in created.stdout and "metric_chunks" in created.stdout

    again = trainq_in(tmp_path, "db", "upgrade")
    assert again.returncode == 0 and "nothing to do" in again.stdout

    after = trainq_in(tmp_path, "db", "current", "--format", "json")
    assert after.returncode == 0, after.stderr
    report = json.loads(after.stdout)
    assert report["up_to_date"] is True and report["current"] == report["head"]


def test_history_lists_every_packaged_migration_newest_first(tmp_path: Path) -> None:
    result = trainq_in(tmp_path, "db", "history", "--format", "json")
    assert result.returncode == 0, result.stderr
    revisions = json.loads(result.stdout)
    assert revisions[-1]["revision"] == "0001" and revisions[-1]["down_revision"] is None
    for newer, older in itertools.pairwise(revisions):
        assert newer["down_revision"] == older["revision"]
    assert all(revision["message"] for revision in revisions)


def test_plain_alembic_commands_work_against_the_project_and_trainqs_database(
    tmp_path: Path,
) -> None:
    upgraded = alembic_in(tmp_path, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    current = alembic_in(tmp_path, "current")
    assert current.returncode == 0, current.stderr
    head = json.loads(trainq_in(tmp_path, "db", "current", "--format", "json").stdout)["head"]
    assert f"{head[0]} (head)" in current.stdout
    assert trainq_in(tmp_path, "db", "current").returncode == 0
