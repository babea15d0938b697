"""``trainq worker``: a Celery worker that takes trainq's queues."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from storage.errors import ConfigurationError
from worker.choices import Device
from worker.queues import ALL_QUEUES, EVAL_QUEUE, TRAIN_QUEUE


def worker(
    queues: Annotated[
        str, typer.Option(help=f"Comma-separated queues from {', '.join(ALL_QUEUES)}.")
    ] = (f"{TRAIN_QUEUE},{EVAL_QUEUE}"),
    concurrency: Annotated[
        int, typer.Option(min=1, help="Worker processes (1 suits TensorFlow; scale out).")
    ] = 1,
    device: Annotated[
        Device, typer.Option(help="Device for jobs that say auto (gpu: GPU workers).")
    ] = Device.AUTO,
    hostname: Annotated[
        str | None, typer.Option(help="Worker node name (default: Celery's, celery@HOST).")
    ] = None,
    loglevel: Annotated[
        str, typer.Option(help="Celery log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    ] = "INFO",
) -> None:
    """Start a worker (Celery prefork). Stop it with SIGTERM or Ctrl-C: the running job stops at
    its next chunk, stores a checkpoint there and hands its run back to the queue (its attempt is
    not spent), another worker resumes it at once, and this worker exits. A second Ctrl-C (or
    SIGQUIT) stops at once: the job is killed and its run resumes elsewhere from its newest
    checkpoint.

    Examples:

      TRAINQ_BROKER_URL=redis://127.0.0.1:6379/0 trainq worker

      trainq worker --queues gpu --device gpu
    """
    from api_cli.state import STATE

    settings = STATE.settings
    if settings.broker_url is None:
        raise ConfigurationError(
            "trainq worker needs a broker: set TRAINQ_BROKER_URL=redis://host:6379/0"
        )
    names = [name.strip() for name in queues.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ALL_QUEUES))
    if unknown or not names:
        raise ConfigurationError(
            f"--queues {queues!r}: unknown queue(s) {unknown}; use {', '.join(ALL_QUEUES)}"
        )
    if device is Device.GPU:
        _require_gpu()
    STATE.repository  # noqa: B018  (fail now, with a clear message, if the database is not ready)
    if device is not Device.AUTO:
        # The job processes are forked from this one and read their device setting from here.
        os.environ["TRAINQ_WORKER_DEVICE"] = device.value
    import worker.tasks  # noqa: F401  (registers the tasks on the app)
    from worker.celery_app import app

    argv = [
        "worker",
        f"--queues={','.join(names)}",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        "--pool=prefork",
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    app.worker_main(argv)


def _require_gpu() -> None:
    """Refuse to start a GPU worker on a machine that cannot train on a GPU."""
    from worker.errors import InvalidConfigError
    from worker.gpu_probe import gpu_problem

    problem = gpu_problem()
    if problem is not None:
        raise InvalidConfigError(
            f"--device gpu: {problem}. Start this worker with --device cpu (or auto), or start "
            "the gpu worker on a machine with an NVIDIA GPU"
        )
