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


def test_every_data_command_prints_json_by_its_shorthand_and_csv_without_reprs(
    trainq: Trainq,
) -> None:
    trained = trainq("train", "--steps", "100", "--json")
    assert trained.returncode == 0, trained.stderr
    run_id = str(json.loads(trained.stdout)["id"])
    commands = [
        ("runs", "list"),
        ("runs", "show", run_id),
        ("metrics", run_id),
        ("compare", run_id),
        ("predict", run_id, "--seed", "1"),
        ("status",),
        ("sweep", "list"),
        ("db", "current"),
        ("db", "history"),
        ("db", "check"),
    ]
    for command in commands:
        shorthand = trainq(*command, "--json")
        as_csv = trainq(*command, "--format", "csv")
        for result in (shorthand, as_csv):
            assert result.returncode == 0, f"{command}: {result.stderr}"
        assert isinstance(json.loads(shorthand.stdout), dict | list), command
        header, *rows = list(csv.reader(io.StringIO(as_csv.stdout)))
        assert header and all(len(row) == len(header) for row in rows), command
        cells = {cell for row in rows for cell in row}
        assert not cells & {"None", "True", "False"}, f"{command}: a Python repr in {cells}"
        assert not any(cell.startswith(("{'", "['")) for cell in cells), command


def test_csv_names_its_columns_as_the_json_names_its_keys(trainq: Trainq) -> None:
    trained = trainq("train", "--steps", "100", "--json")
    run_id = str(json.loads(trained.stdout)["id"])

    status = dict(list(csv.reader(io.StringIO(trainq("status", "--format", "csv").stdout)))[1:])
    as_json = json.loads(trainq("status", "--json").stdout)
    assert status["mode"] == as_json["mode"] == "embedded"
    succeeded = as_json["database"]["runs_by_status"]["succeeded"]
    assert status["database.runs_by_status.succeeded"] == str(succeeded)

    predicted = trainq("predict", run_id, "--seed", "1", "--format", "csv")
    (first, *_) = csv.DictReader(io.StringIO(predicted.stdout))
    (expected, *_) = json.loads(trainq("predict", run_id, "--seed", "1", "--json").stdout)
    assert first == {key: str(value) for key, value in expected.items()}

    current = next(csv.DictReader(io.StringIO(trainq("db", "current", "--format", "csv").stdout)))
    assert current["up_to_date"] == "true" and json.loads(current["head"])


def test_json_is_the_shorthand_of_format_json_and_with_csv_exits_2(trainq: Trainq) -> None:
    long_form = trainq("db", "history", "--format", "json")
    assert json.loads(long_form.stdout) == json.loads(trainq("db", "history", "--json").stdout)
    result = trainq("status", "--json", "--format", "csv")
    assert result.returncode == 2
    assert "--json" in result.stderr and "--format csv" in result.stderr
