"""`trainq compare` and `trainq plot` on real runs trained in-process (SQLite)."""

from __future__ import annotations

import csv
import io
import json
import struct
from pathlib import Path

import pytest

from api_cli.plotting.png import CONFUSION_SIZE_PX, CURVES_SIZE_PX
from tests.cli.conftest import Trainq
from worker.data import CLASS_NAMES

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def train(trainq: Trainq, *options: str) -> int:
    result = trainq(
        "train", "--steps", "300", "--chunk-steps", "100", "--checkpoint-every", "100", "--json",
        *options,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["run_id"])


@pytest.fixture(scope="module")
def runs(trainq: Trainq) -> list[int]:
    """Three runs: two differ in learning rate and momentum, the third in its name only."""
    first = train(trainq, "--seed", "1", "--name", "slow")
    second = train(trainq, "--seed", "1", "--lr", "0.05", "--momentum", "0.9", "--name", "fast")
    third = train(trainq, "--seed", "1", "--name", "a-long-name-that-does-not-fit-a-column-at-all")
    evaluated = trainq("eval", str(first), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    return [first, second, third]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (the first chunk of every valid PNG)."""
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE and header[12:16] == b"IHDR"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_compare_json_lists_every_hyperparameter_with_the_differing_ones_first(
    trainq: Trainq, runs: list[int]
) -> None:
    result = trainq("compare", *map(str, runs[:2]), "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["differing"] == ["learning_rate", "momentum"]
    first, second = report["runs"]
    keys = list(first)
    assert keys[:5] == ["run_id", "name", "status", "learning_rate", "momentum"]
    for field in ("seed", "batch_size", "steps", "init", "l2", "schedule", "chunk_steps"):
        assert field in keys
    assert first["learning_rate"] == 0.01 and second["learning_rate"] == 0.05
    assert first["final_accuracy"] > 0 and first["wall_steps_per_s"] > 0
    assert first["test_accuracy"] > 0 and first["test_checkpoint"] == 300
    assert second["test_accuracy"] is None


def test_compare_diff_only_keeps_the_run_and_what_differs(trainq: Trainq, runs: list[int]) -> None:
    result = trainq("compare", *map(str, runs[:2]), "--diff-only", "--format", "json")
    fields = list(json.loads(result.stdout)["runs"][0])
    assert fields[:4] == ["run_id", "name", "learning_rate", "momentum"]
    assert "batch_size" not in fields and "seed" not in fields


def test_compare_csv_has_one_line_per_run_under_the_json_keys_and_no_python_reprs(
    trainq: Trainq, runs: list[int]
) -> None:
    as_json = json.loads(trainq("compare", *map(str, runs), "--format", "json").stdout)
    result = trainq("compare", *map(str, runs), "--format", "csv")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == list(as_json["runs"][0])
    assert len(rows) == 1 + len(runs)
    cells = [cell for row in rows[1:] for cell in row]
    assert not any(
        cell in ("None", "True", "False") or cell.startswith(("{", "[")) for cell in cells
    )
    assert rows[2][rows[0].index("test_accuracy")] == ""  # no evaluation: an empty cell


def test_the_compare_table_uses_the_json_names_and_piped_output_is_never_cut(
    trainq: Trainq, runs: list[int]
) -> None:
    as_json = json.loads(trainq("compare", *map(str, runs), "--format", "json").stdout)
    table = trainq("compare", *map(str, runs)).stdout
    labels = [line.split()[0] for line in table.splitlines() if line.strip()]
    for key in as_json["runs"][0]:
        assert key in labels
    assert "a-long-name-that-does-not-fit-a-column-at-all" in table
    assert "…" not in table


def test_compare_names_every_unknown_id_and_exits_4(trainq: Trainq, runs: list[int]) -> None:
    result = trainq("compare", str(runs[0]), "98765", "98766")
    assert result.returncode == 4
    assert "98765" in result.stderr and "98766" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_plot_writes_a_png_of_the_documented_size_for_loss_and_accuracy(
    trainq: Trainq, runs: list[int], tmp_path: Path
) -> None:
    for metric in ("loss", "accuracy"):
        out = tmp_path / f"{metric}.png"
        result = trainq("plot", *map(str, runs), "--metric", metric, "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert png_size(out) == CURVES_SIZE_PX


def test_plot_confusion_writes_a_png_from_the_newest_evaluation(
    trainq: Trainq, runs: list[int], tmp_path: Path
) -> None:
    out = tmp_path / "cm.png"
    result = trainq("plot", str(runs[0]), "--confusion", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert png_size(out) == CONFUSION_SIZE_PX


def test_plot_confusion_in_the_terminal_names_the_classes(trainq: Trainq, runs: list[int]) -> None:
    result = trainq("plot", str(runs[0]), "--confusion")
    assert result.returncode == 0, result.stderr
    for name in CLASS_NAMES:
        assert name in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_plot_confusion_without_an_evaluation_says_how_to_make_one(
    trainq: Trainq, runs: list[int]
) -> None:
    result = trainq("plot", str(runs[1]), "--confusion")
    assert result.returncode == 4
    assert f"trainq eval {runs[1]}" in result.stderr


def test_plot_without_out_draws_a_chart_that_fits_80_columns_when_piped(
    trainq: Trainq, runs: list[int]
) -> None:
    result = trainq("plot", *map(str, runs[:2]))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(any("\u2801" <= char <= "\u28ff" for char in line) for line in lines)
    assert f"run {runs[0]} (slow)" in result.stdout and f"run {runs[1]} (fast)" in result.stdout


@pytest.mark.parametrize(
    ("options", "complaint", "code"),
    [
        (("--out", "curves.jpg"), "--out", 2),
        (("--out", "/nonexistent/dir/c.png"), "--out", 2),
        (("--smoothing", "1.5"), "--smoothing", 2),
        (("987654",), "987654", 4),
    ],
)
def test_bad_plot_input_is_named_with_its_exit_code(
    trainq: Trainq, runs: list[int], options: tuple[str, ...], complaint: str, code: int
) -> None:
    result = trainq("plot", str(runs[0]), *options)
    assert result.returncode == code
    assert complaint in result.stderr and "Traceback" not in result.stderr
