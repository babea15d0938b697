"""The commands docker-compose.yml runs are ones trainq and Celery accept, and the stop grace period
fits the worker's Celery settings: the compose file and the code cannot drift apart unnoticed."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery
from typer.main import get_command

from api_cli.main import app as trainq_app
from tests.cluster.compose import raw_config, worker_stop_settings
from worker.cluster import celery_app

TRAINQ_SERVICES = ("migrate", "worker", "worker-gpu")


def parse_trainq(argv: list[str]) -> dict[str, Any]:
    """Parse ``trainq ARGV…`` as the CLI would, without running it; returns the parameters."""
    command: Any = get_command(trainq_app)
    path = ["trainq"]
    args = list(argv)
    while args and args[0] in getattr(command, "commands", {}):
        path.append(args[0])
        command = command.commands[args.pop(0)]
    params: dict[str, Any] = command.make_context(" ".join(path), args).params
    return params


@pytest.mark.parametrize("service", TRAINQ_SERVICES)
def test_every_trainq_command_in_the_compose_file_is_one_trainq_accepts(service: str) -> None:
    command = raw_config()["services"][service]["command"]

    assert command[0] == "trainq"
    parse_trainq(command[1:])


def test_compose_workers_take_one_job_at_a_time_from_the_train_and_eval_queues() -> None:
    params = parse_trainq(raw_config()["services"]["worker"]["command"][1:])

    assert params["queues"] == "train,eval"
    assert params["concurrency"] == 1


def test_flower_loads_the_celery_app_the_workers_run() -> None:
    command = raw_config()["services"]["flower"]["command"]

    assert command[command.index("--app") + 1] == "worker.cluster.celery_app:app"
    assert isinstance(celery_app.app, Celery)


def test_docker_stop_is_a_warm_shutdown_that_celery_does_not_stall_in_its_signal_handler() -> None:
    # Celery's soft shutdown sleeps in the signal handler before cancelling the job; the job
    # hands its run back at its next chunk instead (worker.cluster.shutdown), within the grace
    # period.
    assert celery_app.app.conf.worker_soft_shutdown_timeout == 0
    stop = worker_stop_settings()
    assert stop.remap_sigterm is None
    assert stop.grace_s >= 30
