"""The data a job trains and evaluates on, ready for the model, whichever dataset it is.

One function, :func:`load_training_data`, turns a run's config into a :class:`TrainingData`: the
built-in Fashion-MNIST when the config names no dataset (exactly the arrays every run before
datasets trained on), else the recorded version fetched by its content hash
(``worker.datasets.fetch.load_version``). Past this point no job code asks which dataset it is:
the step, validation, evaluation and prediction read the features, the labels, the width (D, C),
the feature kind and the class names from here.

NumPy only: the CLI (``predict``, ``export``) uses it too, and a Celery parent may import it.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from worker.config import Split, TrainConfig, require_fits_training_split
from worker.data import CLASS_NAMES, FashionMnist, load_fashion_mnist
from worker.datasets.scaling import Scaling, ScalingKind, apply_scaling
from worker.errors import DeterministicJobError
from worker.training.state import ModelDims
from worker.training.xla_choice import DataShape

if TYPE_CHECKING:
    from storage import Repository, Settings
    from worker.datasets.canonical import DatasetVersionData

FeatureArray = npt.NDArray[np.uint8] | npt.NDArray[np.float32]
LabelArray = npt.NDArray[np.int32]

#: How the built-in Fashion-MNIST is named in messages.
FASHION_MNIST_LABEL = "fashion-mnist"


class FeatureKind(StrEnum):
    """What the step receives: pixels it divides by 255 itself, or features ready as they are."""

    UINT8 = "uint8"  # kept as bytes on the device (4x less memory); cast and / 255 per batch
    FLOAT32 = "float32"  # standardised once, when the data is loaded; used as is


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class TrainingData:
    """A dataset ready for the step: every array read-only.

    For ``UINT8`` the features are the raw pixels (the step, validation, evaluation and
    prediction divide by 255, the seed's arithmetic); for ``FLOAT32`` they are already
    standardised with the version's training statistics (``scaling``), once, here.
    """

    x_train: FeatureArray  # (n_train, D)
    y_train: LabelArray  # (n_train,) in 0..C-1
    x_test: FeatureArray | None  # (n_test, D), the same kind; None without a test split
    y_test: LabelArray | None
    class_names: tuple[str, ...]  # C names: the version's, or "0".."C-1" when it has none
    dims: ModelDims
    feature_kind: FeatureKind
    scaling: Scaling  # the version's, recorded with exports (mean/std, or 1/255)
    label: str  # for messages: "fashion-mnist", "iris@2 (3f2a8c01d2e4)"
    sha256: str | None  # the version's content hash; None for the built-in Fashion-MNIST

    @property
    def train_examples(self) -> int:
        """Examples in the training split (before any validation holdout)."""
        return int(self.x_train.shape[0])

    def split(self, name: Split | str) -> tuple[FeatureArray, LabelArray]:
        """Features and labels of the ``train`` or ``test`` split (``val``: see validation).

        Raises:
            DeterministicJobError: the test split asked of a version that has none.
            ValueError: ``val`` (it depends on the run: ``worker.validation.split_arrays``).
        """
        split = Split(name)
        if split is Split.VAL:
            raise ValueError("the val split depends on the run: use worker.validation.split_arrays")
        if split is Split.TRAIN:
            return self.x_train, self.y_train
        if self.x_test is None or self.y_test is None:
            raise DeterministicJobError(
                f"dataset {self.label} has no test split; evaluate with --split train or val, "
                "or add a version with a test split (trainq data add ... --test PATH)"
            )
        return self.x_test, self.y_test

    @property
    def data_shape(self) -> DataShape:
        """What the compiled chunk is specialised on from this data (the XLA figures' key)."""
        return DataShape(self.dims.features, self.dims.classes, self.feature_kind.value)

    def model_inputs(self, features: FeatureArray) -> npt.NDArray[np.float32]:
        """The float32 inputs the model multiplies, in the training step's arithmetic."""
        if self.feature_kind is FeatureKind.UINT8:
            return features.astype(np.float32) / np.float32(255.0)
        return np.asarray(features, dtype=np.float32)


def load_training_data(
    config: TrainConfig, settings: Settings, repository: Repository
) -> TrainingData:
    """The data ``config`` trains on, checked against its batch size and validation holdout.

    Raises:
        InvalidConfigError: ``batch_size`` or ``val_size`` do not fit the training split.
        DatasetNotFoundError, DatasetCorruptError: Fashion-MNIST's files are missing or bad.
        DatasetNotAvailableError, DatasetDamagedError: the version is gone or damaged.
    """
    if config.data_sha256 is None:
        data = from_fashion_mnist(load_fashion_mnist(settings.data_dir))
    else:
        data = _version_data(config.data_sha256, config.data_name, settings, repository)
    require_fits_training_split(config, data.train_examples, data.label)
    return data


def training_data(data: TrainingData | FashionMnist) -> TrainingData:
    """``data`` as :class:`TrainingData` (the built-in Fashion-MNIST wrapped once per process)."""
    return data if isinstance(data, TrainingData) else from_fashion_mnist(data)


@functools.lru_cache(maxsize=4)
def from_fashion_mnist(data: FashionMnist) -> TrainingData:
    """The built-in Fashion-MNIST, once per loaded copy (so device copies keyed by it are reused).

    The pixels are the loaded arrays themselves, no copy: what every run before datasets used.
    """
    return TrainingData(
        x_train=data.train_images,
        y_train=_frozen(data.train_labels.astype(np.int32)),
        x_test=data.test_images,
        y_test=_frozen(data.test_labels.astype(np.int32)),
        class_names=CLASS_NAMES,
        dims=ModelDims(),
        feature_kind=FeatureKind.UINT8,
        scaling=Scaling(ScalingKind.DIVIDE_BY_255),
        label=FASHION_MNIST_LABEL,
        sha256=None,
    )


def from_version(
    version: DatasetVersionData, *, label: str, sha256: str | None = None
) -> TrainingData:
    """A dataset version ready for the step: float features standardised here, once.

    Args:
        version: The canonical version (``worker.datasets``).
        label: How messages name it (``"iris@2 (3f2a8c01d2e4)"``).
        sha256: Its content hash, when known.
    """
    uint8 = version.x_train.dtype == np.uint8
    kind = FeatureKind.UINT8 if uint8 else FeatureKind.FLOAT32

    def ready(features: FeatureArray | None) -> FeatureArray | None:
        if features is None or uint8:
            return features  # pixels stay bytes: the step divides by 255
        return _frozen(apply_scaling(features, version.scaling))

    x_train = ready(version.x_train)
    assert x_train is not None
    return TrainingData(
        x_train=x_train,
        y_train=version.y_train,
        x_test=ready(version.x_test),
        y_test=version.y_test,
        class_names=version.display_class_names(),
        dims=ModelDims(version.num_features, version.num_classes),
        feature_kind=kind,
        scaling=version.scaling,
        label=label,
        sha256=sha256,
    )


def version_label(sha256: str, name: str | None) -> str:
    """``"iris@2 (3f2a8c01d2e4)"``, or the short hash alone when no name was recorded."""
    return f"{name} ({sha256[:12]})" if name else sha256[:12]


#: Versions made ready in this process, by content hash (the same hash is the same data).
_BY_HASH: dict[str, TrainingData] = {}
_BY_HASH_LIMIT = 2
_BY_HASH_LOCK = threading.Lock()


def _version_data(
    sha256: str, name: str | None, settings: Settings, repository: Repository
) -> TrainingData:
    _require_stored(repository, sha256, name)
    with _BY_HASH_LOCK:
        cached = _BY_HASH.get(sha256)
    if cached is not None:
        return cached
    version = _load_version(repository, settings, sha256, name)
    data = from_version(version, label=version_label(sha256, name), sha256=sha256)
    with _BY_HASH_LOCK:
        while len(_BY_HASH) >= _BY_HASH_LIMIT:
            _BY_HASH.pop(next(iter(_BY_HASH)))
        _BY_HASH[sha256] = data
    return data


def _require_stored(repository: Repository, sha256: str, name: str | None) -> None:
    """Refuse a version the cluster no longer stores (``trainq data rm --force``), though this
    process or its worker's cache still holds it: its runs can no longer be resumed, evaluated
    or predicted, whichever worker takes the job. One indexed read per job."""
    from storage.errors import DatasetNotFoundError
    from worker.datasets.fetch import removed_from_cluster

    try:
        repository.get_dataset_version(sha256)
    except DatasetNotFoundError:
        raise removed_from_cluster(sha256, name) from None


def _load_version(
    repository: Repository, settings: Settings, sha256: str, name: str | None
) -> DatasetVersionData:
    """Through the worker's cache, its one entry point (memory, disk, then the store)."""
    from worker.datasets.fetch import load_version  # the cache's modules: only when needed

    return load_version(repository, settings, sha256, label=name)


def _frozen(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.flags.writeable = False
    return array
