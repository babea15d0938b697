"""docs/sweep-file.md is true: its samples are valid sweep files, it names every key trainq reads,
and `trainq sweep start --help` shows the same small file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.sweep_spec import _TOP_LEVEL_KEYS, PARAMETER_FIELDS, parse_sweep_spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "sweep-file.md"
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def samples() -> list[dict[str, Any]]:
    return [yaml.safe_load(block) for block in YAML_BLOCK.findall(DOC.read_text())]


@pytest.mark.parametrize("index", [0, 1], ids=["small", "every-key"])
def test_each_sample_is_a_valid_sweep_file(index: int) -> None:
    spec = parse_sweep_spec(samples()[index], default_seed=1)

    assert spec.run_cap >= 1 and spec.parameters


def test_the_every_key_sample_sets_every_key_and_every_parameter_but_the_seed() -> None:
    every = samples()[1]

    assert set(every) == _TOP_LEVEL_KEYS
    assert set(every["parameters"]) == set(PARAMETER_FIELDS) - {"seed"}  # the file's seed
    assert set(every["early_terminate"]) == {"type", "min_steps", "reduction_factor"}


def test_the_tables_name_every_key_and_parameter() -> None:
    text = DOC.read_text()

    for key in _TOP_LEVEL_KEYS:
        assert f"| `{key}` |" in text, f"docs/sweep-file.md has no row for {key}"
    for name, field in PARAMETER_FIELDS.items():
        assert f"| `{name}` | `{field}` |" in text, f"docs/sweep-file.md has no row for {name}"


def test_sweep_start_help_shows_the_pages_small_sample() -> None:
    from tests.cli.test_help import rendered_help

    shown = rendered_help(("sweep", "start"))
    small = YAML_BLOCK.findall(DOC.read_text())[0]
    for line in small.strip().splitlines():
        assert line in shown, f"`trainq sweep start --help` lacks the sample's line {line!r}"
