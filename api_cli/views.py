"""How records look to users: the dictionaries behind ``--json`` and the rows behind tables.

A run's config is read through its parser (so hyperparameters come in ``TrainConfig`` field order,
whatever order the database kept the JSON keys in) and its summary through ``TrainSummary``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from api_cli.dataset_view import recorded_data, recorded_data_text
from api_cli.output import literal

if TYPE_CHECKING:
    from storage.records import (
        AttemptRecord,
        CheckpointInfo,
        EvaluationJobRecord,
        EvaluationRecord,
        RunRecord,
        TrainSummary,
    )

#: Latest loss and accuracy of running runs (mean of the newest steps), by run id.
LiveMetrics = Mapping[int, tuple[float | None, float | None]]

RUN_LIST_HEADER = (
    "id",
    "kind",
    "name",
    "status",
    "steps",
    "attempts",
    "loss",
    "accuracy",
    "tags",
    "created",
    "data",
    "data_sha256",
)


def config_items(run: RunRecord) -> dict[str, Any]:
    """A run's config through its parser: every field, in the config class's field order.

    A stored config that no longer validates (written by another version) is shown as stored,
    keys sorted, so that ``runs show`` can still display the run.
    """
    from storage.records import JobKind
    from worker.config import parse_eval_config, parse_train_config
    from worker.errors import InvalidConfigError

    parse = parse_train_config if run.kind is JobKind.TRAIN else parse_eval_config
    try:
        return parse(run.config).model_dump(mode="json")
    except InvalidConfigError:
        return dict(sorted(run.config.items()))


def run_dict(run: RunRecord) -> dict[str, Any]:
    """The JSON form of a run (every hyperparameter, seed included, is in ``config``)."""
    summary = run.train_summary
    return {
        "id": run.id,
        "run_id": run.id,
        "kind": run.kind.value,
        "name": run.name,
        "status": run.status.value,
        "config": config_items(run),
        "seed": run.seed,
        "queue": run.queue,
        "steps_done": run.steps_done,
        "attempts": run.attempt,
        "max_attempts": run.max_attempts,
        "cancel_requested": run.cancel_requested,
        "device": run.device,
        "worker_host": run.worker_host,
        "error": run.error,
        "summary": summary.to_json() if summary is not None else run.summary,
        "tags": run.tags,
        "note": run.note,
        "archived_at": _iso(run.archived_at),
        "data": recorded_data(run) if _is_train(run) else None,
        "sweep_id": run.sweep_id,
        "trial": run.trial,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
    }


def run_detail_dict(
    run: RunRecord,
    evaluations: list[EvaluationRecord],
    checkpoints: list[CheckpointInfo],
    attempts: Sequence[AttemptRecord] = (),
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``run_dict`` plus the run's evaluations (their classes named by ``class_names``, the
    run's dataset's: ``api_cli.class_names.run_class_names``; default Fashion-MNIST's),
    checkpoints and attempt history."""
    from api_cli.attempt_view import attempt_dict
    from api_cli.evaluation_json import evaluation_dict  # NumPy: only for a run's detail

    detail = run_dict(run)
    detail["attempt_history"] = [attempt_dict(attempt) for attempt in attempts]
    detail["evaluations"] = [
        evaluation_dict(evaluation)
        if class_names is None
        else evaluation_dict(evaluation, class_names)
        for evaluation in evaluations
    ]
    detail["checkpoints"] = [
        {"step": info.step, "sha256": info.sha256, "size_bytes": info.size_bytes}
        for info in checkpoints
    ]
    return detail


#: Config fields that say how a run ran rather than what it is: ``xla`` is chosen per host and
#: per length (``worker.training.xla_choice``) and ``pack`` (the width of the pack of trials it
#: trained in, ``worker.training.pack``) per sweep; both are kept in the config so that a resume
#: takes the same path; tables show them with the device, never among the hyperparameters (JSON
#: keeps the config whole).
HOW_IT_RAN = ("xla", "pack", "pack_narrows")
#: Config fields the ``data`` row says for people (``digits@2 (3f9c2a1b2c3d)``): the recorded
#: label, and ``dataset``, which names the built-in set whatever version the run trained on.
#: JSON and CSV keep them; ``data_sha256`` stays in the table, whole.
SAID_BY_THE_DATA_ROW = ("dataset", "data_name")


def run_show_rows(detail: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The ``field | value`` rows of ``trainq runs show``: one row per hyperparameter.

    Nested values (config, summary) are spread over rows of their own, so that no line is
    longer than a field and a number, and ``| grep learning_rate`` finds its line.
    """
    rows: list[tuple[str, Any]] = []
    for key, value in detail.items():
        if key in ("evaluations", "checkpoints", "run_id", "summary", "attempt_history"):
            continue
        if key == "config":
            # As given (0.01, 1e-05), not rounded like a metric: 1e-05 must not read 0.0000.
            rows.extend(
                (f"  {name}", _as_given(item))
                for name, item in value.items()
                if name not in HOW_IT_RAN and name not in SAID_BY_THE_DATA_ROW
            )
        elif key == "device":
            # How the run ran, not what it is: beside the device (see HOW_IT_RAN).
            rows.append((key, value))
            rows.extend(
                (name, detail["config"][name]) for name in HOW_IT_RAN if name in detail["config"]
            )
        elif key == "data":
            from api_cli.dataset_view import run_data_text

            rows.append(("data", run_data_text(value)))
        else:
            rows.append((key, value))
    for name, item in (detail["summary"] or {}).items():
        rows.append((f"summary.{name}", item))
    steps = ", ".join(str(c["step"]) for c in detail["checkpoints"])
    rows.append(("checkpoints", steps or None))
    return rows


def run_csv_rows(detail: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The ``field,value`` rows of ``trainq runs show --format csv``: nested values flattened to
    dotted names (``config.learning_rate``, ``summary.final_loss``,
    ``evaluation.10000.test.accuracy``)."""
    rows: list[tuple[str, Any]] = []
    for key, value in detail.items():
        if key in ("config", "summary", "data") and isinstance(value, Mapping):
            rows.extend((f"{key}.{name}", item) for name, item in value.items())
        elif key == "checkpoints":
            rows.append((key, " ".join(str(c["step"]) for c in value)))
        elif key == "attempt_history":
            from api_cli.attempt_view import attempt_csv_rows

            rows.extend(attempt_csv_rows(value))
        elif key == "evaluations":
            for evaluation in value:
                prefix = f"evaluation.{evaluation['checkpoint_step']}.{evaluation['split']}"
                rows.extend((f"{prefix}.{name}", evaluation[name]) for name in ("loss", "accuracy"))
        elif key != "run_id":
            rows.append((key, value))
    return rows


def run_list_row(run: RunRecord, live: LiveMetrics | None = None) -> tuple[Any, ...]:
    """One line of ``trainq runs list --format csv`` (full values, ``RUN_LIST_HEADER`` order).

    ``loss`` and ``accuracy`` are the final means of a finished run, or the latest ones of a
    running run (from ``live``), both over the last ``FINAL_WINDOW_STEPS`` steps.
    """
    loss, accuracy = _loss_and_accuracy(run, live or {})
    # The stored config as is: parsing it (pydantic) for one number would double the listing's
    # start-up; a train config is stored whole, so its steps are there.
    steps = f"{run.steps_done}/{run.config.get('steps', '-')}" if _is_train(run) else "-"
    return (
        run.id,
        run.kind.value,
        run.name,
        run.status.value,
        steps,
        run.attempt,
        loss,
        accuracy,
        run.tags,
        _iso(run.created_at),
        recorded_data(run)["label"] if _is_train(run) else None,
        recorded_data(run)["sha256"] if _is_train(run) else None,
    )


#: The table drops the kind (a listing shows one kind) and shortens names to fit 80 columns.
RUN_TABLE_HEADER = ("id", "name", "status", "steps", "att.", "loss", "acc.", "tags", "created")
#: Columns of the run table that may wrap; the others are never cut.
RUN_TABLE_WRAP = ("name", "tags")


def run_table_row(run: RunRecord, live: LiveMetrics | None = None) -> tuple[Any, ...]:
    """One line of the ``trainq runs list`` table."""
    full = run_list_row(run, live)
    steps = str(run.steps_done) if run.status.terminal and _is_train(run) else full[4]
    created = run.created_at.strftime("%m-%d %H:%M")
    status = "pruned" if is_pruned(run) else full[3]  # PRUNED_NOTE under the table says why
    return (full[0], full[2], status, steps, full[5], full[6], full[7], full[8], created)


#: The line under a run table that shows a pruned trial (its status is succeeded).
PRUNED_NOTE = "pruned: stopped early by its sweep's ASHA at a rung (status succeeded)"


def is_pruned(run: RunRecord) -> bool:
    """True for a sweep trial that ASHA stopped at a rung."""
    summary = run.train_summary
    return summary is not None and summary.pruned


def with_data_column(
    header: tuple[str, ...], rows: list[tuple[Any, ...]], runs: Sequence[RunRecord]
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The run table with a ``data`` column after the name when a shown run trained on a
    stored version (a listing of default runs only stays as narrow as before)."""
    if not any(recorded_data(run)["sha256"] for run in runs if _is_train(run)):
        return header, rows
    at = header.index("name") + 1
    cells = [recorded_data_text(run) if _is_train(run) else "-" for run in runs]
    return (
        (*header[:at], "data", *header[at:]),
        [(*row[:at], cell, *row[at:]) for row, cell in zip(rows, cells, strict=True)],
    )


#: ``trainq runs list --evals``: JSON keys and CSV columns; the table shows all but the last two.
EVAL_JOB_HEADER = (
    "id",
    "status",
    "run_id",
    "checkpoint_step",
    "split",
    "evaluation_id",
    "created_at",
    "attempts",
    "error",
)


def evaluation_job_dict(
    job: EvaluationJobRecord, evaluation: EvaluationRecord | None
) -> dict[str, Any]:
    """An evaluation job and the id of the result it stored (None until it has)."""
    return {
        "id": job.id,
        "status": job.status.value,
        "run_id": job.run_id,
        "checkpoint_step": job.checkpoint_step,
        "split": job.split,
        "evaluation_id": None if evaluation is None else evaluation.id,
        "created_at": _iso(job.created_at),
        "attempts": job.attempt,
        "error": job.error,
    }


def evaluation_job_table_row(row: dict[str, Any]) -> list[Any]:
    """A line of the ``trainq runs list --evals`` table: ``eval 3``, not a bare id that reads
    like a run's."""
    cells = [row[key] for key in EVAL_JOB_HEADER[:-2]]
    cells[0] = f"eval {row['id']}"
    cells[-1] = str(row["created_at"])[5:16].replace("T", " ")  # "12-02 01:50"
    return cells


def final_metrics_label(window_steps: int) -> str:
    """What the final loss and accuracy are: ``"mean of the last 500 steps"``."""
    if window_steps <= 1:
        return "the last step"
    return f"mean of the last {window_steps:,} steps"


def summary_sentence(run: RunRecord) -> str:
    """The final report of a succeeded training run, the same numbers the progress bar ends on.

    Example (three lines)::

        run 7 succeeded: 10,000 steps on CPU:0 in 4.1 s
          final loss 1.3143, accuracy 0.7107 (mean of the last 500 steps)
          speed 16,242 steps/s training only, 2,734 steps/s wall (set-up included)
    """
    from storage.records import FINAL_WINDOW_STEPS

    summary = run.train_summary
    if summary is None:
        return (
            f"run {run.id} [green]succeeded[/]: {run.steps_done:,} steps on {literal(run.device)}"
        )
    return (
        f"run {run.id} [green]succeeded[/]: {summary.steps_done:,} steps "
        f"on {literal(summary.device)} in {summary.wall_s:.1f} s\n"
        f"  final loss {_number(summary.final_loss, 4)}, "
        f"accuracy {_number(summary.final_accuracy, 4)} "
        f"({final_metrics_label(summary.final_window_steps or FINAL_WINDOW_STEPS)})\n"
        f"  speed {_speeds(summary)}"
    )


def _speeds(summary: TrainSummary) -> str:
    wall = f"{summary.wall_steps_per_s:,.0f} steps/s wall (set-up included)"
    if summary.training_steps_per_s is None:
        return wall
    return f"{summary.training_steps_per_s:,.0f} steps/s training only, {wall}"


def _loss_and_accuracy(run: RunRecord, live: LiveMetrics) -> tuple[float | None, float | None]:
    if run.id in live:
        return live[run.id]
    summary = run.train_summary
    if summary is None:
        return None, None
    return summary.final_loss, summary.final_accuracy


def _is_train(run: RunRecord) -> bool:
    from storage.records import JobKind

    return run.kind is JobKind.TRAIN


def _as_given(value: Any) -> Any:
    return str(value) if isinstance(value, float) else value


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")
