"""CSV output is CSV that other tools read back: `runs show --format csv` is not a table, and no
cell is a Python repr."""

from __future__ import annotations

import csv
import io
import json

from tests.cli.conftest import Trainq


def test_runs_show_as_csv_gives_field_value_rows_with_json_cells(trainq: Trainq) -> None:
    trained = trainq("train", "--steps", "100", "--tag", "team=vision", "--json")
    assert trained.returncode == 0, trained.stderr
    run_id = json.loads(trained.stdout)["id"]

    shown = trainq("runs", "show", str(run_id), "--format", "csv")
    assert shown.returncode == 0, shown.stderr
    rows = list(csv.reader(io.StringIO(shown.stdout)))
    assert rows[0] == ["field", "value"]
    fields = dict(rows[1:])
    assert fields["config.learning_rate"] == "0.01"
    assert json.loads(fields["tags"]) == {"team": "vision"}
    assert fields["cancel_requested"] == "false" and fields["error"] == ""

    listed = trainq("runs", "list", "--format", "csv")
    assert listed.returncode == 0 and "{'" not in listed.stdout
    (row,) = [r for r in csv.DictReader(io.StringIO(listed.stdout)) if r["id"] == str(run_id)]
    assert json.loads(row["tags"]) == {"team": "vision"}
