"""``trainq train``: submit a training run (and, with ``--wait``, watch it finish)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from api_cli.exit_codes import ExitCode
from api_cli.options import parse_tags
from api_cli.output import print_json, stderr, stdout
from api_cli.progress import wait_for_run
from api_cli.state import STATE
from api_cli.views import run_dict
from worker.config import Device, Init, Schedule, TrainConfig, parse_train_config
from worker.errors import InvalidConfigError
from worker.queues import GPU_QUEUE, TRAIN_QUEUE

if TYPE_CHECKING:
    from storage.records import RunRecord

_DEFAULTS = TrainConfig()

#: Config field → the option that sets it, so validation errors name what the user typed.
OPTION_FOR_FIELD = {
    "learning_rate": "--lr",
    "batch_size": "--batch-size",
    "steps": "--steps",
    "seed": "--seed",
    "init": "--init",
    "momentum": "--momentum",
    "l2": "--l2",
    "schedule": "--schedule",
    "checkpoint_every_steps": "--checkpoint-every",
    "chunk_steps": "--chunk-steps",
    "device": "--device",
    "val_size": "--val-size",
}

EPILOG = """
Examples:

  trainq train                                  # the seed's job: 10,000 steps, lr 0.01, batch 128

  trainq train --init zeros --lr 0.5 --momentum 0.9 --schedule cosine --steps 3000 --name best

  trainq train --steps 500 --tag team=vision --tag sweep=3 --no-wait --json
"""


def train(
    lr: Annotated[
        float, typer.Option("--lr", help="Learning rate (finite, > 0).")
    ] = _DEFAULTS.learning_rate,
    batch_size: Annotated[
        int, typer.Option(help="Examples per step, 1..60000.")
    ] = _DEFAULTS.batch_size,
    steps: Annotated[int, typer.Option(help="SGD steps, 1..10,000,000.")] = _DEFAULTS.steps,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; drawn and recorded if omitted.")
    ] = None,
    init: Annotated[Init, typer.Option(help="Initial weights.")] = _DEFAULTS.init,
    momentum: Annotated[float, typer.Option(help="Momentum in [0, 1).")] = _DEFAULTS.momentum,
    l2: Annotated[float, typer.Option(help="L2 weight decay on W.")] = _DEFAULTS.l2,
    schedule: Annotated[
        Schedule, typer.Option(help="Learning-rate schedule.")
    ] = _DEFAULTS.schedule,
    checkpoint_every: Annotated[
        int, typer.Option(help="Steps between checkpoints (a multiple of --chunk-steps).")
    ] = _DEFAULTS.checkpoint_every_steps,
    chunk_steps: Annotated[
        int, typer.Option(help="Steps per compiled call and per stored metric row.")
    ] = _DEFAULTS.chunk_steps,
    device: Annotated[
        Device, typer.Option(help="auto, cpu or gpu (gpu runs go to the gpu queue).")
    ] = _DEFAULTS.device,
    val_size: Annotated[
        int,
        typer.Option(help="Training images held out for validation (0: train on all 60,000)."),
    ] = _DEFAULTS.val_size,
    name: Annotated[str | None, typer.Option(help="A name to find the run by.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE label; repeatable.")] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(help="Worker losses tolerated before FAILED (default TRAINQ_MAX_ATTEMPTS)."),
    ] = None,
    wait: Annotated[
        bool | None,
        typer.Option(
            "--wait/--no-wait", help="Watch the run to the end (default: wait when embedded)."
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Submit a training run of the seed's logistic regression on Fashion-MNIST.

    With no TRAINQ_BROKER_URL the run executes right here (embedded mode, SQLite under TRAINQ_HOME);
    otherwise it is queued for `trainq worker` processes. The run id is printed; with --wait a live
    progress bar follows and the exit code says whether the run succeeded.
    """
    config = _validated_config(
        learning_rate=lr,
        batch_size=batch_size,
        steps=steps,
        seed=seed,
        init=init.value,
        momentum=momentum,
        l2=l2,
        schedule=schedule.value,
        checkpoint_every_steps=checkpoint_every,
        chunk_steps=chunk_steps,
        device=device.value,
        val_size=val_size,
    )
    tags = parse_tags(tag or [])
    if max_attempts is not None and max_attempts < 1:
        raise InvalidConfigError("--max-attempts must be at least 1")
    settings = STATE.settings
    embedded = settings.embedded
    if wait is False and embedded:
        raise InvalidConfigError(
            "--no-wait needs a broker: in embedded mode the job runs in this process. "
            "Set TRAINQ_BROKER_URL to queue it for workers."
        )
    if not embedded:
        STATE.dispatcher.ping()  # fail fast, before anything is stored
    repository = STATE.repository
    from storage.records import JobKind

    run = repository.create_run(
        kind=JobKind.TRAIN,
        config=config.model_dump(mode="json"),
        seed=config.seed_value,
        queue=GPU_QUEUE if config.device is Device.GPU else TRAIN_QUEUE,
        max_attempts=max_attempts or settings.max_attempts,
        name=name,
        tags=tags,
    )
    if not json_output:
        mode = "in this process (embedded)" if embedded else f"on queue {run.queue!r}"
        stdout.print(f"run {run.id} queued {mode}, seed {run.seed}")
    show_progress = not json_output or stderr.is_terminal
    if embedded:
        from api_cli.embedded import run_in_process

        run = run_in_process(STATE, run.id, show_progress=show_progress)
    else:
        STATE.dispatcher.publish(repository, run)
        if wait:
            run = wait_for_run(repository, run.id, show_progress=show_progress)
    report_run(run, json_output=json_output)


def _validated_config(**fields: Any) -> TrainConfig:
    try:
        return parse_train_config(fields).resolved()
    except InvalidConfigError as exc:
        message = str(exc)
        for field, option in OPTION_FOR_FIELD.items():
            message = message.replace(f"{field}:", f"{option}:")
        raise InvalidConfigError(message) from None


def report_run(run: RunRecord, *, json_output: bool) -> None:
    """Print a run's outcome and exit with the code its status implies."""
    from storage.records import RunStatus

    if json_output:
        print_json(run_dict(run))
    elif run.status is RunStatus.SUCCEEDED:
        summary = run.summary or {}
        stdout.print(
            f"run {run.id} [green]succeeded[/]: {run.steps_done} steps, "
            f"final loss {summary.get('final_loss', float('nan')):.4f}, "
            f"accuracy {summary.get('final_accuracy', float('nan')):.4f}, "
            f"{summary.get('steps_per_s', 0):,.0f} steps/s on {run.device}"
        )
    elif run.status is RunStatus.FAILED:
        stderr.print(f"run {run.id} [red]failed[/]: {run.error}")
    elif run.status is RunStatus.CANCELLED:
        stderr.print(f"run {run.id} [yellow]cancelled[/] after {run.steps_done} steps")
    else:
        stdout.print(f"run {run.id} is {run.status}; follow it with `trainq runs show {run.id}`")
    if run.status is RunStatus.FAILED:
        raise typer.Exit(ExitCode.RUN_FAILED)
    if run.status is RunStatus.CANCELLED:
        raise typer.Exit(ExitCode.RUN_CANCELLED)
