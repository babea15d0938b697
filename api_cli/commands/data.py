"""``trainq data``: add dataset versions, list and show them, remove one."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api_cli.dataset_view import (
    DATA_CSV_HEADER,
    DATA_TABLE_HEADER,
    DATA_TABLE_WRAP,
    added_lines,
    csv_row,
    show_rows,
    table_row,
    version_dict,
)
from api_cli.help_format import TrainqTyper
from api_cli.options import checked_option
from api_cli.output import (
    Format,
    FormatOption,
    JsonShorthand,
    chosen_format,
    literal,
    print_csv,
    print_fields_csv,
    print_json,
    print_table,
    stderr,
    stdout,
    tell,
)
from api_cli.state import STATE
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from api_cli.dataset_intake import IntakeProgress
    from storage.dataset_records import DatasetVersionRecord

app = TrainqTyper(
    help="Datasets: versions of your own data (IDX, NPZ or CSV) that runs train on.",
    no_args_is_help=True,
    epilog="Examples:\n\n  trainq data add digits digits.npz\n\n"
    "  trainq data add fashion-mnist /usr/share/datasets/fashion-mnist\n\n"
    "  trainq data add churn train.csv --test test.csv --label churned\n\n"
    "  trainq data add pets pets.npz --class-names cat,dog\n\n  trainq data list\n\n"
    "  trainq data show digits@1\n\n  trainq data rm digits@1",
)


class InputFormat(StrEnum):
    """The formats ``data add`` reads."""

    IDX = "idx"
    NPZ = "npz"
    CSV = "csv"


@app.command("add")
def add(
    name: Annotated[
        str, typer.Argument(help="The dataset's name; its versions are NAME@1, NAME@2, ...")
    ],
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="A directory in the MNIST layout, or the training split's files: IDX images "
            "and labels (gzipped or not), one .npz, or one .csv."
        ),
    ],
    input_format: Annotated[
        InputFormat | None,
        typer.Option("--format", help="How to read the files (default: from their names)."),
    ] = None,
    label: Annotated[
        str, typer.Option("--label", help="CSV: the header of the integer label column.")
    ] = "label",
    class_names: Annotated[
        str | None,
        typer.Option("--class-names", help="One name per class, in label order: cat,dog,bird."),
    ] = None,
    test: Annotated[
        list[Path] | None,
        typer.Option(
            "--test", help="The test split's files (IDX: give --test twice, images then labels)."
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the stored version as JSON (for scripts).")
    ] = False,
) -> None:
    """Read, check and store a version of a dataset; print its NAME@N, hash, shapes and size.

    Everything is checked before anything is stored: shapes, counts, labels
    0..C-1, finite values, the size limit. The same data added again is the
    version already stored. --format here is the input's format (the output is
    a summary, or JSON with --json).

    Example: trainq data add digits train.csv --class-names zero,one,two
    """
    from api_cli.dataset_intake import DatasetFiles, add_dataset, parse_class_names

    files = DatasetFiles(
        paths=tuple(paths),
        format=None if input_format is None else input_format.value,
        label_column=label,
        class_names=parse_class_names(class_names),
        test=tuple(test or ()),
    )
    started = time.monotonic()
    with _progress_line() as progress:
        added = add_dataset(STATE.repository, name, files, progress=progress)
    if json_output:
        print_json(version_dict(added.version) | {"created": added.created})
        return
    for line in added_lines(
        added.version, created=added.created, seconds=time.monotonic() - started
    ):
        tell(literal(line))


@app.command("list")
def list_versions(
    name: Annotated[str | None, typer.Argument(help="Only the versions of this name.")] = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """List the stored dataset versions, by name then number (Fashion-MNIST, the default, is
    there by itself as fashion-mnist@1 where its Debian package is installed).

    Example: trainq data list digits
    """
    output_format = chosen_format(output_format, json_output)
    _register_the_default_dataset()
    versions = STATE.repository.list_dataset_versions(name)
    if output_format is Format.JSON:
        print_json([version_dict(version) for version in versions])
    elif output_format is Format.CSV:
        print_csv(DATA_CSV_HEADER, [csv_row(version) for version in versions])
    elif not versions:
        what = f"named {literal(name)} " if name else ""
        stdout.print(
            f"no dataset {what}stored yet: add one with `trainq data add NAME PATH...`",
            highlight=False,
        )
    else:
        rows = [table_row(version) for version in versions]
        print_table(None, DATA_TABLE_HEADER, rows, wrap=DATA_TABLE_WRAP)


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME (the newest), NAME@N or a hash (8+ chars).")],
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """Show a version: its splits and shapes, class names, hash, size, and the runs on it.

    Example: trainq data show digits@2
    """
    output_format = chosen_format(output_format, json_output)
    repository = STATE.repository
    _register_the_default_dataset()
    version = _find(ref)
    usage = repository.dataset_usage(version.sha256)
    if output_format is Format.JSON:
        print_json(version_dict(version, usage))
    elif output_format is Format.CSV:
        print_fields_csv(version_dict(version, usage))
    else:
        print_table(version.label, ("field", "value"), show_rows(version, usage), wrap=("value",))


@app.command("rm")
def remove(
    ref: Annotated[str, typer.Argument(help="NAME@N or the version's hash (8+ chars).")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Remove it even though runs use it: they keep their rows and results but can "
            "no longer be resumed, evaluated or predicted.",
        ),
    ] = False,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """Remove a dataset version and its data; refused while runs use it (unless --force).

    Example: trainq data rm digits@1
    """
    output_format = chosen_format(output_format, json_output)
    if "@" not in ref and ref.strip() and not _looks_like_hash(ref):
        numbers = [v.label for v in STATE.repository.list_dataset_versions(ref.strip())]
        known = f" ({', '.join(numbers)})" if numbers else ""
        raise InvalidConfigError(
            f"data rm {literal(ref)}: name the version to remove, NAME@N or its hash{known}"
        )
    version = _find(ref)
    usage = STATE.repository.delete_dataset_version(version.sha256, force=force)
    result = version_dict(version, usage) | {"removed": True}
    if output_format is Format.JSON:
        print_json(result)
        return
    if output_format is Format.CSV:
        print_fields_csv(result)
        return
    stdout.print(f"removed {version.label} ({version.short_hash})", highlight=False)
    if usage.run_ids:
        tell(
            f"runs {', '.join(map(str, usage.run_ids[:12]))}"
            f"{' and more' if len(usage.run_ids) > 12 else ''} keep their rows and results, "
            "but can no longer be resumed, evaluated or predicted"
        )


def _register_the_default_dataset() -> None:
    """Fashion-MNIST as ``fashion-mnist@1``, registered from the Debian files the first time
    the versions are read (one query once it is there)."""
    from api_cli.default_dataset import ensure_default_dataset
    from api_cli.output import say
    from worker.errors import InvalidDatasetError

    try:
        ensure_default_dataset(STATE.repository)
    except InvalidDatasetError as exc:  # the listing still lists what is stored
        say(f"warning: Fashion-MNIST's files were not registered: {literal(exc)}")


def _find(ref: str) -> DatasetVersionRecord:
    from storage.dataset_refs import parse_dataset_ref

    # A malformed reference is bad input (exit 2), not a missing version.
    checked_option("dataset", lambda text: parse_dataset_ref(text).text, ref)
    return STATE.repository.find_dataset_version(ref)


def _looks_like_hash(ref: str) -> bool:
    from storage.dataset_refs import parse_dataset_ref
    from storage.errors import InvalidValueError

    try:
        return parse_dataset_ref(ref).hash_prefix is not None
    except InvalidValueError:
        return False


def _progress_line() -> AbstractContextManager[IntakeProgress]:
    """A Rich progress line on stderr while a terminal watches; nothing otherwise."""
    from contextlib import nullcontext

    if not stderr.is_terminal:
        return nullcontext(_NoProgress())
    return _RichProgress()


class _NoProgress:
    def phase(self, description: str, total_bytes: int | None = None) -> None:
        pass

    def advance(self, done_bytes: int) -> None:
        pass


class _RichProgress:
    """One transient line: a spinner while reading, then a bar in bytes for hashing, storing."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=None),
            DownloadColumn(binary_units=True),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
        )
        self._task: Any = None

    def __enter__(self) -> _RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def phase(self, description: str, total_bytes: int | None = None) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total_bytes)

    def advance(self, done_bytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, done_bytes)
