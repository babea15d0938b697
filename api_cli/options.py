"""Parsing of option values shared by several commands (tags, statuses)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from storage.errors import InvalidValueError
from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage.records import RunStatus


T = TypeVar("T")


def checked_option(option: str, check: Callable[[T], T], value: T) -> T:
    """Apply one of ``storage.validation``'s checks to an option's value, before anything is stored.

    Raises:
        InvalidConfigError: (exit 2) naming ``option`` and the limit it broke.
    """
    try:
        return check(value)
    except InvalidValueError as exc:
        raise InvalidConfigError(f"{option}: {exc}") from None


def parse_tags(pairs: list[str]) -> dict[str, str]:
    """``["team=vision", "sweep=3"]`` → ``{"team": "vision", "sweep": "3"}``."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidConfigError(f"--tag {pair!r}: expected KEY=VALUE, e.g. --tag team=vision")
        tags[key.strip()] = value.strip()
    from storage.validation import check_tags

    try:
        return check_tags(tags)  # the storage layer's own rule, checked before anything is stored
    except InvalidValueError as exc:
        raise InvalidConfigError(f"--tag: {exc}") from None


def parse_status(text: str) -> RunStatus:
    """``"Running"`` → ``RunStatus.RUNNING``; a clear error naming the choices otherwise."""
    from storage.records import RunStatus
    from storage.redaction import excerpt

    try:
        return RunStatus(text.lower())
    except ValueError:
        names = ", ".join(status.value for status in RunStatus)
        raise InvalidConfigError(f"--status {excerpt(text)}: use one of {names}") from None
