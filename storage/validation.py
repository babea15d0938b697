"""The limits of every value trainq stores, and the checks made before anything is written.

One bound per value, here, so that SQLite (which stores a 5,000-character name in a
``VARCHAR(200)``) and PostgreSQL (which refuses it) accept exactly the same input, and so that the
CLI, the job config and the repository agree. The CLI uses these numbers for its option ranges
(bad input: exit 2 naming the option); the repository calls the ``check_*`` functions at the top
of every write (``InvalidValueError``), so nothing out of range reaches a driver.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from storage.errors import InvalidValueError

#: Row ids (``runs.id``, ``evaluations.id``) are INTEGER on PostgreSQL: signed 32-bit.
MAX_ID: Final = 2**31 - 1
#: Seeds of runs and of ``predict``'s sampling: what NumPy and TensorFlow seeding accept on
#: every platform (signed 32-bit); the ``runs.seed`` column (BIGINT) holds more.
MAX_SEED: Final = 2**31 - 1
#: A run's steps, and so every step number: checkpoints, metric rows, ``--every``.
MAX_STEPS: Final = 10_000_000
#: ``runs.name`` is VARCHAR(200).
MAX_NAME_CHARS: Final = 200
#: A run's note (``runs.note``, TEXT): a paragraph or a few, not a document.
MAX_NOTE_CHARS: Final = 10_000
#: ``runs.max_attempts`` and ``TRAINQ_MAX_ATTEMPTS``: a run that keeps killing its worker
#: should fail, not bounce for days.
MAX_ATTEMPTS_LIMIT: Final = 100
#: Tag keys end up in JSON paths of SQL queries, so they are kept to a safe alphabet.
MAX_TAG_KEY_CHARS: Final = 64
TAG_KEY_PATTERN: Final = re.compile(rf"[A-Za-z0-9_.\-]{{1,{MAX_TAG_KEY_CHARS}}}")
MAX_TAG_VALUE_CHARS: Final = 256
#: Tags per run: a label set, not a document.
MAX_TAGS: Final = 64


def check_int(value: int, what: str, low: int, high: int) -> int:
    """Return ``value`` if it is an integer in ``low..high``.

    Raises:
        InvalidValueError: naming ``what``, the value and the range.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValueError(f"{what} {value!r} must be a whole number from {low} to {high}")
    return value


def check_id(value: int, what: str = "run id") -> int:
    """Return ``value`` if it can be a row id (1..:data:`MAX_ID`)."""
    return check_int(value, what, 1, MAX_ID)


def check_step(value: int, what: str = "step") -> int:
    """Return ``value`` if it can be a step number (1..:data:`MAX_STEPS`)."""
    return check_int(value, what, 1, MAX_STEPS)


def check_seed(value: int) -> int:
    """Return ``value`` if it is a seed (0..:data:`MAX_SEED`)."""
    return check_int(value, "seed", 0, MAX_SEED)


def check_max_attempts(value: int) -> int:
    """Return ``value`` if it is an attempt budget (1..:data:`MAX_ATTEMPTS_LIMIT`)."""
    return check_int(value, "max_attempts", 1, MAX_ATTEMPTS_LIMIT)


def check_name(name: str | None) -> str | None:
    """Return ``name`` if it is ``None`` or a string of at most :data:`MAX_NAME_CHARS`.

    Raises:
        InvalidValueError: the name is too long or not a string.
    """
    if name is not None and not isinstance(name, str):
        raise InvalidValueError(f"name must be a string, got {type(name).__name__}")
    if name is not None and len(name) > MAX_NAME_CHARS:
        raise InvalidValueError(
            f"name must be at most {MAX_NAME_CHARS} characters (got {len(name)})"
        )
    return name


def check_note(note: str | None) -> str | None:
    """Return ``note`` if it is ``None`` or a string of at most :data:`MAX_NOTE_CHARS`.

    Raises:
        InvalidValueError: the note is too long or not a string.
    """
    if note is not None and not isinstance(note, str):
        raise InvalidValueError(f"note must be a string, got {type(note).__name__}")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise InvalidValueError(
            f"note must be at most {MAX_NOTE_CHARS:,} characters (got {len(note):,})"
        )
    return note


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Validate tags and return them as a plain dict.

    Raises:
        InvalidValueError: a key is not ``[A-Za-z0-9_.-]{1,64}``, a value is not a string of at
            most :data:`MAX_TAG_VALUE_CHARS`, or there are more than :data:`MAX_TAGS`.
    """
    if len(tags) > MAX_TAGS:
        raise InvalidValueError(f"{len(tags)} tags; a run holds at most {MAX_TAGS}")
    checked: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not TAG_KEY_PATTERN.fullmatch(key):
            raise InvalidValueError(
                f"tag key {str(key)[:80]!r} must be 1-{MAX_TAG_KEY_CHARS} characters of letters, "
                "digits, '_', '.', '-'"
            )
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE_CHARS:
            raise InvalidValueError(
                f"tag {key!r} must have a string value of at most {MAX_TAG_VALUE_CHARS} characters"
            )
        checked[key] = value
    return checked
