"""Runs side by side: the fields ``trainq compare`` shows, in one order for table, JSON and CSV.

Each run becomes one flat mapping whose keys are the row labels of the table, the JSON keys and
the CSV header alike. Hyperparameters are read through the config parser (so their order is the
config's field order, not whatever order the database returned) and those that differ between
the runs come first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from api_cli.dataset_view import recorded_data_text
from api_cli.views import HOW_IT_RAN

if TYPE_CHECKING:
    from storage.records import EvaluationRecord, RunRecord

#: Sections of the comparison, in display order.
IDENTITY = "run"
HYPERPARAMETERS = "hyperparameters"
FINAL = "final metrics"
EVALUATIONS = "newest evaluation per split"
SPEED = "speed"

_IDENTITY_FIELDS = ("run_id", "name", "status")
#: Summary keys shown as final metrics (from the run's stored summary).
_FINAL_FIELDS = ("steps_done", "final_loss", "final_accuracy")
#: ``device_used`` is where the run trained (``CPU:0``); the ``device`` hyperparameter is what
#: was asked for (``auto``). ``xla`` is how it trained (``views.HOW_IT_RAN``): a config field, but
#: chosen by host and length, so it is shown here and never counted as a differing
#: hyperparameter.
_SPEED_FIELDS = (
    "training_steps_per_s",
    "wall_steps_per_s",
    "wall_s",
    "device_used",
    "xla",
    "pack",
)
#: Splits in the order they are shown; any other split follows, alphabetically.
_SPLIT_ORDER = ("val", "test", "train")


@dataclass(frozen=True)
class Comparison:
    """What ``trainq compare`` prints, independent of the format."""

    #: Every field shown, in order (the same names in table rows, JSON keys and CSV columns).
    fields: tuple[str, ...]
    #: The section each field belongs to.
    sections: Mapping[str, str]
    #: Hyperparameters whose values differ between the runs (shown first).
    differing: tuple[str, ...]
    #: One mapping per run, keyed by ``fields``.
    runs: tuple[Mapping[str, Any], ...]


def compare_runs(
    runs: Sequence[RunRecord],
    newest_evaluations: Sequence[Mapping[str, EvaluationRecord]],
    *,
    diff_only: bool = False,
) -> Comparison:
    """Build the comparison of ``runs`` (with each run's newest evaluation per split).

    Args:
        runs: the training runs, in the order the user named them.
        newest_evaluations: for each run, ``{split: newest evaluation}``.
        diff_only: keep only the fields whose values differ (the run's id and name stay).
    """
    configs = [_hyperparameters(run) for run in runs]
    hyper_rows = [
        {name: value for name, value in config.items() if name not in HOW_IT_RAN}
        for config in configs
    ]
    hyper_names = _union_in_order(hyper_rows)
    differing = tuple(name for name in hyper_names if _differs(hyper_rows, name))
    hyper_order = [*differing, *(name for name in hyper_names if name not in differing)]
    splits = _splits(newest_evaluations)
    sections = _sections(hyper_order, splits)
    rows = [
        _row(run, hyper, evaluations, splits) | {name: config.get(name) for name in HOW_IT_RAN}
        for run, hyper, config, evaluations in zip(
            runs, hyper_rows, configs, newest_evaluations, strict=True
        )
    ]
    fields = tuple(sections)
    if diff_only:
        fields = tuple(
            name for name in fields if name in ("run_id", "name") or _differs(rows, name)
        )
    return Comparison(
        fields=fields,
        sections={name: sections[name] for name in fields},
        differing=differing,
        runs=tuple({name: row.get(name) for name in fields} for row in rows),
    )


def _sections(hyperparameters: Sequence[str], splits: Sequence[str]) -> dict[str, str]:
    """Every field, in display order, with its section."""
    sections = dict.fromkeys(_IDENTITY_FIELDS, IDENTITY)
    sections.update(dict.fromkeys(hyperparameters, HYPERPARAMETERS))
    sections.update(dict.fromkeys(_FINAL_FIELDS, FINAL))
    for split in splits:
        names = (f"{split}_loss", f"{split}_accuracy", f"{split}_checkpoint")
        sections.update(dict.fromkeys(names, EVALUATIONS))
    sections.update(dict.fromkeys(_SPEED_FIELDS, SPEED))
    return sections


def _row(
    run: RunRecord,
    hyperparameters: Mapping[str, Any],
    evaluations: Mapping[str, EvaluationRecord],
    splits: Sequence[str],
) -> dict[str, Any]:
    """One run's values, keyed by field name (order does not matter here)."""
    summary = run.train_summary
    row: dict[str, Any] = {"run_id": run.id, "name": run.name, "status": run.status.value}
    row.update(hyperparameters)
    row["steps_done"] = run.steps_done
    row["final_loss"] = summary.final_loss if summary else None
    row["final_accuracy"] = summary.final_accuracy if summary else None
    for split in splits:
        evaluation = evaluations.get(split)
        row[f"{split}_loss"] = evaluation.loss if evaluation else None
        row[f"{split}_accuracy"] = evaluation.accuracy if evaluation else None
        row[f"{split}_checkpoint"] = evaluation.checkpoint_step if evaluation else None
    row["training_steps_per_s"] = summary.training_steps_per_s if summary else None
    row["wall_steps_per_s"] = summary.wall_steps_per_s if summary else None
    row["wall_s"] = summary.wall_s if summary else None
    row["device_used"] = run.device
    return row


#: Config fields shown as one ``data`` hyperparameter (``digits@2 (3f9c2a1b2c3d)``); the
#: config's ``dataset`` names the built-in set whatever version the run trained on.
_DATA_FIELDS = ("data_sha256", "data_name", "dataset")


def _hyperparameters(run: RunRecord) -> dict[str, Any]:
    """Every hyperparameter of ``run``, its dataset first, then the config's field order (seed
    included)."""
    from worker.config import parse_train_config  # pydantic: not for `trainq --help`
    from worker.errors import InvalidConfigError

    try:
        config = parse_train_config(run.config).model_dump(mode="json")
    except InvalidConfigError:
        # A config stored by another version of trainq: show it as stored, keys sorted.
        config = dict(sorted(run.config.items()))
    data = {"data": recorded_data_text(run)}
    return data | {name: value for name, value in config.items() if name not in _DATA_FIELDS}


def _union_in_order(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def _differs(rows: Sequence[Mapping[str, Any]], name: str) -> bool:
    values = [row.get(name) for row in rows]
    return any(value != values[0] for value in values[1:])


def _splits(newest_evaluations: Sequence[Mapping[str, EvaluationRecord]]) -> list[str]:
    present = {split for evaluations in newest_evaluations for split in evaluations}
    known = [split for split in _SPLIT_ORDER if split in present]
    return known + sorted(present.difference(_SPLIT_ORDER))
