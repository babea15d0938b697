"""``trainq worker``: a Celery worker that takes trainq's queues."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from storage.errors import ConfigurationError
from worker.choices import Device
from worker.queues import ALL_QUEUES, EVAL_QUEUE, TRAIN_QUEUE

#: Spare job processes of a CPU worker unless --standby says otherwise (worker.cluster.standby).
DEFAULT_STANDBY = 1
MAX_STANDBY = 4


def worker(
    queues: Annotated[
        str, typer.Option(help=f"Comma-separated queues from {', '.join(ALL_QUEUES)}.")
    ] = (f"{TRAIN_QUEUE},{EVAL_QUEUE}"),
    concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs run at once (1 suits TensorFlow; scale out).")
    ] = 1,
    standby: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=MAX_STANDBY,
            help="Warm spare job processes: one takes the next job at once when a job process "
            "dies. A spare warms up on idle CPU only, so it never slows the jobs in training; "
            "each holds TensorFlow and the data set in memory. Default: 1 on a CPU "
            "worker, 0 where jobs may use a GPU (a spare would hold GPU memory).",
            show_default=False,
        ),
    ] = None,
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

      trainq worker --standby 0   (no spare process: less memory, slower recovery)
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
    spares = _standby_processes(standby, device)
    if device is Device.GPU:
        _require_gpu()
    STATE.repository  # noqa: B018  (fail now, with a clear message, if the database is not ready)
    if device is not Device.AUTO:
        # The job processes are forked from this one and read their device setting from here.
        os.environ["TRAINQ_WORKER_DEVICE"] = device.value
    import worker.cluster.tasks  # noqa: F401  (registers the tasks on the app)
    from worker.cluster.celery_app import app
    from worker.cluster.standby import JOB_SLOTS_CONF_KEY, STANDBY_CONF_KEY

    app.conf[JOB_SLOTS_CONF_KEY] = concurrency  # a process finding this many warm is a spare
    if spares:
        # The pool holds the spares too; the consumer reserves one message per job slot.
        app.conf.worker_consumer = "worker.cluster.standby:StandbyConsumer"
        app.conf[STANDBY_CONF_KEY] = spares
    argv = [
        "worker",
        f"--queues={','.join(names)}",
        f"--concurrency={concurrency + spares}",
        f"--loglevel={loglevel}",
        "--pool=prefork",
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    app.worker_main(argv)


def _standby_processes(standby: int | None, device: Device) -> int:
    """How many spare job processes to keep warm: ``--standby`` if given, else one unless the
    jobs may run on a GPU. TensorFlow maps nearly all of a GPU's memory in the first process that
    uses it, so a warm spare on a GPU would starve the job beside it."""
    from worker.gpu_probe import nvidia_driver_loaded

    may_use_gpu = device is Device.GPU or (device is Device.AUTO and nvidia_driver_loaded())
    if standby is None:
        return 0 if may_use_gpu else DEFAULT_STANDBY
    if standby and device is Device.GPU:
        raise ConfigurationError(
            f"--standby {standby} with --device gpu: a spare job process would hold GPU memory "
            "the running job needs. Use --standby 0 on GPU workers"
        )
    return standby


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
