"""``trainq eval``: evaluate one run's checkpoints or many runs'; stored results are reused."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.exit_codes import ExitCode
from api_cli.options import parse_status, parse_tags
from api_cli.output import (
    Format,
    chosen_format,
    literal,
    print_csv,
    print_json,
    say,
    stderr,
    stdout,
)
from api_cli.state import STATE
from api_cli.submission import (
    JsonOption,
    WaitOption,
    follow_jobs,
    refuse_no_wait_in_process,
    started_verb,
)
from storage.errors import CheckpointNotFoundError
from storage.validation import MAX_ID, MAX_STEPS
from worker.choices import Split
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage import Repository
    from storage.records import EvaluationJobRecord, EvaluationRecord, JobRecord, RunRecord

EPILOG = """
Examples:

  trainq eval 7                          # newest checkpoint of run 7 on the whole test split

  trainq eval 7 --force                  # evaluate again although a result is stored

  trainq eval 7 --checkpoint all --wait  # every checkpoint of run 7, one job each

  trainq eval --all --status succeeded --tag sweep=3 --wait --format csv
"""

#: CSV columns of ``trainq eval``: the scalar keys of its JSON evaluations.
CSV_HEADER = (
    "id",
    "run_id",
    "checkpoint_step",
    "split",
    "loss",
    "accuracy",
    "stored",
    "created_at",
)


def evaluate(
    run_id: Annotated[
        int | None,
        typer.Argument(min=1, max=MAX_ID, help="The training run to evaluate.", show_default=False),
    ] = None,
    checkpoint: Annotated[str, typer.Option(help="latest, a step number, or all.")] = "latest",
    split: Annotated[
        Split,
        typer.Option(help="test, train, or val: the images the run held out (--val-size)."),
    ] = Split.TEST,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Evaluate every run matching --status/--tag.")
    ] = False,
    status: Annotated[
        list[str] | None, typer.Option(help="With --all: run status filter; repeatable.")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="With --all: KEY=VALUE filter; repeatable.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Evaluate again even where a result is stored.")
    ] = False,
    wait: WaitOption = None,
    output_format: Annotated[
        Format, typer.Option("--format", help="table, json or csv.")
    ] = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Evaluate checkpoints over a whole split: loss, accuracy, per-class accuracy, confusions.

    A checkpoint already evaluated on the split gives its stored result at once (--force
    evaluates again); each other (run, checkpoint) becomes one evaluation job. Results are kept
    with the run: `trainq evals list`, `trainq evals show ID`.
    """
    from api_cli.evaluation_view import stored_notice

    shown = chosen_format(output_format, json_output)
    _check_checkpoint_option(checkpoint)
    if (run_id is None) == (not all_runs):
        raise InvalidConfigError(
            "give either a RUN_ID or --all (with optional --status/--tag filters)"
        )
    if not all_runs and (status or tag):
        raise InvalidConfigError("--status and --tag filter runs for --all; drop them or add --all")
    refuse_no_wait_in_process(wait)
    targets = _targets(run_id, checkpoint, split, all_runs, (status, tag))
    stored, to_compute = _stored_and_new(targets, split, force=force)
    client = STATE.client
    if to_compute:
        client.dispatcher.check()  # fail fast, before anything is stored
    jobs = [client.create_evaluation_job(run.id, step, split) for run, step in to_compute]
    handles = client.dispatch_many(jobs) if jobs else []
    if shown is Format.TABLE:
        for evaluation in stored:
            say(stored_notice(evaluation))
        if jobs:
            ids = ", ".join(f"eval {job.id}" for job in jobs)
            verb = started_verb(handles, "evaluating")
            say(f"{verb} {len(jobs)} checkpoint(s) as evaluation job(s) {ids}")
    finished = follow_jobs(handles, wait=wait) if handles else []
    if finished is None:  # queued for workers, not waited for
        _report_queued(jobs, stored, shown)
        return
    _report(finished, stored, shown)


def _targets(
    run_id: int | None,
    checkpoint: str,
    split: Split,
    all_runs: bool,
    filters: tuple[list[str] | None, list[str] | None],
) -> list[tuple[RunRecord, int]]:
    """The (training run, checkpoint step) pairs to evaluate: `latest` is a concrete step here."""
    from storage.records import RunStatus

    repository = STATE.repository
    status, tag = filters
    if all_runs:
        statuses = [parse_status(text) for text in status or []] or [RunStatus.SUCCEEDED]
        runs = repository.list_runs(statuses=statuses, tags=parse_tags(tag or []))
    else:
        assert run_id is not None
        runs = STATE.client.training_runs([run_id])
    if split is Split.VAL:
        runs = _with_validation_split(runs, lenient=all_runs)
    targets = [
        (run, step)
        for run in runs
        for step in _steps_to_evaluate(repository, run, checkpoint, all_runs)
    ]
    if not targets:
        raise CheckpointNotFoundError("nothing to evaluate: no matching run has a checkpoint")
    return targets


def _stored_and_new(
    targets: list[tuple[RunRecord, int]], split: Split, *, force: bool
) -> tuple[list[EvaluationRecord], list[tuple[RunRecord, int]]]:
    """Split the targets into those with a stored result (unless ``force``) and the others."""
    stored: list[EvaluationRecord] = []
    to_compute: list[tuple[RunRecord, int]] = []
    for run, step in targets:
        found = None if force else STATE.client.stored_evaluation(run.id, step, split)
        if found is None:
            to_compute.append((run, step))
        else:
            stored.append(found)
    return stored, to_compute


def _report_queued(
    jobs: list[EvaluationJobRecord], stored: list[EvaluationRecord], shown: Format
) -> None:
    """Jobs queued for workers: their ids, and the stored results that needed no job."""
    from api_cli.evaluation_view import evaluation_detail_dict, evaluations_table

    job_ids = [job.id for job in jobs]
    if shown is Format.JSON:
        print_json(
            {
                "evaluation_job_ids": job_ids,
                "status": "queued",
                "evaluations": [evaluation_detail_dict(e, stored=True) for e in stored],
            }
        )
    elif shown is Format.CSV:
        _print_csv(stored, {e.id for e in stored})
    else:
        if stored:
            evaluations_table(stored, {e.id for e in stored}, "stored results")
        stdout.print(
            "follow them with `trainq runs list --evals`; results: `trainq evals list`",
            highlight=False,
        )


def _check_checkpoint_option(checkpoint: str) -> None:
    if checkpoint in ("all", "latest"):
        return
    # isascii: str.isdigit() also accepts digits that int() refuses, such as '²'; the length
    # check keeps int() away from strings over its 4,300-digit limit.
    digits = checkpoint.isascii() and checkpoint.isdigit() and len(checkpoint) <= 20
    if not digits or not 1 <= int(checkpoint) <= MAX_STEPS:
        raise InvalidConfigError(
            f"--checkpoint {checkpoint[:40]!r}: use latest, all, or a step number "
            f"from 1 to {MAX_STEPS:,}"
        )


def _with_validation_split(runs: list[RunRecord], *, lenient: bool) -> list[RunRecord]:
    """Runs that held out validation images; with one run named, an error if it did not."""
    kept = [run for run in runs if int(run.config.get("val_size") or 0) > 0]
    if not kept and not lenient:
        raise InvalidConfigError(
            f"--split val: run {runs[0].id} held out no validation images (trained with "
            "--val-size 0); use --split test, or train with --val-size N"
        )
    return kept


def _steps_to_evaluate(
    repository: Repository, run: RunRecord, checkpoint: str, lenient: bool
) -> list[int]:
    infos = repository.list_checkpoints(run.id)
    if not infos:
        if lenient:
            return []
        raise CheckpointNotFoundError(
            f"run {run.id} has no checkpoint yet (status {run.status}); "
            "wait for its first checkpoint"
        )
    if checkpoint == "all":
        return [info.step for info in infos]
    if checkpoint == "latest":
        return [max(info.step for info in infos)]
    # isascii: str.isdigit() also accepts digits int() refuses, such as '²'.
    step = int(checkpoint)  # checked by _check_checkpoint_option before anything was read
    if step not in {info.step for info in infos}:
        steps = ", ".join(str(info.step) for info in infos)
        raise CheckpointNotFoundError(
            f"run {run.id} has no checkpoint at step {step}; it has: {steps}"
        )
    return [step]


def _report(finished: list[JobRecord], stored: list[EvaluationRecord], shown: Format) -> None:
    """Print the stored and the new results; exit 1 if an evaluation job did not succeed."""
    from api_cli.class_names import run_class_names
    from api_cli.evaluation_view import evaluation_detail_dict, evaluations_table, print_evaluation
    from storage.records import RunStatus

    repository = STATE.repository
    new = [e for job in finished if (e := repository.get_evaluation_for_job(job.id)) is not None]
    failed = [job for job in finished if job.status is not RunStatus.SUCCEEDED]
    stored_ids = {e.id for e in stored}
    evaluations = sorted([*stored, *new], key=lambda e: (e.run_id, e.checkpoint_step, e.id))
    if shown is Format.JSON:
        print_json(
            {
                "evaluation_job_ids": [job.id for job in finished],
                "evaluations": [
                    evaluation_detail_dict(
                        e,
                        stored=e.id in stored_ids,
                        class_names=run_class_names(repository, e.run_id),
                    )
                    for e in evaluations
                ],
                "failed": [
                    {"evaluation_job_id": job.id, "status": job.status.value, "error": job.error}
                    for job in failed
                ],
            }
        )
    elif shown is Format.CSV:
        _print_csv(evaluations, stored_ids)
    elif len(evaluations) == 1:
        only = evaluations[0]
        names = run_class_names(repository, only.run_id)
        print_evaluation(only, Format.TABLE, stored=only.id in stored_ids, class_names=names)
    elif evaluations:
        evaluations_table(evaluations, stored_ids, "evaluations")
        stdout.print("per-class accuracy and confusions of one: `trainq evals show ID`")
    for job in failed:
        stderr.print(f"[red]evaluation job eval {job.id} {job.status}[/]: {literal(job.error)}")
    if failed:
        raise typer.Exit(ExitCode.RUN_FAILED)


def _print_csv(evaluations: list[EvaluationRecord], stored_ids: set[int]) -> None:
    from api_cli.evaluation_view import evaluation_detail_dict

    rows = [{**evaluation_detail_dict(e, stored=e.id in stored_ids)} for e in evaluations]
    print_csv(CSV_HEADER, [[row[name] for name in CSV_HEADER] for row in rows])
