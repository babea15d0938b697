"""Datasets as versions: read and check files, a canonical form, its content hash and chunks.

Pure NumPy: no TensorFlow, SQLAlchemy or Celery, so the CLI (``trainq data add``), the storage
of versions and the worker's cache can all use it. The flow::

    source --read_dataset--> DatasetVersionData --iter_chunks--> stored chunks
                                   ^                                  |
                                   +------------decode_chunks---------+
"""

from worker.datasets.canonical import DatasetVersionData, RawDataset, RawSplit, build_version
from worker.datasets.codec import (
    DatasetChunk,
    content_hash,
    decode_chunks,
    iter_chunks,
    short_hash,
)
from worker.datasets.csv_table import read_csv
from worker.datasets.fashion_mnist import read_fashion_mnist
from worker.datasets.idx import read_idx_split
from worker.datasets.limits import (
    CHUNK_BYTES,
    MAX_CANONICAL_BYTES,
    MAX_CLASSES,
    MAX_PARAMETERS,
    MIN_CLASSES,
    DatasetLimits,
)
from worker.datasets.mnist_layout import MnistFiles, mnist_files, read_mnist_layout
from worker.datasets.npz import read_npz
from worker.datasets.scaling import Scaling, ScalingKind, apply_scaling, scaling_for
from worker.datasets.sources import DatasetFormat, DatasetSource, infer_format, read_dataset

__all__ = [
    "CHUNK_BYTES",
    "MAX_CANONICAL_BYTES",
    "MAX_CLASSES",
    "MAX_PARAMETERS",
    "MIN_CLASSES",
    "DatasetChunk",
    "DatasetFormat",
    "DatasetLimits",
    "DatasetSource",
    "DatasetVersionData",
    "MnistFiles",
    "RawDataset",
    "RawSplit",
    "Scaling",
    "ScalingKind",
    "apply_scaling",
    "build_version",
    "content_hash",
    "decode_chunks",
    "infer_format",
    "iter_chunks",
    "mnist_files",
    "read_csv",
    "read_dataset",
    "read_fashion_mnist",
    "read_idx_split",
    "read_mnist_layout",
    "read_npz",
    "scaling_for",
    "short_hash",
]
