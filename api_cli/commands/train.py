"""``trainq train``: submit a training run (and, with ``--wait``, watch it finish)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api_cli.options import checked_option, parse_tags
from api_cli.output import stdout
from api_cli.progress import keep_terminal
from api_cli.state import STATE
from api_cli.submission import (
    JsonOption,
    TimeoutOption,
    WaitOption,
    follow_run,
    keeping_work_if_output_closes,
    refuse_no_wait_in_process,
    where,
)
from storage.validation import MAX_ATTEMPTS_LIMIT, MAX_NAME_CHARS, MAX_STEPS, check_name
from worker.choices import TRAIN_DEFAULTS as _DEFAULTS
from worker.choices import Device, Init, Schedule
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from api_cli.sdk import Client
    from worker.config import TrainConfig

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

  trainq train                         # the seed's job: 10,000 steps, lr 0.01

  trainq train --init zeros --lr 0.5 --momentum 0.9 --schedule cosine

  trainq train --steps 3000 --name best --wait

  trainq train --steps 500 --tag team=vision --tag sweep=3 --no-wait --json

  trainq train --data digits@1 --init zeros --batch-size 1078 --wait
"""


def train(
    lr: Annotated[
        float, typer.Option("--lr", "--learning-rate", help="Learning rate (finite, > 0).")
    ] = _DEFAULTS.learning_rate,
    batch_size: Annotated[
        int,
        typer.Option(
            help="Examples per step, at most the training examples left after --val-size "
            "(Fashion-MNIST: 60,000)."
        ),
    ] = _DEFAULTS.batch_size,
    steps: Annotated[int, typer.Option(help=f"SGD steps, 1..{MAX_STEPS:,}.")] = _DEFAULTS.steps,
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
        int | None,
        typer.Option(
            help=f"Steps between checkpoints (default {_DEFAULTS.checkpoint_every_steps}; given "
            "alone, the chunk is fitted to it)."
        ),
    ] = None,
    chunk_steps: Annotated[
        int | None,
        typer.Option(
            help=f"Steps per compiled call and stored metric row (default "
            f"{_DEFAULTS.chunk_steps}; given alone, checkpoints fall on its multiples)."
        ),
    ] = None,
    device: Annotated[
        Device, typer.Option(help="auto, cpu or gpu (gpu runs go to the gpu queue).")
    ] = _DEFAULTS.device,
    val_size: Annotated[
        int,
        typer.Option(help="Training examples held out for validation (0: train on them all)."),
    ] = _DEFAULTS.val_size,
    data: Annotated[
        str | None,
        typer.Option(
            help="A stored dataset to train on: NAME (its newest version), NAME@N or a hash "
            "(`trainq data list`); recorded with the run by content hash. Default: the "
            "built-in Fashion-MNIST."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help=f"A name to find the run by (<= {MAX_NAME_CHARS} chars).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE label; repeatable.")] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_ATTEMPTS_LIMIT,
            help="Worker losses tolerated before FAILED (default TRAINQ_MAX_ATTEMPTS).",
        ),
    ] = None,
    wait: WaitOption = None,
    json_output: JsonOption = False,
    timeout: TimeoutOption = None,
) -> None:
    """Submit a training run of the seed's logistic regression on Fashion-MNIST (or on a
    dataset of your own: --data).

    With no TRAINQ_BROKER_URL the run executes right here (embedded mode, SQLite under TRAINQ_HOME);
    otherwise it is queued for `trainq worker` processes. The run id is printed; with --wait a live
    progress bar follows and the exit code says whether the run succeeded.
    """
    fields: dict[str, Any] = {
        "learning_rate": lr,
        "batch_size": batch_size,
        "steps": steps,
        "seed": seed,
        "init": init.value,
        "momentum": momentum,
        "l2": l2,
        "schedule": schedule.value,
        "checkpoint_every_steps": checkpoint_every,
        "chunk_steps": chunk_steps,
        "device": device.value,
        "val_size": val_size,
    }
    # Without --data, every option is checked before anything is opened; with it, the
    # batch and the held-out split are checked against the version, once it is found.
    config = _validated_config(**fields) if data is None else None
    tags = parse_tags(tag or [])
    checked_option("--name", check_name, name)
    refuse_no_wait_in_process(wait, timeout)
    client = STATE.client
    if config is None:
        config = _on_data(client, fields, str(data))
    keep_terminal()  # before TensorFlow's import captures stderr (api_cli.progress)
    # Once the options are known good: an error must not wait for TensorFlow's import.
    config = client.ready_for_one_run(config)
    run = client.submit(config, name=name, tags=tags, max_attempts=max_attempts)
    handle = client.handle(run.id)
    with keeping_work_if_output_closes(handle):
        if not json_output:
            stdout.print(f"run {run.id} queued {where(handle, run)}, seed {run.seed}")
        follow_run(handle, wait=wait, json_output=json_output, timeout_s=timeout)


def _validated_config(**fields: Any) -> TrainConfig:
    # Here, not at the top: pydantic would slow every other command's start (worker.choices).
    from worker.config import parse_train_config

    try:
        return parse_train_config(fields)
    except InvalidConfigError as exc:
        raise InvalidConfigError(_in_option_words(str(exc))) from None


def _on_data(client: Client, fields: dict[str, Any], data: str) -> TrainConfig:
    """The config of these options on the stored version ``--data`` names, its batch and
    held-out split checked against that version's training examples."""
    try:
        return client.train_config(fields, data=data)
    except InvalidConfigError as exc:
        message = str(exc)
        if message.startswith("data: "):
            raise InvalidConfigError(f"--data: {message.removeprefix('data: ')}") from None
        raise InvalidConfigError(_in_option_words(message)) from None


def _in_option_words(message: str) -> str:
    """A validator's message with each config field named by the option that sets it."""
    for field, option in OPTION_FOR_FIELD.items():
        # Whole field names only: "steps" is also the end of "checkpoint_every_steps".
        message = re.sub(rf"(?<![\w-]){field}\b", option, message)
    return message
