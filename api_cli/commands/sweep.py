"""``trainq sweep``: many runs as one experiment, with ASHA early stopping (see README, Sweeps)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api_cli.commands import sweep_manage
from api_cli.commands.plot import MAX_CHART_ROWS
from api_cli.exit_codes import ExitCode
from api_cli.help_format import TrainqTyper
from api_cli.output import (
    Format,
    FormatOption,
    JsonShorthand,
    chosen_format,
    format_cell,
    literal,
    print_csv,
    print_json,
    print_table,
    stdout,
    tell,
)
from api_cli.state import STATE
from storage.validation import MAX_ID
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage.sweep_records import SweepRecord
    from worker.sweep_report import SweepReport

#: ``sweep list``'s columns: table headers, CSV header and JSON keys alike.
SWEEP_LIST_HEADER = ("id", "name", "status", "trials", "best_run_id", "best", "steps")

app = TrainqTyper(
    help="Sweeps: many trials of `trainq train` chosen on validation, with ASHA early stopping.",
    no_args_is_help=True,
    epilog="Examples:\n\n  trainq sweep start sweep.yaml\n\n  trainq sweep resume 3\n\n"
    "  trainq sweep show 3\n\n"
    "  trainq sweep best 3 --export best.npz\n\n  trainq sweep plot 3\n\n"
    "  trainq sweep plot 3 --out sweep3.png\n\n  trainq sweep archive 3",
)


@app.command("start")
def start(
    file: Annotated[Path, typer.Argument(help="The sweep file (YAML, or JSON).", dir_okay=False)],
    wait: Annotated[
        bool | None,
        typer.Option("--wait/--no-wait", help="Follow it to the end (default: when embedded)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Validate a sweep file, store the sweep and its trials, and start them.

    Embedded, the trials run here, side by side in packs (the file's pack key)
    or one after another (Ctrl-C stops at the next chunk and keeps the sweep
    resumable: `trainq sweep resume ID`); in a cluster they are queued for
    workers, at most max_concurrent at once. Prints the sweep id.

    A small sweep file (every key, with its default: docs/sweep-file.md in trainq's source):

      name: lr-search
      method: random
      run_cap: 8
      parameters:
        lr:    {distribution: log_uniform, min: 0.001, max: 0.5}
        steps: {value: 2000}
      early_terminate: {type: asha, min_steps: 250}

    Example: trainq sweep start sweep.yaml
    """
    _refuse_no_wait_embedded(wait)
    sweep = STATE.client.submit_sweep(file, run_here=False)  # exit 2 naming the key
    if not json_output:
        spec = sweep.spec
        stdout.print(f"sweep {sweep.id} started: {spec['run_cap']} trials, seed {spec['seed']}")
    _follow(sweep, wait=wait, json_output=json_output)


@app.command("resume")
def resume(
    sweep_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The sweep's id.")],
    wait: Annotated[
        bool | None,
        typer.Option("--wait/--no-wait", help="Follow it to the end (default: when embedded)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Continue a sweep whose `sweep start` process died or was interrupted.

    Embedded, the trial that was interrupted resumes here from its newest
    checkpoint (at once when its process on this machine is gone), then the
    remaining trials run; ASHA decisions already taken are kept. In a cluster
    the workers carry a sweep on by themselves: this publishes its next trials
    and returns (--wait follows it).

    Example: trainq sweep resume 3
    """
    _refuse_no_wait_embedded(wait)
    sweep = STATE.client.resume_sweep(sweep_id, run_here=False)
    if not json_output:
        _say_where_it_resumes(sweep_id)
    _follow(sweep, wait=wait, json_output=json_output)


def _refuse_no_wait_embedded(wait: bool | None) -> None:
    if wait is False and STATE.settings.embedded:
        raise InvalidConfigError(
            "--no-wait needs a broker: in embedded mode the trials run in this process. "
            "Set TRAINQ_BROKER_URL to queue them for workers."
        )


def _say_where_it_resumes(sweep_id: int) -> None:
    from storage.records import RunStatus

    repository = STATE.repository
    trials = repository.list_sweep_trials(sweep_id)
    runs = repository.list_runs(sweep_id=sweep_id)
    ended = sum(run.status.terminal for run in runs)
    if STATE.settings.embedded:
        stdout.print(f"sweep {sweep_id} resumes here: {ended} of {len(trials)} trials ended")
    else:
        stdout.print(
            f"sweep {sweep_id}: the workers carry it on ({ended} of {len(trials)} trials ended); "
            "its next trials are published"
        )
    for run in sorted(runs, key=lambda r: r.trial or 0):
        if run.status in (RunStatus.QUEUED, RunStatus.RUNNING) and run.steps_done > 0:
            checkpoints = repository.list_checkpoints(run.id)
            step = checkpoints[-1].step if checkpoints else 0
            stdout.print(
                f"trial {run.trial} (run {run.id}) resumes from its checkpoint at step {step:,}"
            )


def _follow(sweep: SweepRecord, *, wait: bool | None, json_output: bool) -> None:
    from api_cli.sweep_run import run_sweep_in_process, wait_for_sweep

    if STATE.settings.embedded:
        sweep = run_sweep_in_process(sweep.id, quiet=json_output)
    elif wait:
        sweep = wait_for_sweep(sweep.id, quiet=json_output)
    _report_end(sweep, json_output=json_output)


def _report_end(sweep: SweepRecord, *, json_output: bool) -> None:
    from storage.sweep_records import SweepStatus
    from worker.sweep_report import sweep_report

    if not sweep.status.terminal:
        if json_output:
            print_json({"sweep_id": sweep.id, "status": sweep.status.value})
        else:
            stdout.print(f"follow it with `trainq sweep show {sweep.id}`")
        return
    report = sweep_report(STATE.repository, sweep.id)
    if json_output:
        print_json({"sweep_id": sweep.id} | report.to_json())
    else:
        _print_summary(report)
    if sweep.status is SweepStatus.CANCELLED:
        raise typer.Exit(ExitCode.RUN_CANCELLED)


@app.command("list")
def list_sweeps(
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 20,
    archived: Annotated[
        bool, typer.Option("--archived", help="Archived sweeps only (hidden otherwise).")
    ] = False,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """List sweeps, newest first (archived ones with --archived only).

    Example: trainq sweep list --archived
    """
    output_format = chosen_format(output_format, json_output)
    from worker.sweep_report import sweep_report

    repository = STATE.repository
    sweeps = repository.list_sweeps(limit=limit, archived=archived)
    reports = [sweep_report(repository, s.id) for s in sweeps]
    rows = [
        {
            "id": r.sweep.id,
            "name": r.sweep.name,
            "status": r.sweep.status.value,
            "trials": f"{sum(t.run_id is not None for t in r.trials)}/{len(r.trials)}",
            "best_run_id": r.best.run_id if r.best else None,
            "best": r.best.objective if r.best else None,
            "steps": f"{r.steps_trained:,}/{r.steps_budget:,}",
        }
        for r in reports
    ]
    if output_format is Format.JSON:
        print_json(rows)
    elif output_format is Format.CSV:
        print_csv(SWEEP_LIST_HEADER, [tuple(row.values()) for row in rows])
    elif not rows:
        stdout.print(_no_sweeps(archived), highlight=False)
    else:
        print_table(None, SWEEP_LIST_HEADER, [tuple(row.values()) for row in rows])


def _no_sweeps(archived: bool) -> str:
    """An empty sweep listing: none at all, none archived, or every one archived."""
    if archived:
        return "no archived sweeps (`trainq sweep archive ID` archives one)"
    if STATE.repository.list_sweeps(limit=1, archived=True):
        return "no sweeps listed: every sweep is archived (`trainq sweep list --archived`)"
    return "no sweeps yet: start one with `trainq sweep start FILE`"


@app.command("show")
def show(
    sweep_id: Annotated[int, typer.Argument(help="The sweep's id.")],
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """Show a sweep: trials, rungs with their cut-offs, the best trial, steps against budget.

    CSV has one line per trial, with the keys of the JSON's trials as its header.

    Example: trainq sweep show 3 --format csv
    """
    output_format = chosen_format(output_format, json_output)
    from worker.sweep_report import sweep_report

    report = sweep_report(STATE.repository, sweep_id)
    if output_format is Format.JSON:
        print_json(report.to_json())
        return
    if output_format is Format.CSV:  # one line per trial, as in the JSON's "trials"
        trials = report.to_json()["trials"]
        print_csv(tuple(trials[0]) if trials else ("trial",), [tuple(t.values()) for t in trials])
        return
    metric = report.spec.objective.value
    varying = [p.name for p in report.spec.parameters if p.values is None or len(p.values) > 1]
    fixed = [p for p in report.spec.parameters if p.name not in varying]
    if fixed:
        pairs = ", ".join(f"{p.name}={(p.values or ('',))[0]}" for p in fixed)
        stdout.print(f"fixed: {literal(pairs)}")
    if report.spec.pack is not None and report.spec.pack > 1:
        narrowing = " (narrower at ASHA's rungs)" if report.spec.asha is not None else ""
        stdout.print(f"packed: up to {report.spec.pack} trials per compiled call{narrowing}")
    print_table(
        f"sweep {sweep_id} ({report.sweep.name or 'unnamed'}): {report.sweep.status.value}",
        ("trial", "run", "status", "params", "steps", metric, "rung", "pruned"),
        [
            (
                t.trial,
                t.run_id,
                t.status,
                ", ".join(f"{k}={format_cell(t.params.get(k))}" for k in varying),
                t.steps_done,
                t.objective,
                t.rung_reached,
                "yes" if t.pruned else "",
            )
            for t in report.trials
        ],
        wrap=("params",),
    )
    if report.rungs:
        print_table(
            "rungs",
            ("step", "results", "continued", "cut-off"),
            [(r.step, r.results, r.continued, r.cutoff) for r in report.rungs],
        )
    _print_summary(report)


def _print_summary(report: SweepReport) -> None:
    best = report.best
    share = report.steps_trained / report.steps_budget if report.steps_budget else 0.0
    stdout.print(
        f"steps trained {report.steps_trained:,} of a budget of {report.steps_budget:,} "
        f"({share:.1%})"
    )
    if best is None:
        stdout.print("no trial has a validation result yet")
        return
    tell(  # the parameters run long: broken between words on a terminal, one line piped
        f"best: trial {best.trial}, run {best.run_id}, {report.spec.objective.value} "
        f"{format_cell(best.objective)}  ({literal(format_cell(best.params))})",
        highlight=True,
    )


@app.command("cancel")
def cancel(sweep_id: Annotated[int, typer.Argument(help="The sweep's id.")]) -> None:
    """Cancel a sweep: queued trials never train, running ones stop within a chunk.

    Example: trainq sweep cancel 3
    """
    sweep = STATE.repository.cancel_sweep(sweep_id)
    stdout.print(f"sweep {sweep_id} is {sweep.status.value}")


@app.command("best")
def best(
    sweep_id: Annotated[int, typer.Argument(help="The sweep's id.")],
    export: Annotated[
        Path | None, typer.Option(help="Write the best trial's weights to this .npz.")
    ] = None,
    force: Annotated[bool, typer.Option(help="With --export: overwrite an existing file.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """The best trial so far (chosen on validation), optionally exporting its weights.

    Example: trainq sweep best 3 --export best.npz
    """
    from api_cli.commands.export import check_destination
    from api_cli.commands.export import export as export_run
    from storage.errors import NotFoundError
    from worker.sweep_report import sweep_report

    if export is not None:  # in this command's words: --export, not export's --out
        check_destination(export, force=force, option="--export")
    report = sweep_report(STATE.repository, sweep_id)
    trial = report.best
    if trial is None or trial.run_id is None:
        raise NotFoundError(f"sweep {sweep_id} has no trial with a validation result yet")
    if export is not None:
        # Its "wrote FILE" line goes to stderr when stdout carries JSON.
        with contextlib.redirect_stdout(sys.stderr if json_output else sys.stdout):
            export_run(trial.run_id, out=export, force=True)  # checked above
    if json_output:
        print_json(
            {
                "sweep_id": sweep_id,
                "run_id": trial.run_id,
                "trial": trial.trial,
                "params": trial.params,
                "objective": trial.objective,
            }
        )
    else:
        stdout.print(
            f"run {trial.run_id} (trial {trial.trial}): {report.spec.objective.value} "
            f"{format_cell(trial.objective)}  {literal(format_cell(trial.params))}"
        )


@app.command("plot")
def plot(
    sweep_id: Annotated[int, typer.Argument(help="The sweep's id.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Write an image (.png, .svg or .pdf); without it, draw in the terminal."),
    ] = None,
) -> None:
    """Plot a sweep: validation curves, and each parameter against the metric.

    Every trial's validation metric against step (a pruned trial's line ends
    with an x where ASHA stopped it; the best trial's is thicker, or ends with
    a dot in the terminal), then one panel per varying parameter. Without
    --out it is drawn in the terminal.

    Example: trainq sweep plot 3 --out sweep3.png
    """
    from worker.sweep_report import sweep_report

    if out is not None:
        if out.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise InvalidConfigError(f"--out {out}: use a .png, .svg or .pdf file name")
        if not out.parent.is_dir():
            raise InvalidConfigError(f"--out {out}: directory {out.parent} does not exist")
    report = sweep_report(STATE.repository, sweep_id)
    if out is not None:
        from api_cli.sweep_plot import plot_sweep

        plot_sweep(report, out)
        stdout.print(f"wrote {literal(out)}")
        return
    from api_cli.plotting.sweep_terminal import render_sweep

    colour = stdout.is_terminal and stdout.color_system is not None
    height = max(6, min(MAX_CHART_ROWS, stdout.height - 8))
    for line in render_sweep(report, width=stdout.width, height=height, colour=colour):
        stdout.print(line)


sweep_manage.register(app)  # archive, unarchive, delete: a sweep with its trials
