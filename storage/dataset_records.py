"""Plain frozen objects for dataset versions: what a stored version is, and who uses it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Characters of a content hash people write: ``fashion-mnist@1`` or ``3f9c2a1b2c3d``.
SHORT_HASH_CHARS = 12


@dataclass(frozen=True)
class DatasetVersionRecord:
    """One stored dataset version: its name and number for people, its SHA-256 for runs.

    The data itself is in ``dataset_chunks`` (``read_dataset_chunks``); this is its metadata.
    """

    id: int
    name: str
    version: int  # 1, 2, ... per name, in the order they were added
    sha256: str  # content hash of the canonical bytes (64 lowercase hex)
    feature_kind: str  # "uint8" (images, divided by 255) or "float32" (standardised)
    features: int  # D
    classes: int  # C
    train_examples: int
    test_examples: int  # 0: no test split
    class_names: tuple[str, ...]  # C names, or () when the version has none
    size_bytes: int  # bytes of the canonical form as stored (all chunks together)
    chunk_count: int
    source: dict[str, Any]  # what was added: format and file names
    created_at: datetime

    @property
    def label(self) -> str:
        """How people name this version: ``fashion-mnist@1``."""
        return f"{self.name}@{self.version}"

    @property
    def short_hash(self) -> str:
        """The first characters of its content hash, enough to name it: ``3f9c2a1b2c3d``."""
        return self.sha256[:SHORT_HASH_CHARS]


@dataclass(frozen=True)
class DatasetUsage:
    """The jobs that refer to a version: training runs (by ``runs.data_sha256``) and the
    evaluation jobs of those runs."""

    run_ids: tuple[int, ...] = ()
    evaluation_job_ids: tuple[int, ...] = ()

    @property
    def in_use(self) -> bool:
        """True when any run refers to the version."""
        return bool(self.run_ids or self.evaluation_job_ids)
