"""The Python API's dataset methods, and Fashion-MNIST registering itself as the default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import worker.data
from api_cli.default_dataset import ensure_default_dataset
from api_cli.sdk import Client, DatasetNotFoundError
from storage import Database, Repository, Settings
from worker.data import CLASS_NAMES
from worker.datasets import content_hash, read_fashion_mnist
from worker.errors import InvalidConfigError, InvalidDatasetError


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    database = Database(f"sqlite:///{tmp_path / 'trainq.db'}")
    database.ensure_schema(auto_upgrade=True)
    return Repository(database)


@pytest.mark.skipif(not worker.data.SYSTEM_DATA_DIR.is_dir(), reason="needs dataset-fashion-mnist")
def test_fashion_mnist_registers_itself_once_with_its_class_names(repository: Repository) -> None:
    first = ensure_default_dataset(repository)
    again = ensure_default_dataset(repository)

    assert first is not None
    assert first.label == "fashion-mnist@1"
    assert first.class_names == tuple(CLASS_NAMES)
    assert first.sha256 == content_hash(read_fashion_mnist())
    assert again == first
    assert [v.label for v in repository.list_dataset_versions()] == ["fashion-mnist@1"]


def test_without_the_debian_files_nothing_is_registered(
    repository: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker.data, "SYSTEM_DATA_DIR", tmp_path / "not-installed")

    assert ensure_default_dataset(repository) is None
    assert repository.list_dataset_versions() == []


def test_the_client_adds_finds_lists_and_removes_a_version(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "table.npz"
    np.savez(path, x_train=rng.normal(size=(30, 4)).astype(np.float32), y_train=np.arange(30) % 2)
    settings = Settings.from_env({"TRAINQ_HOME": str(tmp_path / "home")})

    with Client(settings) as client:
        version = client.add_dataset("table", path, class_names=["off", "on"])
        assert version.label == "table@1"
        assert client.add_dataset("copy", [str(path)], class_names=["off", "on"]) == version
        assert client.dataset(version.short_hash) == version
        assert client.datasets() == [version]
        with pytest.raises(InvalidDatasetError, match="class_names: lists 1 name"):
            client.add_dataset("table", path, class_names=["only one"])
        with pytest.raises(InvalidConfigError, match="dataset name"):
            client.add_dataset("no/slashes", path)

        assert not client.remove_dataset("table@1").in_use
        with pytest.raises(DatasetNotFoundError):
            client.dataset("table")
