"""One hyperparameter, two accepted names: the config field and ``trainq train``'s option.

Stored configs, JSON, ``compare`` and the Python API's records say ``learning_rate``; the CLI
and sweep files were written with ``lr``. Both are accepted everywhere (config mappings, the
Python API's keywords, sweep files); what is stored is the field name. An unknown name gets the
nearest known one in its error (``learnig_rate: unknown option; did you mean learning_rate?``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, Final

from worker.errors import InvalidConfigError

#: ``trainq train``'s option name → the TrainConfig field it sets, where the two differ.
FIELD_FOR_OPTION: Final = {"lr": "learning_rate", "checkpoint_every": "checkpoint_every_steps"}


def canonical_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with option names (``lr``, ``batch-size``) renamed to config fields.

    Raises:
        InvalidConfigError: one hyperparameter given under both its names.
    """
    fields: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for name, value in data.items():
        field = name.replace("-", "_") if isinstance(name, str) else name
        field = FIELD_FOR_OPTION.get(field, field)
        if field in fields:
            raise InvalidConfigError(
                f"{given_as[field]} and {name} name the same hyperparameter: give one"
            )
        fields[field] = value
        given_as[field] = name
    return fields


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean learning_rate?"`` for the nearest of ``known``, or ``""``."""
    close = difflib.get_close_matches(name.replace("-", "_"), list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def accepted_names(fields: Iterable[str]) -> list[str]:
    """Every name accepted for ``fields``: the fields and their option names."""
    names = list(fields)
    return names + [option for option, field in FIELD_FOR_OPTION.items() if field in names]
