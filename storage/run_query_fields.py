"""The names a run query (``storage.run_query``) may use, what each reads, and its type.

Storage imports nothing of the worker, so the hyperparameters are listed here by hand;
``tests/storage/test_run_query_fields.py`` holds this list equal to ``worker.config.TrainConfig``'s
fields and ``worker.parameter_names``' aliases, and the splits to ``worker.choices.Split``.

Which name means what (docs/queries.md says the same to users):

* hyperparameters by their config field name, or the option name where it differs (``lr``,
  ``checkpoint_every``); also with MLflow's prefix, ``params.lr``;
* the summary of a finished run: ``accuracy`` and ``loss`` (means over its final steps, as
  ``runs list`` shows them), ``wall_s``, speeds, ``pruned``; also ``metrics.accuracy``;
* ``val_accuracy``/``val_loss``: the validation metric at the run's newest checkpoint (what sweeps
  rank trials on and the dashboard shows);
* ``eval.SPLIT.accuracy``/``eval.SPLIT.loss``: the run's newest evaluation of SPLIT (highest
  checkpoint, then newest), ``test_accuracy``/``test_loss`` for short;
* ``tags.KEY`` (or ``tag.KEY``), and the run's own columns: id, name, status, note, created,
  started, finished, archived, sweep, trial, seed, steps_done, queue, data, data_sha256.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from storage.validation import TAG_KEY_PATTERN


class ValueType(StrEnum):
    """What a name's values are, which decides the literals it may be compared with."""

    NUMBER = "number"
    TEXT = "text"
    DATE = "date"
    BOOL = "boolean"
    STATUS = "status"  # text whose values are RunStatus values


class Source(StrEnum):
    """Where a name's value is read from."""

    COLUMN = "column"  # a column of ``runs`` (key: the attribute of ``storage.models.Run``)
    CONFIG = "config"  # a key of ``runs.config`` (the hyperparameters)
    SUMMARY = "summary"  # a key of ``runs.summary`` (a finished run's summary)
    DATA = "data"  # the dataset as people name it: config's data_name, else its dataset
    VALIDATION = "validation"  # validation_metrics at the newest step (key: loss or accuracy)
    EVALUATION = "evaluation"  # the newest evaluation of ``split`` (key: loss or accuracy)
    TAG = "tag"  # a key of ``runs.tags``


@dataclass(frozen=True)
class Field:
    """One name of the query language, resolved: what it reads and its type."""

    name: str  # the canonical name, as error messages and sort keys show it
    source: Source
    key: str  # the column attribute, JSON key, metric or tag key
    type: ValueType
    split: str | None = None  # the evaluation split (Source.EVALUATION only)


#: The hyperparameters: ``worker.config.TrainConfig``'s fields and their types.
HYPERPARAMETERS: Final[dict[str, ValueType]] = {
    "learning_rate": ValueType.NUMBER,
    "batch_size": ValueType.NUMBER,
    "steps": ValueType.NUMBER,
    "init": ValueType.TEXT,
    "momentum": ValueType.NUMBER,
    "l2": ValueType.NUMBER,
    "schedule": ValueType.TEXT,
    "checkpoint_every_steps": ValueType.NUMBER,
    "chunk_steps": ValueType.NUMBER,
    "device": ValueType.TEXT,
    "dataset": ValueType.TEXT,
    "val_size": ValueType.NUMBER,
    "val_seed": ValueType.NUMBER,
    "xla": ValueType.BOOL,
    "pack": ValueType.NUMBER,
    "data_name": ValueType.TEXT,
}
#: TrainConfig's ``seed`` is the run's ``seed`` column (always resolved there); ``data_sha256``
#: too is a column of its own.
CONFIG_FIELDS_AS_COLUMNS: Final = frozenset({"seed", "data_sha256"})
#: TrainConfig fields no query names: ``pack_narrows`` is a list of (step, width) pairs, how a
#: packed trial's widths were scheduled (``pack`` says the width it started at).
CONFIG_FIELDS_NOT_QUERIED: Final = frozenset({"pack_narrows"})

#: Option names of ``trainq train`` that differ from the field (``worker.parameter_names``).
HYPERPARAMETER_ALIASES: Final = {
    "lr": "learning_rate",
    "checkpoint_every": "checkpoint_every_steps",
}

#: Keys of a finished run's summary (``storage.records.TrainSummary``) and their types.
SUMMARY_KEYS: Final[dict[str, ValueType]] = {
    "final_accuracy": ValueType.NUMBER,
    "final_loss": ValueType.NUMBER,
    "wall_s": ValueType.NUMBER,
    "wall_steps_per_s": ValueType.NUMBER,
    "training_steps_per_s": ValueType.NUMBER,
    "steps_run": ValueType.NUMBER,
    "pruned": ValueType.BOOL,
    "pruned_at_step": ValueType.NUMBER,
}
SUMMARY_ALIASES: Final = {"accuracy": "final_accuracy", "loss": "final_loss", "wall": "wall_s"}

#: Evaluation splits (``worker.choices.Split``) and the metrics an evaluation stores.
SPLITS: Final = ("test", "train", "val")
METRICS: Final = ("accuracy", "loss")

#: Columns of ``runs`` by query name: (Run attribute, type).
COLUMNS: Final[dict[str, tuple[str, ValueType]]] = {
    "id": ("id", ValueType.NUMBER),
    "name": ("name", ValueType.TEXT),
    "status": ("status", ValueType.STATUS),
    "note": ("note", ValueType.TEXT),
    "created": ("created_at", ValueType.DATE),
    "started": ("started_at", ValueType.DATE),
    "finished": ("finished_at", ValueType.DATE),
    "archived": ("archived_at", ValueType.DATE),
    "sweep": ("sweep_id", ValueType.NUMBER),
    "trial": ("trial", ValueType.NUMBER),
    "seed": ("seed", ValueType.NUMBER),
    "steps_done": ("steps_done", ValueType.NUMBER),
    "queue": ("queue", ValueType.TEXT),
    "data_sha256": ("data_sha256", ValueType.TEXT),
}
COLUMN_ALIASES: Final = {
    "created_at": "created",
    "started_at": "started",
    "finished_at": "finished",
    "archived_at": "archived",
    "sweep_id": "sweep",
    "run": "id",
}
#: Prefixes MLflow users write; each narrows the names that follow it.
PARAMS_PREFIXES: Final = ("params.", "param.", "config.")
METRICS_PREFIXES: Final = ("metrics.", "metric.")
TAG_PREFIXES: Final = ("tags.", "tag.")
ATTRIBUTE_PREFIXES: Final = ("attributes.", "attribute.")


class UnknownNameError(LookupError):
    """Raised when a name is none of the query language's; its message suggests known ones."""


def resolve_field(name: str) -> Field:
    """The field ``name`` means (names are case-sensitive, like the stored keys).

    Raises:
        UnknownNameError: no field has this name; the message lists the closest known names.
    """
    field = _lookup(name)
    if field is None:
        raise UnknownNameError(_unknown(name))
    return field


def _lookup(name: str) -> Field | None:
    for prefix in TAG_PREFIXES:
        if name.startswith(prefix):
            key = name[len(prefix) :]
            return Field(f"tags.{key}", Source.TAG, key, ValueType.TEXT) if _tag_key(key) else None
    for prefix in PARAMS_PREFIXES:
        if name.startswith(prefix):
            return _hyperparameter(name[len(prefix) :])
    for prefix in METRICS_PREFIXES:
        if name.startswith(prefix):
            return _metric(name[len(prefix) :])
    for prefix in ATTRIBUTE_PREFIXES:
        if name.startswith(prefix):
            return _column(name[len(prefix) :])
    return _column(name) or _hyperparameter(name) or _metric(name)


def _tag_key(key: str) -> bool:
    return TAG_KEY_PATTERN.fullmatch(key) is not None


def _column(name: str) -> Field | None:
    name = COLUMN_ALIASES.get(name, name)
    if name == "data":
        return Field("data", Source.DATA, "data_name", ValueType.TEXT)
    if name not in COLUMNS:
        return None
    attribute, value_type = COLUMNS[name]
    return Field(name, Source.COLUMN, attribute, value_type)


def _hyperparameter(name: str) -> Field | None:
    name = HYPERPARAMETER_ALIASES.get(name, name)
    if name in CONFIG_FIELDS_AS_COLUMNS:
        return _column(name)
    if name not in HYPERPARAMETERS:
        return None
    return Field(name, Source.CONFIG, name, HYPERPARAMETERS[name])


def _metric(name: str) -> Field | None:
    name = SUMMARY_ALIASES.get(name, name)
    if name in SUMMARY_KEYS:
        return Field(name, Source.SUMMARY, name, SUMMARY_KEYS[name])
    if name in ("val_accuracy", "val_loss"):
        return Field(name, Source.VALIDATION, name.removeprefix("val_"), ValueType.NUMBER)
    split, metric = _evaluation_parts(name)
    if split in SPLITS and metric in METRICS:
        return Field(f"eval.{split}.{metric}", Source.EVALUATION, metric, ValueType.NUMBER, split)
    return None


def _evaluation_parts(name: str) -> tuple[str, str]:
    """``("test", "accuracy")`` for ``eval.test.accuracy`` and ``test_accuracy``."""
    if name.startswith("eval."):
        split, _, metric = name.removeprefix("eval.").partition(".")
        return split, metric
    if name.startswith("test_"):
        return "test", name.removeprefix("test_")
    return "", ""


def known_names() -> list[str]:
    """Every name a query may use, aliases included (tags aside: ``tags.KEY`` is any key)."""
    names = [*COLUMNS, "data", *COLUMN_ALIASES]
    names += [*HYPERPARAMETERS, *HYPERPARAMETER_ALIASES]
    names += [*SUMMARY_KEYS, *SUMMARY_ALIASES, "val_accuracy", "val_loss"]
    names += ["test_accuracy", "test_loss"]
    names += [f"eval.{split}.{metric}" for split in SPLITS for metric in METRICS]
    return names


def _unknown(name: str) -> str:
    bare = name
    for prefix in (*PARAMS_PREFIXES, *METRICS_PREFIXES, *ATTRIBUTE_PREFIXES):
        bare = bare.removeprefix(prefix)
    if name.startswith(TAG_PREFIXES):
        return (
            f"{name!r} is not a tag: a tag key is 1-64 letters, digits, '_', '.', '-' "
            "(write tags.KEY)"
        )
    close = difflib.get_close_matches(bare, known_names(), n=3, cutoff=0.6)
    if close:
        return f"unknown name {name!r}; did you mean {_either(close)}?"
    return (
        f"unknown name {name!r}: use a hyperparameter (lr, batch_size, ...), a metric "
        "(accuracy, loss, val_accuracy, test_accuracy, eval.SPLIT.accuracy), tags.KEY, name, "
        "status or a date (created, started, finished); docs/queries.md lists them all"
    )


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
