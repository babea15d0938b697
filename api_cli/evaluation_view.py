"""One stored evaluation for people and for scripts: per-class accuracy by class name, confusions.

``trainq eval`` (when one checkpoint was evaluated) and ``trainq evals show`` print it. The class
names are those of the run's dataset (``api_cli.class_names``; Fashion-MNIST's by default); table
headers, JSON keys and CSV columns use the same names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from api_cli.evaluation_json import (
    PER_CLASS_HEADER,
    class_name,
    evaluation_dict,
    per_class_rows,
)
from api_cli.output import Format, print_csv, print_json, print_table, stdout
from api_cli.plotting.confusion_table import print_confusion
from worker.data import CLASS_NAMES

if TYPE_CHECKING:
    from storage.records import EvaluationRecord


def evaluation_detail_dict(
    evaluation: EvaluationRecord, *, stored: bool, class_names: Sequence[str] = CLASS_NAMES
) -> dict[str, Any]:
    """The JSON form of one evaluation (``evaluation_dict``) and whether it was stored before."""
    return {**evaluation_dict(evaluation, class_names), "stored": stored}


def print_evaluation(
    evaluation: EvaluationRecord,
    output_format: Format,
    *,
    stored: bool = True,
    class_names: Sequence[str] = CLASS_NAMES,
) -> None:
    """Print one evaluation: a summary, per-class accuracy and the labelled confusion matrix."""
    if output_format is Format.JSON:
        print_json(evaluation_detail_dict(evaluation, stored=stored, class_names=class_names))
        return
    rows = per_class_rows(evaluation, class_names)
    if output_format is Format.CSV:  # one line per class: a spreadsheet's natural shape
        print_csv(PER_CLASS_HEADER, [[row[name] for name in PER_CLASS_HEADER] for row in rows])
        return
    stdout.print(evaluation_heading(evaluation, stored=stored), highlight=False)
    print_table(
        "per-class accuracy",
        PER_CLASS_HEADER,
        [[row[name] for name in PER_CLASS_HEADER] for row in rows],
    )
    print_confusion(
        evaluation.confusion,
        [class_name(index, class_names) for index in range(len(evaluation.confusion))],
        "confusion matrix: rows are the true class, columns the predicted one",
    )


def evaluation_heading(evaluation: EvaluationRecord, *, stored: bool) -> str:
    """Three short lines: which checkpoint on which images, when, and the two metrics."""
    images = sum(map(sum, evaluation.confusion))
    when = evaluation.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"evaluation {evaluation.id}: run {evaluation.run_id}, checkpoint "
        f"{evaluation.checkpoint_step:,}, {evaluation.split} split, {images:,} images\n"
        f"{'stored result, ' if stored else ''}computed {when}\n"
        f"loss {_metric(evaluation.loss)}   accuracy {_metric(evaluation.accuracy)}"
    )


def stored_notice(evaluation: EvaluationRecord) -> str:
    """What ``trainq eval`` says when it returns a stored result instead of evaluating again."""
    when = evaluation.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"run {evaluation.run_id} checkpoint {evaluation.checkpoint_step:,} on {evaluation.split}: "
        f"stored result (evaluation {evaluation.id}, computed {when}); --force evaluates again"
    )


def evaluations_table(
    evaluations: Sequence[EvaluationRecord], stored_ids: set[int], title: str | None
) -> None:
    """Several evaluations, one line each (``trainq evals show ID`` details one)."""
    print_table(
        title,
        ("id", "run_id", "checkpoint_step", "split", "loss", "accuracy", "source"),
        [
            (
                e.id,
                e.run_id,
                e.checkpoint_step,
                e.split,
                e.loss,
                e.accuracy,
                "stored" if e.id in stored_ids else "new",
            )
            for e in evaluations
        ],
    )


def _metric(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else str(value)
