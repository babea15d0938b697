"""The Python API's argument checks: a wrong type or value is an ``InvalidConfigError`` naming
the argument, never Python's own ``TypeError``/``ValueError``/``AttributeError`` from deep inside.

Every public :class:`trainq.Client` method calls these first, so a caller's mistake reads like
``trainq train``'s: ``split: must be one of test, train, val, got 'bogus'``. Bounds are the
stored values' own (``storage.validation``), so the API accepts exactly what the CLI accepts.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar, cast

from storage.validation import MAX_ATTEMPTS_LIMIT, MAX_ID, MAX_NAME_CHARS, MAX_STEPS
from worker.errors import InvalidConfigError

EnumT = TypeVar("EnumT", bound=StrEnum)

#: How much of a wrong value a message quotes (a 1 MiB string is not echoed back).
_SHOWN_CHARS = 80


def shown(value: Any) -> str:
    """``value`` as a message quotes it: its repr, cut to a readable length."""
    text = repr(value) if not isinstance(value, str) else repr(value[: _SHOWN_CHARS + 1])
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def refuse(argument: str, wanted: str, value: Any) -> InvalidConfigError:
    """The error for ``argument``: what it must be, and what it got."""
    return InvalidConfigError(f"{argument}: must be {wanted}, got {shown(value)}")


def whole_number(value: Any, argument: str, low: int, high: int) -> int:
    """``value`` as an ``int`` if it is an integer (NumPy's too; never a bool or a string) in
    ``low..high``."""
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral or not low <= int(value) <= high:
        raise refuse(argument, f"a whole number from {low:,} to {high:,}", value)
    return int(value)


def job_id(value: Any, argument: str = "run_id") -> int:
    """A run's or an evaluation job's id."""
    return whole_number(value, argument, 1, MAX_ID)


def optional_step(value: Any, argument: str) -> int | None:
    """None, or a step number."""
    return None if value is None else whole_number(value, argument, 1, MAX_STEPS)


def optional_limit(value: Any, argument: str = "limit") -> int | None:
    """None (no limit), or how many records at most."""
    return None if value is None else whole_number(value, argument, 1, MAX_ID)


def optional_max_attempts(value: Any) -> int | None:
    """None (the settings' default), or an attempt budget."""
    if value is None:
        return None
    return whole_number(value, "max_attempts", 1, MAX_ATTEMPTS_LIMIT)


def seconds(value: Any, argument: str, *, positive: bool = False) -> float:
    """A finite number of seconds (above 0 with ``positive``, else at least 0)."""
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise refuse(argument, f"a finite number of seconds {'> 0' if positive else '>= 0'}", value)
    return float(value)


def optional_seconds(value: Any, argument: str) -> float | None:
    """None (no bound), or a finite number of seconds, at least 0."""
    return None if value is None else seconds(value, argument)


def flag(value: Any, argument: str) -> bool:
    """``True`` or ``False`` (not a truthy string: ``"no"`` is not False)."""
    if not isinstance(value, bool):
        raise refuse(argument, "True or False", value)
    return value


def optional_name(value: Any, argument: str = "name") -> str | None:
    """None, or a run name of at most ``MAX_NAME_CHARS`` characters."""
    if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME_CHARS):
        raise refuse(argument, f"a string of at most {MAX_NAME_CHARS} characters", value)
    return value


def optional_tags(value: Any, argument: str = "tags") -> dict[str, str] | None:
    """None, or ``{key: value}`` labels within the stored limits."""
    from storage import InvalidValueError, check_tags

    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise refuse(argument, 'a mapping of KEY to VALUE strings, e.g. {"team": "vision"}', value)
    try:
        return check_tags(value)
    except InvalidValueError as exc:
        raise InvalidConfigError(f"{argument}: {exc}") from None


def choice(enum: type[EnumT], value: Any, argument: str) -> EnumT:
    """One of ``enum``'s members, given as the member or its value."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        for member in enum:
            if member.value == value:
                return member
    names = ", ".join(member.value for member in enum)
    raise refuse(argument, f"one of {names}", value)


def choices(enum: type[EnumT], value: Any, argument: str) -> list[EnumT] | None:
    """None, or a list (or tuple) of ``enum``'s members; a lone string is refused, since it
    would be read letter by letter."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | frozenset | set):
        names = ", ".join(member.value for member in enum)
        raise refuse(argument, f"a list of values out of {names}", value)
    return [choice(enum, item, argument) for item in value]


def job_ids(value: Any, argument: str = "run_ids") -> list[int]:
    """An iterable of ids (not a lone id, not a string)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise refuse(argument, "a list of run ids", value)
    return [job_id(item, argument) for item in value]


def config_source(value: Any, argument: str = "config") -> None:
    """A :class:`TrainConfig`, a mapping of its fields, or None."""
    from worker.config import TrainConfig

    if value is not None and not isinstance(value, TrainConfig | Mapping):
        raise refuse(argument, "a TrainConfig or a mapping of its fields", value)


def config_sources(value: Any, argument: str = "configs") -> list[Any]:
    """An iterable of :class:`TrainConfig` or mappings (not a lone mapping)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise refuse(argument, "a list of TrainConfig or mappings of its fields", value)
    configs = list(value)
    for config in configs:
        config_source(config, argument)
    return configs


def sweep_source(value: Any, argument: str = "sweep") -> None:
    """A sweep file's path (``str`` or path-like) or its loaded mapping."""
    if not isinstance(value, str | os.PathLike | Mapping):
        raise refuse(argument, "a sweep file's path or its loaded mapping", value)


def optional_callable(value: Any, argument: str) -> Callable[..., Any] | None:
    """None, or something to call."""
    if value is not None and not callable(value):
        raise refuse(argument, "a function (or None)", value)
    return cast("Callable[..., Any] | None", value)
