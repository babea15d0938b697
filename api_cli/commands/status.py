"""``trainq status``: is everything reachable, and what is the queue doing?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from api_cli.exit_codes import ExitCode
from api_cli.output import (
    Format,
    FormatOption,
    JsonShorthand,
    chosen_format,
    literal,
    print_fields_csv,
    print_json,
    print_table,
    stdout,
)
from api_cli.state import STATE
from storage.errors import ConfigurationError, TrainqError
from storage.redaction import redact

if TYPE_CHECKING:
    from storage import Repository


def status(
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """Database and broker reachability, workers online, queue depths, runs by status.

    Exit code 69 when the database or the (configured) broker does not answer, 78 when its
    TRAINQ_* setting is unusable. CSV has field,value rows named after the JSON's keys
    (database.runs_by_status.succeeded).

    Example: trainq status --format json
    """
    from storage.records import JobKind

    output_format = chosen_format(output_format, json_output)
    report: dict[str, Any] = {"mode": "embedded" if STATE.settings.embedded else "cluster"}
    healthy = True
    exit_code = ExitCode.UNAVAILABLE
    try:
        repository = STATE.repository
        runs = repository.count_runs_by_status(kind=JobKind.TRAIN)
        jobs = repository.count_runs_by_status(kind=JobKind.EVAL)
        report["database"] = {
            "ok": True,
            "runs_by_status": {key.value: value for key, value in runs.items()},
            "evaluation_jobs_by_status": {key.value: value for key, value in jobs.items()},
            "runs_whose_process_is_gone": _dead_owners(repository),
        }
    except TrainqError as exc:
        healthy = False
        if isinstance(exc, ConfigurationError):
            exit_code = ExitCode.CONFIG
        report["database"] = {"ok": False, "error": redact(str(exc))}
    if not STATE.settings.embedded:
        from worker.cluster.census import QueueCensus

        try:
            dispatcher = STATE.dispatcher
            dispatcher.ping()
            census = QueueCensus(STATE.settings)  # asked while the workers are pinged
            report["broker"] = {"ok": True, "queue_depths": dispatcher.queue_depths()}
            report["workers"] = sorted(dispatcher.workers_online())
            consumers = census.wait() or {}
            report["broker"]["consumers"] = {
                queue: sorted(consumers.get(queue, ()))
                for queue in report["broker"]["queue_depths"]
            }
        except TrainqError as exc:
            healthy = False
            report["broker"] = {"ok": False, "error": redact(str(exc))}
            report["workers"] = []
    if output_format is Format.JSON:
        print_json(report)
    elif output_format is Format.CSV:
        print_fields_csv(report)
    else:
        _print_report(report)
    if not healthy:
        raise typer.Exit(exit_code)


def _print_report(report: dict[str, Any]) -> None:
    stdout.print(f"mode: {report['mode']}")
    database = report["database"]
    stdout.print(f"database: {_health(database)}")
    if "broker" in report:
        broker = report["broker"]
        stdout.print(f"broker: {_health(broker)}")
        workers = literal(" ".join(report["workers"]))
        stdout.print(f"workers online: {len(report['workers'])} {workers}")
        if broker["ok"]:
            consumers = broker["consumers"]
            print_table(
                "queues",
                ("queue", "waiting", "consumed by"),
                [
                    (queue, waiting, " ".join(consumers[queue]) or "no online worker")
                    for queue, waiting in sorted(broker["queue_depths"].items())
                ],
                wrap=("consumed by",),
            )
    if database["ok"]:
        runs, jobs = database["runs_by_status"], database["evaluation_jobs_by_status"]
        print_table(
            "jobs by status",
            ("status", "training runs", "evaluation jobs"),
            [(status, count, jobs[status]) for status, count in runs.items()],
        )
        from api_cli.stranded import stranded_sentence

        for run_id, pid in database["runs_whose_process_is_gone"].items():
            stdout.print(stranded_sentence(int(run_id), pid), highlight=False)


def _dead_owners(repository: Repository) -> dict[str, int]:
    """``{run id: pid}`` of the running runs whose process, on this host, is gone."""
    from api_cli.stranded import dead_owners
    from storage.records import RunStatus

    running = repository.list_runs(statuses=[RunStatus.RUNNING])
    return {str(run_id): pid for run_id, pid in dead_owners(running).items()}


def _health(part: dict[str, Any]) -> str:
    return "[green]ok[/]" if part["ok"] else f"[red]{literal(part['error'])}[/]"
