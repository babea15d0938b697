"""Fixtures for the worker tests: the real Fashion-MNIST, and crafted IDX files."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from worker.data import FashionMnist, load_fashion_mnist
from worker.errors import DatasetNotFoundError

IdxWriter = Callable[..., Path]


@pytest.fixture(scope="session")
def fashion_mnist() -> FashionMnist:
    """The real dataset; skipped locally when absent, an error in CI (CI=true)."""
    try:
        return load_fashion_mnist(download=False)
    except DatasetNotFoundError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Fashion-MNIST is not installed here: {exc}")


def write_idx(
    path: Path,
    magic: int,
    dims: tuple[int, ...],
    payload: bytes,
    *,
    compress: bool = False,
) -> Path:
    """Write an IDX file: big-endian magic, big-endian dimensions, then ``payload``."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(header + payload, compresslevel=1))
    else:
        path.write_bytes(header + payload)
    return path


def write_dataset(directory: Path, *, compress: bool = False) -> dict[str, Path]:
    """A valid, synthetic dataset: blank images, labels cycling through 0..9."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for prefix, count in (("train", 60_000), ("t10k", 10_000)):
        images = np.zeros((count, 784), np.uint8)
        images[:, 0] = np.arange(count) % 251  # something to recognise the rows by
        paths[f"{prefix}-images"] = write_idx(
            directory / f"{prefix}-images-idx3-ubyte",
            2051,
            (count, 28, 28),
            images.tobytes(),
            compress=compress,
        )
        paths[f"{prefix}-labels"] = write_idx(
            directory / f"{prefix}-labels-idx1-ubyte",
            2049,
            (count,),
            (np.arange(count) % 10).astype(np.uint8).tobytes(),
            compress=compress,
        )
    return paths
