"""The bounds every dataset version must fit, with their numbers, in one place.

They are checked on the canonical form (features as uint8 or float32, labels as int32), never on
the files' own sizes, so the same data has the same limits whatever format it came in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: 2 GiB of canonical data (features and labels of every split): a version is fetched whole by
#: every worker that trains on it and held in memory while it trains.
MAX_CANONICAL_BYTES: Final = 2 * 1024**3
#: Classes: a classifier needs two; 1,000 covers ImageNet-sized label sets.
MIN_CLASSES: Final = 2
MAX_CLASSES: Final = 1_000
#: Parameters of the weight matrix D x C: 10 million float32 are 40 MB per checkpoint.
MAX_PARAMETERS: Final = 10_000_000
#: Class names are stored and printed: as long as a run's name at most.
MAX_CLASS_NAME_CHARS: Final = 200
#: Stored versions are split into pieces of this size, each with its own SHA-256.
CHUNK_BYTES: Final = 4 * 1024**2


@dataclass(frozen=True)
class DatasetLimits:
    """What a version may hold; the defaults are the module constants (tests pass smaller ones)."""

    max_canonical_bytes: int = MAX_CANONICAL_BYTES  # features + labels of all splits, in bytes
    max_classes: int = MAX_CLASSES  # C at most
    max_parameters: int = MAX_PARAMETERS  # D x C at most


def describe_bytes(count: int) -> str:
    """``count`` in words a person reads at a glance: ``2 GiB (2,147,483,648 bytes)``."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size:
            return f"{count / size:.3g} {unit} ({count:,} bytes)"
    return f"{count:,} bytes"
