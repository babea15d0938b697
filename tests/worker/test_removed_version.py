"""A version removed with `trainq data rm --force` is refused to every later job, even by a
process (or a worker's cache) that still holds it: the cluster no longer has it, so its runs can
no longer be resumed, evaluated or predicted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storage import Database, Repository, Settings
from worker.config import TrainConfig
from worker.datasets import RawSplit, build_version, content_hash, iter_chunks
from worker.datasets.problems import Origin
from worker.errors import DatasetNotAvailableError
from worker.training_data import load_training_data


def test_a_removed_version_held_in_memory_is_refused_with_what_to_do(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.upgrade()
    repository = Repository(database)
    settings = Settings.from_env(
        {"TRAINQ_HOME": str(tmp_path / "home"), "TRAINQ_DATA_CACHE": str(tmp_path / "cache")}
    )
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 3)).astype(np.float32), np.arange(40) % 2
    version = build_version(RawSplit(x, y, Origin(None, "train", "x"), Origin(None, "train", "y")))
    chunks = [(c.index, c.data, c.sha256) for c in iter_chunks(version)]
    sha256 = content_hash(version)
    repository.add_dataset_version(
        name="gone",
        sha256=sha256,
        feature_kind="float32",
        features=3,
        classes=2,
        train_examples=40,
        test_examples=0,
        class_names=[],
        size_bytes=sum(len(data) for _, data, _ in chunks),
        source={"format": "npz", "files": ["gone.npz"]},
        chunks=chunks,
    )
    config = TrainConfig(data_sha256=sha256, data_name="gone@1", batch_size=8, seed=1)
    assert load_training_data(config, settings, repository).train_examples == 40  # now cached

    repository.delete_dataset_version(sha256, force=True)

    with pytest.raises(DatasetNotAvailableError) as refused:
        load_training_data(config, settings, repository)
    message = str(refused.value)
    assert f"dataset gone@1 ({sha256[:12]}) was removed from this cluster" in message
    assert "add the same data again" in message
