"""How dataset versions are shown: one JSON shape, table rows, and a run's dataset in a line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from storage import Repository
    from storage.dataset_records import DatasetUsage, DatasetVersionRecord
    from storage.records import RunRecord

#: ``data list``'s table columns (fit 80 columns with a 16-character name); JSON and CSV carry
#: every field of :func:`version_dict`.
DATA_TABLE_HEADER: Final = ("dataset", "hash", "features", "classes", "train", "test", "size")
DATA_TABLE_WRAP: Final = ("dataset",)
#: ``data list --format csv``'s columns: the scalar fields of :func:`version_dict`.
DATA_CSV_HEADER: Final = (
    "label",
    "name",
    "version",
    "sha256",
    "feature_kind",
    "features",
    "classes",
    "train_examples",
    "test_examples",
    "class_names",
    "size_bytes",
    "chunk_count",
    "created_at",
)
#: How many run ids ``data show`` lists in its table (JSON lists them all).
SHOWN_RUN_IDS: Final = 12
#: What a run without a stored version trained on, wherever a run's dataset is shown.
BUILT_IN_LABEL: Final = "fashion-mnist (built-in)"


def version_dict(
    version: DatasetVersionRecord, usage: DatasetUsage | None = None
) -> dict[str, Any]:
    """The JSON form of a version (with the jobs that use it, when given)."""
    data: dict[str, Any] = {
        "label": version.label,
        "name": version.name,
        "version": version.version,
        "sha256": version.sha256,
        "short_hash": version.short_hash,
        "feature_kind": version.feature_kind,
        "features": version.features,
        "classes": version.classes,
        "class_names": list(version.class_names),
        "train_examples": version.train_examples,
        "test_examples": version.test_examples,
        "size_bytes": version.size_bytes,
        "chunk_count": version.chunk_count,
        "source": version.source,
        "created_at": version.created_at.isoformat(),
    }
    if usage is not None:
        data["run_ids"] = list(usage.run_ids)
        data["evaluation_job_ids"] = list(usage.evaluation_job_ids)
    return data


def table_row(version: DatasetVersionRecord) -> tuple[Any, ...]:
    """One line of ``data list``."""
    return (
        version.label,
        version.short_hash,
        f"{version.features:,}",
        f"{version.classes:,}",
        f"{version.train_examples:,}",
        f"{version.test_examples:,}" if version.test_examples else "-",
        human_bytes(version.size_bytes),
    )


def csv_row(version: DatasetVersionRecord) -> tuple[Any, ...]:
    """One line of ``data list --format csv``."""
    data = version_dict(version)
    return tuple(data[key] for key in DATA_CSV_HEADER)


def split_text(version: DatasetVersionRecord, examples: int) -> str:
    """``60,000 x 784 uint8``: a split's shape and kind."""
    return f"{examples:,} x {version.features:,} {version.feature_kind}"


def show_rows(version: DatasetVersionRecord, usage: DatasetUsage) -> list[tuple[str, Any]]:
    """The ``field | value`` rows of ``data show``."""
    names = ", ".join(version.class_names) if version.class_names else "none (shown as 0..C-1)"
    scaling = "divided by 255" if version.feature_kind == "uint8" else "standardised (train stats)"
    rows: list[tuple[str, Any]] = [
        ("dataset", version.label),
        ("sha256", version.sha256),
        ("train", split_text(version, version.train_examples)),
        ("test", split_text(version, version.test_examples) if version.test_examples else None),
        ("features", f"{version.features:,} ({version.feature_kind}, {scaling})"),
        ("classes", f"{version.classes:,}"),
        ("class names", names),
        ("size", f"{human_bytes(version.size_bytes)} in {_count(version.chunk_count, 'chunk')}"),
        ("source", _source_text(version.source)),
        ("added", version.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("runs", _ids_text(usage.run_ids, version.label)),
        ("eval jobs", _ids_text(usage.evaluation_job_ids, None)),
    ]
    return rows


def added_lines(version: DatasetVersionRecord, *, created: bool, seconds: float) -> list[str]:
    """What ``data add`` prints for people: the version, its hash, its shapes and size."""
    if created:
        head = f"added {version.label} ({version.short_hash}) in {seconds:.1f} s"
    else:
        head = (
            f"{version.label} ({version.short_hash}) holds exactly this data already: "
            "nothing was stored"
        )
    lines = [
        head,
        f"  train  {split_text(version, version.train_examples)}",
    ]
    if version.test_examples:
        lines.append(f"  test   {split_text(version, version.test_examples)}")
    names = f": {', '.join(version.class_names)}" if version.class_names else ""
    lines.append(f"  {_count(version.classes, 'class')}{names}")
    size = f"{human_bytes(version.size_bytes)} in {_count(version.chunk_count, 'chunk')}"
    lines.append(f"  stored {size}" if created else f"  size   {size}")
    return lines


def recorded_data(run: RunRecord) -> dict[str, Any]:
    """The dataset a training run's config records (``NAME@N`` and hash), read without the
    database: for listings."""
    sha256 = run.config.get("data_sha256")
    if not isinstance(sha256, str):
        return {"label": BUILT_IN_LABEL, "sha256": None}
    return {"label": str(run.config.get("data_name") or sha256[:12]), "sha256": sha256}


def recorded_data_text(run: RunRecord) -> str:
    """``digits@2 (3f9c2a1b2c3d)``, or ``fashion-mnist (built-in)``: a run's dataset in a cell."""
    return run_data_text(recorded_data(run) | {"stored": True})


def run_data(repository: Repository, run: RunRecord) -> dict[str, Any]:
    """The dataset a run trains on, for ``runs show``: its label and hash (still stored or not)."""
    from storage.errors import DatasetNotFoundError

    recorded = recorded_data(run)
    if recorded["sha256"] is None:
        return recorded | {"stored": None}
    try:
        label = repository.get_dataset_version(recorded["sha256"]).label
        stored = True
    except DatasetNotFoundError:
        label, stored = str(run.config.get("data_name") or "removed"), False
    return {"label": label, "sha256": recorded["sha256"], "stored": stored}


def run_data_text(data: dict[str, Any]) -> str:
    """``digits@2 (3f9c2a1b2c3d)``, or ``… (removed from this cluster)``."""
    if data["sha256"] is None:
        return str(data["label"])
    text = f"{data['label']} ({str(data['sha256'])[:12]})"
    return text if data["stored"] else f"{text}, removed from this cluster"


def human_bytes(count: int) -> str:
    """``52.5 MiB``: a size read at a glance (``data show --format json`` has the bytes)."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:,} B"


def _count(number: int, noun: str) -> str:
    plural = "es" if noun.endswith("s") else "s"
    return f"{number:,} {noun}{plural if number != 1 else ''}"


def _ids_text(ids: tuple[int, ...], label: str | None) -> str | None:
    if not ids:
        return None
    shown = ", ".join(map(str, ids[:SHOWN_RUN_IDS]))
    if len(ids) <= SHOWN_RUN_IDS:
        return shown
    more = f"{shown} and {len(ids) - SHOWN_RUN_IDS:,} more"
    return f"{more} (`trainq runs list --data {label}`)" if label else more


def _source_text(source: dict[str, Any]) -> str:
    files = source.get("files") or {}
    names = [*files.get("train", []), *files.get("test", [])]
    where = source.get("directory")
    text = f"{source.get('format', '?')}: {', '.join(names)}" if names else "-"
    return f"{text} in {where}" if where else text
