"""``trainq eval``: queue evaluation jobs for one run's checkpoints, or for many runs at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.exit_codes import ExitCode
from api_cli.options import parse_status, parse_tags
from api_cli.output import print_json, print_table, stderr, stdout
from api_cli.state import STATE
from api_cli.submission import JsonOption, WaitOption, follow_jobs, refuse_no_wait_in_process
from api_cli.views import evaluation_dict
from storage.errors import CheckpointNotFoundError
from storage.validation import MAX_ID, MAX_STEPS
from worker.config import Split
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage import Repository
    from storage.records import RunRecord

EPILOG = """
Examples:

  trainq eval 7                          # newest checkpoint of run 7 on the whole test split

  trainq eval 7 --checkpoint all --wait  # every checkpoint of run 7, one job each

  trainq eval --all --status succeeded --tag sweep=3 --wait --json
"""


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
    wait: WaitOption = None,
    json_output: JsonOption = False,
) -> None:
    """Evaluate checkpoints over a whole split: loss, accuracy, per-class accuracy, confusions.

    Each (run, checkpoint) becomes one queued job; results are stored with the run (see
    `trainq runs show RUN_ID`).
    """
    from storage.records import RunStatus

    _check_checkpoint_option(checkpoint)
    if (run_id is None) == (not all_runs):
        raise InvalidConfigError(
            "give either a RUN_ID or --all (with optional --status/--tag filters)"
        )
    if not all_runs and (status or tag):
        raise InvalidConfigError("--status and --tag filter runs for --all; drop them or add --all")
    statuses = [parse_status(text) for text in status or []] or (
        [RunStatus.SUCCEEDED] if all_runs else []
    )
    refuse_no_wait_in_process(wait)
    client = STATE.client
    client.dispatcher.check()
    repository = STATE.repository
    if all_runs:
        runs = repository.list_runs(statuses=statuses, tags=parse_tags(tag or []))
    else:
        assert run_id is not None
        runs = [repository.get_run(run_id)]
    if split is Split.VAL:
        runs = _with_validation_split(runs, lenient=all_runs)
    targets = [
        (run, step)
        for run in runs
        for step in _steps_to_evaluate(repository, run, checkpoint, all_runs)
    ]
    if not targets:
        raise CheckpointNotFoundError("nothing to evaluate: no matching run has a checkpoint")
    jobs = [client.create_evaluation_job(run.id, step, split) for run, step in targets]
    if not json_output:
        job_ids = ", ".join(str(job.id) for job in jobs)
        stdout.print(f"queued {len(jobs)} evaluation job(s): {job_ids}")
    finished = follow_jobs(client.dispatch_many(jobs), wait=wait, json_output=json_output)
    if finished is not None:
        _report(finished, json_output=json_output)


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


def _report(jobs: list[RunRecord], *, json_output: bool) -> None:
    from storage.records import RunStatus

    repository = STATE.repository
    evaluations = [
        e for job in jobs if (e := repository.get_evaluation_for_job(job.id)) is not None
    ]
    failed = [job for job in jobs if job.status is not RunStatus.SUCCEEDED]
    if json_output:
        print_json(
            {
                "evaluations": [evaluation_dict(e) for e in evaluations],
                "failed": [
                    {"job_id": job.id, "status": job.status.value, "error": job.error}
                    for job in failed
                ],
            }
        )
    else:
        print_table(
            "evaluations",
            ("run", "checkpoint", "split", "loss", "accuracy"),
            [(e.run_id, e.checkpoint_step, e.split, e.loss, e.accuracy) for e in evaluations],
        )
        for job in failed:
            stderr.print(f"[red]evaluation job {job.id} {job.status}[/]: {job.error}")
    if failed:
        raise typer.Exit(ExitCode.RUN_FAILED)
