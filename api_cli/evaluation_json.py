"""The one JSON shape of a stored evaluation, for the CLI's ``--json`` and the dashboard alike.

Keys: ``id``, ``run_id``, ``checkpoint_step``, ``split``, ``loss``, ``accuracy``,
``per_class_accuracy`` (by class index), ``confusion`` (rows are the true class), ``job_id``,
``created_at`` (ISO 8601 UTC), ``class_names`` and ``per_class`` (one entry per class, keys
``PER_CLASS_HEADER``). A command may add what is about its call, not the evaluation (``trainq
eval`` adds ``stored``). No Rich here: the dashboard builds its pages from this too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from worker.data import CLASS_NAMES

if TYPE_CHECKING:
    from storage.records import EvaluationRecord

#: Columns of the per-class table, and the keys of each ``per_class`` entry in JSON.
PER_CLASS_HEADER = ("class", "name", "accuracy", "examples", "most_confused_with", "confusions")


def evaluation_dict(
    evaluation: EvaluationRecord, class_names: Sequence[str] = CLASS_NAMES
) -> dict[str, Any]:
    """The JSON form of an evaluation, its classes named by ``class_names`` (the run's dataset's,
    ``api_cli.class_names.run_class_names``; Fashion-MNIST's by default)."""
    return {
        "id": evaluation.id,
        "run_id": evaluation.run_id,
        "checkpoint_step": evaluation.checkpoint_step,
        "split": evaluation.split,
        "loss": evaluation.loss,
        "accuracy": evaluation.accuracy,
        "per_class_accuracy": evaluation.per_class_accuracy,
        "confusion": evaluation.confusion,
        "job_id": evaluation.job_id,
        "created_at": evaluation.created_at.isoformat(timespec="seconds"),
        "class_names": [
            class_name(index, class_names) for index in range(len(evaluation.confusion))
        ],
        "per_class": per_class_rows(evaluation, class_names),
    }


def per_class_rows(
    evaluation: EvaluationRecord, class_names: Sequence[str] = CLASS_NAMES
) -> list[dict[str, Any]]:
    """Each class's accuracy (recall), examples, and the class it is most often mistaken for."""
    rows: list[dict[str, Any]] = []
    for index, counts in enumerate(evaluation.confusion):
        wrong = [(count, other) for other, count in enumerate(counts) if other != index]
        worst_count, worst = max(wrong, default=(0, index))
        accuracy = evaluation.per_class_accuracy[index]
        rows.append(
            {
                "class": index,
                "name": class_name(index, class_names),
                "accuracy": None if math.isnan(accuracy) else accuracy,
                "examples": sum(counts),
                "most_confused_with": class_name(worst, class_names) if worst_count else None,
                "confusions": worst_count,
            }
        )
    return rows


def class_name(index: int, class_names: Sequence[str] = CLASS_NAMES) -> str:
    """The name of class ``index`` (its number past the known names)."""
    return class_names[index] if index < len(class_names) else str(index)
