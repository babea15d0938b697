"""The runs page's columns: which can be sorted (server-side, by the query language's names, so
a sorted page is a link anyone can open) and which hyperparameters get a column (those whose
values differ among the runs shown)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api_cli.views import HOW_IT_RAN, SAID_BY_THE_DATA_ROW
from storage.errors import QuerySyntaxError
from storage.records import RunRecord
from storage.run_query import parse_run_sort

#: Config fields that never get a column: how the run ran, what the data column already says,
#: the device asked for (the device column says where it ran), the steps (the steps column has
#: them), and the seeds, drawn per run (they always differ and say nothing about the run).
_NOT_COLUMNS = frozenset(
    (*HOW_IT_RAN, *SAID_BY_THE_DATA_ROW, "device", "data_sha256", "steps", "seed", "val_seed")
)
#: Shorter headers for long hyperparameter names (the full name is the header's tooltip).
_SHORT = {"learning_rate": "lr", "checkpoint_every_steps": "ckpt every", "batch_size": "batch"}


@dataclass(frozen=True)
class Column:
    """A sortable column: its header, its name in the query language, and which way a first
    click sorts it (the direction people usually want first: best accuracy, newest)."""

    label: str
    sort: str
    descending_first: bool
    numeric: bool = True
    title: str = ""


#: The fixed columns before the hyperparameters (a plain label: not sortable), in page order.
LEADING: tuple[Column | str, ...] = (
    "",  # the compare checkbox
    Column("id", "id", True),
    Column("name", "name", False, numeric=False),
    Column("status", "status", False, numeric=False),
    Column("steps", "steps_done", True),
    Column("loss", "loss", False, title="final training loss (latest while running)"),
    Column("accuracy", "accuracy", True, title="final training accuracy"),
    Column("val acc", "val_accuracy", True, title="validation accuracy, newest checkpoint"),
    Column("test acc", "test_accuracy", True, title="newest test-split evaluation"),
)
#: The fixed columns after them.
TRAILING: tuple[Column | str, ...] = (
    Column("data", "data", False, numeric=False),
    "device",  # where it ran (the query language's `device` is the one asked for)
    Column("age", "created", True),
    "tags",
)


def differing_hyperparameters(runs: Sequence[RunRecord]) -> list[Column]:
    """A column for each hyperparameter whose stored values are not all the same among
    ``runs``, in the order the configs list them."""
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(name for name in run.config if name not in _NOT_COLUMNS))
    differing = [
        name
        for name in names
        if len({_key(run.config.get(name)) for run in runs}) > 1 and sortable(name)
    ]
    return [
        Column(_SHORT.get(name, name), name, False, numeric=_numeric(runs, name), title=name)
        for name in differing
    ]


def hyperparameter_text(value: Any) -> str:
    """A stored hyperparameter as given (``0.01``, ``1e-05``), ``-`` when the run has none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@functools.lru_cache(maxsize=256)
def sortable(name: str) -> bool:
    """True when the query language can sort by ``name`` (a config key it does not know, from
    an older version, gets a column without a sort link)."""
    try:
        parse_run_sort(name)
    except QuerySyntaxError:
        return False
    return True


def _key(value: Any) -> str:
    return f"{type(value).__name__}:{value!r}"


def _numeric(runs: Sequence[RunRecord], name: str) -> bool:
    values = [run.config.get(name) for run in runs]
    return all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None
    )
