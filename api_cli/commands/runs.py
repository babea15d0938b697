"""``trainq runs``: list runs, show one in detail, watch one to its end."""

from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api_cli.commands import run_manage
from api_cli.dataset_view import run_data
from api_cli.help_format import TrainqTyper
from api_cli.options import checked_option, parse_status, parse_tags
from api_cli.output import (
    Format,
    FormatOption,
    JsonShorthand,
    chosen_format,
    literal,
    print_csv,
    print_json,
    print_table,
    stdout,
    tell,
)
from api_cli.state import STATE
from api_cli.views import (
    EVAL_JOB_HEADER,
    PRUNED_NOTE,
    RUN_LIST_HEADER,
    RUN_TABLE_HEADER,
    RUN_TABLE_WRAP,
    evaluation_job_dict,
    evaluation_job_table_row,
    is_pruned,
    run_csv_rows,
    run_detail_dict,
    run_dict,
    run_list_row,
    run_show_rows,
    run_table_row,
    with_data_column,
)
from api_cli.waiting import TimeoutOption
from storage.validation import MAX_ID, check_name
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from storage import Repository
    from storage.dashboard_reads import RunPage
    from storage.quick_reads import QuickReader
    from storage.records import JobKind, RunRecord, RunStatus

app = TrainqTyper(
    help="List, inspect, watch and manage runs (rename, note, tag, archive, delete).",
    no_args_is_help=True,
    epilog="Examples:\n\n  trainq runs list --status running\n\n  trainq runs show 7 --format json"
    '\n\n  trainq runs watch 7\n\n  trainq runs note 7 "lr too high"\n\n'
    "  trainq runs archive 3 4",
)


@app.command(
    "list",
    epilog="Examples:\n\n  trainq runs list --status running --limit 5\n\n"
    '  trainq runs list --where "val_accuracy > 0.84 and lr < 0.1"\n\n'
    "  trainq runs list --sort -test_accuracy --offset 20 --limit 20",
)
def list_runs(
    status: Annotated[
        list[str] | None,
        typer.Option(
            help="Filter by status: queued, running, succeeded, failed or cancelled; repeatable."
        ),
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Filter by KEY=VALUE; repeatable.")] = None,
    name: Annotated[str | None, typer.Option(help="Filter by exact name.")] = None,
    sweep: Annotated[int | None, typer.Option(help="Only the trials of this sweep.")] = None,
    data: Annotated[
        str | None,
        typer.Option(help="Only runs on this dataset: NAME (any version), NAME@N or a hash."),
    ] = None,
    evals: Annotated[
        bool, typer.Option("--evals", help="List evaluation jobs instead of training runs.")
    ] = False,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_ID, help="At most this many, newest first.")
    ] = 20,
    every: Annotated[bool, typer.Option("--all", help="Every matching run (no --limit).")] = False,
    where: Annotated[
        str | None,
        typer.Option(
            help="Only runs matching a query over hyperparameters, metrics, evaluations, tags, "
            "name, status and dates (docs/queries.md).",
        ),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(help="Order by these names, -NAME descending (default: newest first)."),
    ] = None,
    offset: Annotated[
        int, typer.Option(min=0, max=MAX_ID, help="Skip this many matching runs (a next page).")
    ] = 0,
    archived: Annotated[
        bool, typer.Option("--archived", help="Archived runs only (hidden otherwise).")
    ] = False,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """List training runs, newest first; running runs show their latest loss and accuracy.

    A table that leaves matching runs out says so on stderr ("showing 20 of 57"); so does JSON
    or CSV output of a query (--where, --sort, --offset), whose stdout stays a plain list.
    """
    output_format = chosen_format(output_format, json_output)
    from storage.records import JobKind

    kind = JobKind.EVAL if evals else JobKind.TRAIN
    if evals:
        if data is not None or archived or where is not None or sort is not None or offset:
            raise InvalidConfigError(
                "--data, --archived, --where, --sort and --offset select training runs; "
                "with --evals use --status"
            )
        _list_evaluation_jobs(status, tag, name, sweep, limit, output_format)
        return
    statuses = [parse_status(text) for text in status or []] or None
    tags = parse_tags(tag or []) or None
    name = checked_option("--name", check_name, name)
    hashes = None if data is None else _dataset_hashes(data)

    def listed(
        source: QuickReader | Repository, most: int | None = None if every else limit
    ) -> list[RunRecord] | None:
        return source.list_runs(
            statuses=statuses,
            tags=tags,
            name=name,
            limit=most,
            sweep_id=sweep,
            data_sha256=hashes,
            archived=archived,
        )

    from api_cli.run_finder import find_runs

    page = find_runs(
        where=where,
        sort=sort,
        limit=None if every else limit,
        offset=offset,
        statuses=statuses,
        tags=tags,
        name=name,
        sweep_id=sweep,
        data_sha256=hashes,
        archived=archived,
    )
    runs, live = _runs_and_metrics(listed, page)
    if output_format is not Format.TABLE:
        _print_for_scripts(output_format, runs, live, page, offset)
    elif not runs and page is not None and page.total:
        stdout.print(f"no runs past --offset {offset:,}: {page.total:,} match", highlight=False)
    elif not runs:
        filters = _filters_typed(status=status, tag=tag, name=name)
        filters += [f"--where {shlex.quote(where)}"] if where is not None else []
        filters += [f"--sweep {sweep}"] if sweep is not None else []
        filters += [f"--data {data}"] if data is not None else []
        filters += ["--archived"] if archived else []
        tell(_nothing_listed(kind, filters))
    else:
        from api_cli.stranded import dead_owners, stranded_sentence

        gone = dead_owners(runs)
        rows = [_marked(run_table_row(run, live), run.id in gone) for run in runs]
        header, rows = with_data_column(RUN_TABLE_HEADER, rows, runs)
        print_table(None, header, rows, wrap=(*RUN_TABLE_WRAP, "data"))
        for run_id, pid in gone.items():
            stdout.print(f"* {stranded_sentence(run_id, pid)}", highlight=False)
        if any(is_pruned(run) for run in runs):
            tell(PRUNED_NOTE)
        if page is not None:
            _say_which_page(len(runs), offset, page.total)
        elif not every and len(runs) == limit:
            only_statuses = not (tags or name is not None or sweep is not None or hashes)
            _say_how_many_matched(len(runs), statuses if only_statuses else listed, archived)


def _print_for_scripts(
    output_format: Format,
    runs: list[RunRecord],
    live: dict[int, tuple[float | None, float | None]],
    page: RunPage | None,
    offset: int,
) -> None:
    """JSON or CSV on stdout, a plain list; a query's page says its total on stderr, so that a
    script paging with ``--offset`` learns it without parsing another shape."""
    if output_format is Format.JSON:
        print_json([run_dict(run) for run in runs])
    else:
        print_csv(RUN_LIST_HEADER, [run_list_row(run, live) for run in runs])
    if page is not None:
        _say_which_page(len(runs), offset, page.total)


def _runs_and_metrics(
    listed: Callable[[QuickReader | Repository], list[RunRecord] | None], page: RunPage | None
) -> tuple[list[RunRecord], dict[int, tuple[float | None, float | None]]]:
    """The runs to show (``page``'s, else ``listed``) and the running ones' newest metrics."""
    from api_cli.live import running_metrics

    # The quick reader (the schema at head) imports no SQLAlchemy; None: the repository reads.
    runs: list[RunRecord] | None = None if page is None else list(page.runs)
    live: dict[int, tuple[float | None, float | None]] | None = None
    reader = STATE.open_quick_reader() if page is None else None
    if reader is not None:
        with reader:
            runs = listed(reader)
            live = None if runs is None else running_metrics(reader, runs)
    if runs is None or (live is None and page is None):
        runs = listed(STATE.repository) or []
    if live is None:
        live = running_metrics(STATE.repository, runs) or {}
    return runs, live


def _say_which_page(shown: int, offset: int, total: int) -> None:
    """``showing 21-40 of 57`` on stderr when a page of a query leaves matching runs out."""
    from api_cli.output import say
    from api_cli.run_finder import page_note

    note = page_note(shown, offset, total)
    if note is not None:
        say(note)


def _say_how_many_matched(
    shown: int,
    matching: list[RunStatus] | Callable[..., list[RunRecord] | None] | None,
    archived: bool = False,
) -> None:
    """``showing 20 of 57`` on stderr when the limit left matching runs out.

    Args:
        matching: the statuses listed (None: all), counted per status; or, where other filters
            apply, the listing itself, called again without a limit.
        archived: the listing shows archived runs (else those not archived).
    """
    from api_cli.output import say

    repository = STATE.repository
    if callable(matching):
        total = len(matching(repository, None) or [])
    else:
        counts = repository.count_runs_by_status(archived=archived)
        total = sum(count for status, count in counts.items() if not matching or status in matching)
    if total > shown:
        say(f"showing {shown:,} of {total:,} (--limit N, or --all)")


def _marked(row: tuple[Any, ...], stranded: bool) -> tuple[Any, ...]:
    """A run-table row whose status says ``running*`` when its process is gone (see the note
    under the table)."""
    if not stranded:
        return row
    status = RUN_TABLE_HEADER.index("status")
    return (*row[:status], f"{row[status]}*", *row[status + 1 :])


def _dataset_hashes(ref: str) -> list[str]:
    """The versions ``--data`` names: every version of NAME, or the one of NAME@N or a hash."""
    from storage.dataset_refs import parse_dataset_ref
    from storage.errors import InvalidValueError

    try:
        parsed = parse_dataset_ref(ref)
    except InvalidValueError as exc:
        raise InvalidConfigError(f"--data: {exc}") from None
    repository = STATE.repository
    if parsed.name is not None and parsed.version is None:
        versions = repository.list_dataset_versions(parsed.name)
        if versions:
            return [version.sha256 for version in versions]
    return [repository.find_dataset_version(ref).sha256]  # or says what is stored


def _list_evaluation_jobs(
    status: list[str] | None,
    tag: list[str] | None,
    name: str | None,
    sweep: int | None,
    limit: int,
    output_format: Format,
) -> None:
    """``trainq runs list --evals``: evaluation jobs (ids of their own: ``eval N``)."""
    from storage.records import JobKind

    if tag or name is not None or sweep is not None:
        raise InvalidConfigError(
            "--tag, --name and --sweep select training runs; with --evals use --status only"
        )
    repository = STATE.repository
    jobs = repository.list_evaluation_jobs(
        statuses=[parse_status(text) for text in status or []] or None, limit=limit
    )
    rows = [evaluation_job_dict(job, repository.get_evaluation_for_job(job.id)) for job in jobs]
    if output_format is Format.JSON:
        print_json(rows)
    elif output_format is Format.CSV:
        print_csv(EVAL_JOB_HEADER, [[row[key] for key in EVAL_JOB_HEADER] for row in rows])
    elif not rows:
        filters = _filters_typed(status=status, tag=None, name=None)
        stdout.print(_nothing_listed(JobKind.EVAL, filters), highlight=False)
    else:
        cells = [evaluation_job_table_row(row) for row in rows]
        print_table(None, EVAL_JOB_HEADER[:-2], cells)
        failed = [row for row in rows if row["error"]]
        for row in failed:
            stdout.print(f"eval {row['id']}: {literal(row['error'])}", highlight=False)


def _filters_typed(
    *, status: list[str] | None, tag: list[str] | None, name: str | None
) -> list[str]:
    """The filter options as the user typed them, e.g. ``["--status queued"]``."""
    typed = [f"--status {text}" for text in status or []]
    typed += [f"--tag {text}" for text in tag or []]
    if name is not None:
        typed.append(f"--name {name}")
    return typed


def _nothing_listed(kind: JobKind, filters: list[str]) -> str:
    """An empty listing: an empty database, or filters that match nothing among N runs."""
    from storage.records import JobKind

    what = "training runs" if kind is JobKind.TRAIN else "evaluation jobs"
    stored = sum(STATE.repository.count_runs_by_status(kind=kind).values())
    if stored == 0:
        if kind is JobKind.TRAIN:
            return "no runs yet: start one with `trainq train`"
        return "no evaluation jobs yet: evaluate a run with `trainq eval RUN_ID`"
    noun = what if stored != 1 else what[:-1]
    if not filters and kind is JobKind.TRAIN:  # nothing filtered, nothing listed: all archived
        return (
            f"no runs listed: all {stored:,} are archived (`trainq runs list --archived` lists "
            "them, `trainq runs unarchive ID` brings one back)"
        )
    return (
        f"no {what[:-1]} matches {literal(' '.join(filters))} ({stored:,} {noun} stored; "
        f"`trainq runs list{' --evals' if kind is JobKind.EVAL else ''}` lists them)"
    )


@app.command("show")
def show_run(
    run_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The run's id.")],
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """Show one run: every hyperparameter (seed included), status, attempts, device, summary,
    checkpoints, evaluations, and every attempt with its worker host, device, times and
    outcome (JSON: an attempt_history list); a queued run also shows its place in its queue.

    Example: trainq runs show 7 --format json
    """
    from api_cli.class_names import run_class_names  # NumPy: only for a run's detail

    output_format = chosen_format(output_format, json_output)
    repository = STATE.repository
    run = repository.get_run(run_id)
    detail = run_detail_dict(
        run,
        repository.list_evaluations(run_id),
        repository.list_checkpoints(run_id),
        repository.list_attempts(run_id),
        class_names=run_class_names(repository, run_id),
    )
    detail["data"] = run_data(repository, run)
    if output_format is Format.JSON:
        print_json(detail)
        return
    if output_format is Format.CSV:
        print_csv(("field", "value"), run_csv_rows(detail))
        return
    rows = run_show_rows(detail)
    if not run.status.terminal:
        rows.insert(4, ("now", _now(run)))
    print_table(f"run {run_id}", ("field", "value"), rows, wrap=("value",))
    if detail["attempt_history"]:
        from api_cli.attempt_view import (
            ATTEMPT_TABLE_HEADER,
            ATTEMPT_TABLE_WRAP,
            attempt_table_rows,
        )

        rows = attempt_table_rows(detail["attempt_history"])
        print_table("attempts", ATTEMPT_TABLE_HEADER, rows, wrap=ATTEMPT_TABLE_WRAP)
    if detail["evaluations"]:
        print_table(
            "evaluations",
            ("checkpoint", "split", "loss", "accuracy"),
            [
                (e["checkpoint_step"], e["split"], e["loss"], e["accuracy"])
                for e in detail["evaluations"]
            ],
        )


def _now(run: RunRecord) -> str:
    """What an unfinished run is doing: its place in its queue, or its latest metrics."""
    from api_cli.live import latest_metrics, place_in_queue
    from storage.records import RunStatus

    if run.status is RunStatus.QUEUED:
        return place_in_queue(STATE.repository, run, _workers(run.queue)).describe()
    from api_cli.stranded import dead_owners, stranded_sentence

    pid = dead_owners([run]).get(run.id)
    if pid is not None:
        return stranded_sentence(run.id, pid)
    loss, accuracy = latest_metrics(STATE.repository, run)
    if loss is None or accuracy is None:
        return "starting: loading TensorFlow and the data, compiling the step"
    return f"step {run.steps_done:,}, loss {loss:.4f}, accuracy {accuracy:.4f} (newest steps)"


def _workers(queue: str) -> int | None:
    """Online workers consuming ``queue``; None in embedded mode or when the broker is down."""
    settings = STATE.settings
    if settings.embedded:
        return None
    from worker.cluster.census import consumers_by_queue
    from worker.errors import BrokerUnavailableError

    try:
        return len(consumers_by_queue(settings).get(queue, ()))
    except BrokerUnavailableError:
        return None


@app.command("watch")
def watch_runs(
    run_ids: Annotated[list[int], typer.Argument(help="Run ids; watched one after the other.")],
    timeout: TimeoutOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print each run's final JSON on stdout.")
    ] = False,
) -> None:
    """Attach a live progress bar to queued or running runs, and report how each ended.

    Ctrl-C stops watching; the runs go on. --timeout bounds the whole watch. The exit code is
    that of the worst outcome: 1 when a run failed, 5 when one was cancelled, 75 when --timeout
    passed first.

    Example: trainq runs watch 7 8
    """
    from api_cli.output import stderr
    from api_cli.submission import report_run
    from api_cli.waiting import follow_run

    worst = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    for run_id in run_ids:
        run = follow_run(
            STATE.repository,
            run_id,
            settings=STATE.settings,
            show_progress=not json_output or stderr.is_terminal,
            timeout_s=None if deadline is None else max(0.0, deadline - time.monotonic()),
            json_output=json_output,
        )
        try:
            report_run(run, json_output=json_output)
        except typer.Exit as outcome:
            worst = max(worst, outcome.exit_code)
    if worst:
        raise typer.Exit(worst)


run_manage.register(app)  # rename, note, tag, untag, archive, unarchive, delete
