"""Dataset names and the ways people refer to a version, checked without touching the database.

A version is ``NAME`` (its newest), ``NAME@N``, or its content hash, whole or shortened to at
least :data:`MIN_HASH_PREFIX_CHARS` hex characters. Names are labels in the database, never
paths: a small alphabet, no ``@`` (it separates the number) and nothing that reads as a hash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from storage.errors import InvalidValueError

MAX_DATASET_NAME_CHARS: Final = 64
DATASET_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
#: A hash prefix shorter than this names too many versions to be worth a look-up.
MIN_HASH_PREFIX_CHARS: Final = 8
_HEX = re.compile(r"[0-9a-f]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: ``dataset_versions.version`` is INTEGER.
MAX_VERSION: Final = 2**31 - 1


def check_dataset_name(name: str) -> str:
    """Return ``name`` if it can name a dataset.

    Raises:
        InvalidValueError: saying which characters a name may have.
    """
    if not isinstance(name, str) or DATASET_NAME_PATTERN.fullmatch(name) is None:
        shown = repr(name[:80]) if isinstance(name, str) else repr(name)
        raise InvalidValueError(
            f"dataset name {shown}: use 1 to {MAX_DATASET_NAME_CHARS} letters, digits, '_', '.' "
            "or '-', starting with a letter or digit (e.g. fashion-mnist)"
        )
    if len(name) >= MIN_HASH_PREFIX_CHARS and _HEX.fullmatch(name.lower()):
        raise InvalidValueError(
            f"dataset name {name!r} reads as a content hash; give it a word (e.g. digits-{name})"
        )
    return name


def check_sha256(value: Any, what: str = "sha256") -> str:
    """Return ``value`` if it is a SHA-256 as trainq stores it (64 lowercase hex characters).

    Raises:
        InvalidValueError: naming ``what``.
    """
    if not isinstance(value, str) or _SHA256.fullmatch(value) is None:
        raise InvalidValueError(f"{what} {str(value)[:80]!r} is not a SHA-256 (64 hex characters)")
    return value


@dataclass(frozen=True)
class DatasetRef:
    """A reference as given, parsed: by name (and number) or by hash (prefix)."""

    text: str  # as the user typed it, for messages
    name: str | None = None
    version: int | None = None  # None: the newest version of ``name``
    hash_prefix: str | None = None  # lowercase hex, 8 to 64 characters


def parse_dataset_ref(text: str) -> DatasetRef:
    """``"digits"``, ``"digits@2"``, ``"3f9c2a1b"`` → a :class:`DatasetRef`.

    A word of 8 or more hex characters is a hash: no name may read as one (``check_dataset_name``).

    Raises:
        InvalidValueError: the text is none of these forms.
    """
    stripped = text.strip()
    name, at, number = stripped.partition("@")
    if at:
        if not number.isdigit() or not 1 <= int(number) <= MAX_VERSION:
            raise InvalidValueError(
                f"dataset {stripped[:80]!r}: the version after '@' is a number from 1 "
                "(e.g. fashion-mnist@1)"
            )
        return DatasetRef(stripped, name=check_dataset_name(name), version=int(number))
    lowered = stripped.lower()
    is_hash = len(lowered) >= MIN_HASH_PREFIX_CHARS and len(lowered) <= 64
    is_hash = is_hash and _HEX.fullmatch(lowered) is not None
    if DATASET_NAME_PATTERN.fullmatch(stripped) is None and not is_hash:
        raise InvalidValueError(
            f"dataset {stripped[:80]!r}: give NAME, NAME@N or a content hash (at least "
            f"{MIN_HASH_PREFIX_CHARS} hex characters); `trainq data list` shows them"
        )
    return DatasetRef(
        stripped,
        name=None if is_hash else stripped,
        hash_prefix=lowered if is_hash else None,
    )


def data_sha256_of(config: Any) -> str | None:
    """The dataset version a job config names (its ``data_sha256``), None for the built-in
    Fashion-MNIST.

    Raises:
        InvalidValueError: ``data_sha256`` is there but is not a SHA-256.
    """
    value = config.get("data_sha256") if isinstance(config, dict) else None
    return None if value is None else check_sha256(value, "config data_sha256")
