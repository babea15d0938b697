"""Which stored dataset version a run trains on, decided once, at submission.

A run names its data the way people do (``digits``, ``digits@2`` or a hash); the submission turns
that into the version's content hash and ``NAME@N``, recorded in the run's config, so that a
version added later never changes what an earlier run trained on (its resume, eval, predict and
export read the hash). A run without data is the built-in Fashion-MNIST exactly as before: no
look-up, no registration, no hashing on the seed's path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from worker.errors import InvalidConfigError

if TYPE_CHECKING:
    from storage import Repository
    from storage.dataset_records import DatasetVersionRecord
    from worker.config import TrainConfig
    from worker.training.xla_choice import DataShape


def find_version(
    repository: Repository, ref: Any, what: str = "data", *, register_default: bool = True
) -> DatasetVersionRecord:
    """The version ``ref`` names (``NAME``: its newest, ``NAME@N``, or a hash of 8+ hex).

    ``fashion-mnist`` registers itself from the Debian files the first time it is named
    (``api_cli.default_dataset``; unless ``register_default`` is off), so the default dataset
    can be named like any other.

    Raises:
        InvalidConfigError: ``ref`` is not a reference (the message starts with ``what``).
        DatasetNotFoundError: nothing stored matches; the message says what is stored.
    """
    from api_cli.default_dataset import DEFAULT_DATASET_NAME, ensure_default_dataset
    from storage.dataset_refs import parse_dataset_ref
    from storage.errors import InvalidValueError

    if not isinstance(ref, str):
        raise InvalidConfigError(
            f"{what}: give a dataset as NAME, NAME@N or a hash, got {type(ref).__name__}"
        )
    try:
        parsed = parse_dataset_ref(ref)
    except InvalidValueError as exc:
        raise InvalidConfigError(f"{what}: {exc}") from None
    named_default = register_default and parsed.name == DEFAULT_DATASET_NAME
    if named_default and not repository.list_dataset_versions(DEFAULT_DATASET_NAME):
        ensure_default_dataset(repository)
    return repository.find_dataset_version(parsed.text)


def data_fields(version: DatasetVersionRecord) -> dict[str, Any]:
    """The config fields that record ``version``: its hash, and its ``NAME@N`` for people."""
    return {"data_sha256": version.sha256, "data_name": version.label}


def on_version(config: TrainConfig, version: DatasetVersionRecord) -> TrainConfig:
    """``config`` (which names ``version`` by hash) with its label recorded, its
    ``batch_size`` and ``val_size`` checked against the version's training examples.

    Raises:
        InvalidConfigError: ``batch_size`` or ``val_size`` does not fit (naming the field and
            the count).
    """
    from worker.config import require_fits_training_split

    if config.data_name != version.label:
        config = config.model_copy(update={"data_name": version.label})
    require_fits_training_split(config, version.train_examples, version.label)
    return config


def stored_version(repository: Repository, config: TrainConfig) -> DatasetVersionRecord | None:
    """The stored version ``config`` names by hash (None: the built-in Fashion-MNIST).

    Raises:
        DatasetNotFoundError: the hash names no stored version (never added, or removed).
    """
    if config.data_sha256 is None:
        return None
    return repository.get_dataset_version(config.data_sha256)


def data_shape(version: DatasetVersionRecord | None) -> DataShape:
    """What the compiled chunk is specialised on beyond the config: the version's D, C, kind."""
    from worker.training.xla_choice import FASHION_MNIST_SHAPE, DataShape

    if version is None:
        return FASHION_MNIST_SHAPE
    return DataShape(version.features, version.classes, version.feature_kind)
