"""Sweep files: what is accepted, how trials are planned, and every bad file named by its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from worker.errors import InvalidConfigError
from worker.sweep_file import parse_sweep_text
from worker.sweep_plan import plan_trials
from worker.sweep_spec import AshaSpec, parse_sweep_spec

ISSUE_EXAMPLE = (Path(__file__).parents[2] / "bench" / "sweeps" / "issue10.yaml").read_text()


def spec_from(text: str) -> Any:
    return parse_sweep_spec(parse_sweep_text(text))


def test_the_issues_example_plans_64_valid_trials_deterministically() -> None:
    spec = spec_from(ISSUE_EXAMPLE)
    trials = plan_trials(spec)
    assert len(trials) == 64
    assert trials == plan_trials(spec_from(ISSUE_EXAMPLE))
    for params, config in trials:
        assert 0.003 <= params["lr"] <= 1.0
        assert config.learning_rate == params["lr"]
        assert (config.steps, config.batch_size, config.val_size) == (15_000, 128, 10_000)
        assert config.seed == config.val_seed == 7
    assert len({params["lr"] for params, _ in trials}) == 64


def test_asha_rungs_lie_below_the_steps_and_fall_on_checkpoints() -> None:
    assert AshaSpec(min_steps=1000, reduction_factor=3).rungs(15_000) == [1000, 3000, 9000]
    text = ISSUE_EXAMPLE.replace("min_steps: 1000", "min_steps: 750")
    for _, config in plan_trials(spec_from(text)):
        assert 750 % config.checkpoint_every_steps == 0
        assert config.checkpoint_every_steps % config.chunk_steps == 0


def test_a_trial_trains_one_chunk_per_checkpoint_unless_the_file_sets_the_chunk() -> None:
    for _, config in plan_trials(spec_from(ISSUE_EXAMPLE)):
        assert config.chunk_steps == config.checkpoint_every_steps == 1000
    chosen = ISSUE_EXAMPLE.replace("batch_size: {value: 128}", "chunk_steps: {value: 250}")
    for _, config in plan_trials(spec_from(chosen)):
        assert (config.chunk_steps, config.checkpoint_every_steps) == (250, 1000)


def test_a_grid_enumerates_every_combination_in_file_order() -> None:
    spec = spec_from(
        "method: grid\nseed: 1\nparameters:\n  lr: {values: [0.1, 0.2]}\n"
        "  init: {values: [normal, zeros]}\n  steps: {value: 100}\n"
    )
    assert [params for params, _ in plan_trials(spec)] == [
        {"lr": 0.1, "init": "normal", "steps": 100},
        {"lr": 0.1, "init": "zeros", "steps": 100},
        {"lr": 0.2, "init": "normal", "steps": 100},
        {"lr": 0.2, "init": "zeros", "steps": 100},
    ]


def test_json_is_accepted_too() -> None:
    data = parse_sweep_text(
        '{"method": "grid", "seed": 1, "parameters": {"lr": {"values": [0.1]}}}', json_only=True
    )
    assert parse_sweep_spec(data).run_cap == 1


BAD_FILES = {
    "unknown parameter": ("parameters: {learning_rat: {value: 1}}", "parameters.learning_rat"),
    "min above max": (
        "parameters: {lr: {distribution: uniform, min: 0.5, max: 0.1}}",
        "parameters.lr.min",
    ),
    "log uniform from zero": (
        "parameters: {lr: {distribution: log_uniform, min: 0, max: 1}}",
        "parameters.lr",
    ),
    "empty values": ("parameters: {momentum: {values: []}}", "parameters.momentum.values"),
    "reduction factor 1": (
        "early_terminate: {type: asha, min_steps: 10, reduction_factor: 1}",
        "early_terminate.reduction_factor",
    ),
    "run cap 0": ("run_cap: 0", "run_cap"),
    "a value trainq train refuses": ("parameters: {momentum: {value: 1.5}}", "parameters.momentum"),
    "a nan learning rate": ("parameters: {lr: {value: .nan}}", "nan"),
    "an unknown top-level key": ("parametrs: {}", "parametrs"),
    "a combination trainq train refuses": (
        "parameters: {checkpoint_every: {value: 300}, chunk_steps: {value: 200}}",
        "checkpoint_every",
    ),
}


@pytest.mark.parametrize(("body", "key"), BAD_FILES.values(), ids=list(BAD_FILES))
def test_a_bad_sweep_file_is_refused_naming_its_key(body: str, key: str) -> None:
    text = "method: random\nseed: 1\nrun_cap: 2\n" + body if "run_cap" not in body else body
    with pytest.raises(InvalidConfigError, match=key):
        plan_trials(spec_from(text if "seed" in text else "seed: 1\n" + text))


def test_a_grid_of_more_than_10000_trials_is_refused() -> None:
    values = "[" + ", ".join(str(i / 1000) for i in range(1, 101)) + "]"
    text = f"method: grid\nseed: 1\nparameters:\n  lr: {{values: {values}}}\n"
    text += "  l2: {values: " + values + "}\n  momentum: {values: [0.0, 0.5]}\n"
    with pytest.raises(InvalidConfigError, match="20,000 combinations"):
        spec_from(text)


def test_a_file_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(InvalidConfigError, match="must be a mapping"):
        parse_sweep_text("- lr\n- momentum\n")


def test_yaml_tags_that_would_build_objects_are_refused_without_running_anything() -> None:
    with pytest.raises(InvalidConfigError, match="tags such as"):
        parse_sweep_text("name: !!python/object/apply:os.system ['touch /tmp/pwned']\n")


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{', '.join(['*' + previous] * 9)}]")
    with pytest.raises(InvalidConfigError, match="alias bomb"):
        parse_sweep_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("json_only", [False, True])
@pytest.mark.parametrize("levels", [50_000, 40])
def test_a_file_nested_deeper_than_any_sweep_needs_is_refused_naming_the_depth(
    levels: int, json_only: bool
) -> None:
    # 50,000 levels exhaust the parsers' stack; 40 parse but are deeper than a sweep can use.
    text = '{"parameters": ' + "[" * levels + "]" * levels + "}"
    with pytest.raises(InvalidConfigError, match="nested more than 32 levels deep"):
        parse_sweep_text(text, json_only=json_only)
