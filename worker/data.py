"""Fashion-MNIST from its original IDX files, checked before use and cached per process.

No TensorFlow here: the CLI imports this module (``trainq predict``), and a Celery parent must be
able to import it without pulling TensorFlow in. Only the last-resort download goes through Keras,
imported lazily at that moment.

Look-up order (the first directory holding all four files wins):

1. ``TRAINQ_DATA_DIR`` (the ``data_dir`` argument): when set, the only place looked at, since a
   wrong explicit setting is an error, not a reason to train on another copy;
2. ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``);
3. the Keras cache ``~/.keras/datasets/fashion-mnist``;
4. a download through Keras, where the network allows;

else :class:`~worker.errors.DatasetNotFoundError` saying how to get the files. Each file may be
gzipped (``*-ubyte.gz``, as distributed) or not (``*-ubyte``); the plain file is preferred when
both exist. Pixels stay ``uint8`` (the training step divides by 255 on the fly), which keeps the
resident training set at 47 MB instead of 188 MB of float32.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from worker.config import Split
from worker.datasets.gunzip import gunzip_file as _gunzip
from worker.errors import DatasetCorruptError, DatasetNotFoundError

UInt8Array = npt.NDArray[np.uint8]

#: Fashion-MNIST's class names, indexed by label.
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIDE = 28
IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE
TRAIN_COUNT = 60_000
TEST_COUNT = 10_000

SYSTEM_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_KERAS_CACHE_SUBDIR = "datasets/fashion-mnist"

_IMAGES_MAGIC = 2051  # IDX: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # IDX: unsigned bytes, 1 dimension


@dataclass(frozen=True)
class _IdxFile:
    """What one of the four files must contain."""

    name: str  # without the optional ".gz"
    magic: int
    count: int

    @property
    def is_images(self) -> bool:
        return self.magic == _IMAGES_MAGIC

    @property
    def header_bytes(self) -> int:
        return 16 if self.is_images else 8

    @property
    def payload_bytes(self) -> int:
        return self.count * (IMAGE_PIXELS if self.is_images else 1)


_TRAIN_IMAGES = _IdxFile("train-images-idx3-ubyte", _IMAGES_MAGIC, TRAIN_COUNT)
_TRAIN_LABELS = _IdxFile("train-labels-idx1-ubyte", _LABELS_MAGIC, TRAIN_COUNT)
_TEST_IMAGES = _IdxFile("t10k-images-idx3-ubyte", _IMAGES_MAGIC, TEST_COUNT)
_TEST_LABELS = _IdxFile("t10k-labels-idx1-ubyte", _LABELS_MAGIC, TEST_COUNT)
_FILES = (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS)

#: The four file names, as distributed (gzipped); un-gzipped copies are accepted too.
FILE_NAMES: tuple[str, ...] = tuple(f"{spec.name}.gz" for spec in _FILES)


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class FashionMnist:
    """The whole dataset, read-only: images ``(n, 784)`` uint8 in 0..255, labels ``(n,)`` 0..9."""

    train_images: UInt8Array
    train_labels: UInt8Array
    test_images: UInt8Array
    test_labels: UInt8Array
    source_dir: Path  # where the files were read from

    def split(self, name: Split | str) -> tuple[UInt8Array, UInt8Array]:
        """Return ``(images, labels)`` of the ``train`` or ``test`` split (not ``val``).

        Raises:
            ValueError: when ``name`` is not a split.
        """
        if Split(name) is Split.TRAIN:
            return self.train_images, self.train_labels
        if Split(name) is Split.VAL:
            raise ValueError("the val split depends on the run: use worker.validation.split_arrays")
        return self.test_images, self.test_labels


def default_data_dirs() -> tuple[Path, ...]:
    """The places searched after the explicit ``data_dir``: the Debian package, the Keras cache."""
    return (SYSTEM_DATA_DIR, Path.home() / ".keras" / _KERAS_CACHE_SUBDIR)


def load_fashion_mnist(
    data_dir: Path | None = None,
    *,
    fallback_dirs: Sequence[Path] | None = None,
    download: bool = True,
) -> FashionMnist:
    """Find, check and load Fashion-MNIST; cached per process by resolved directory.

    Args:
        data_dir: ``TRAINQ_DATA_DIR``: when given, the only place looked at (a wrong explicit
            setting is an error, not a reason to look elsewhere); None to search the fallbacks.
        fallback_dirs: Searched next, in order; None means :func:`default_data_dirs`.
        download: Whether to try a Keras download when no directory holds the files.

    Returns:
        The dataset, read from the first directory that holds all four files.

    Raises:
        DatasetNotFoundError: when no searched directory holds the files and no download worked.
        DatasetCorruptError: when a file has the wrong magic number, count, size or content.
    """
    if data_dir is not None:
        # An explicit setting that is wrong is an error, never a silent fallback elsewhere.
        if _holds_all_files(data_dir):
            return _load_directory(data_dir.resolve())
        raise DatasetNotFoundError(
            f"TRAINQ_DATA_DIR={data_dir}: {_missing_description(data_dir)}. Put the four "
            f"Fashion-MNIST files {', '.join(FILE_NAMES)} (gzipped or not) there, or unset "
            f"TRAINQ_DATA_DIR to use {SYSTEM_DATA_DIR} (apt-get install dataset-fashion-mnist)."
        )
    searched = list(default_data_dirs() if fallback_dirs is None else fallback_dirs)
    for directory in searched:
        if _holds_all_files(directory):
            return _load_directory(directory.resolve())
    download_problem = "download not attempted"
    if download:
        try:
            return _load_directory(_download_with_keras().resolve())
        except DatasetCorruptError:
            raise
        except Exception as exc:  # no network, no Keras, a full disk: all end the same way
            download_problem = f"download through Keras failed: {exc}"
    raise DatasetNotFoundError(_not_found_message(searched, download_problem))


def _not_found_message(searched: Sequence[Path], download_problem: str) -> str:
    places = "\n".join(f"  - {path}: {_missing_description(path)}" for path in searched)
    names = ", ".join(FILE_NAMES)
    return (
        "Fashion-MNIST not found. Searched:\n"
        f"{places or '  (no directory)'}\n"
        f"  - {download_problem}\n"
        "To get the files, either:\n"
        "  - install the Debian package: sudo apt-get install dataset-fashion-mnist "
        f"(installs them in {SYSTEM_DATA_DIR}), or\n"
        f"  - put the four files {names} (gzipped or not) in a directory and set "
        "TRAINQ_DATA_DIR to it."
    )


def _missing_description(directory: Path) -> str:
    if not directory.is_dir():
        return "no such directory"
    missing = [spec.name for spec in _FILES if _find_file(directory, spec) is None]
    return "missing " + ", ".join(f"{name}[.gz]" for name in missing)


def _holds_all_files(directory: Path) -> bool:
    return directory.is_dir() and all(_find_file(directory, spec) for spec in _FILES)


def _find_file(directory: Path, spec: _IdxFile) -> Path | None:
    for candidate in (directory / spec.name, directory / f"{spec.name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _download_with_keras() -> Path:
    """Download the four files into the Keras cache; return the directory they are in."""
    # Keras imports TensorFlow: only ever reached when the files are nowhere on disk.
    from keras.utils import get_file

    paths = [
        Path(get_file(name, origin=KERAS_ORIGIN + name, cache_subdir=_KERAS_CACHE_SUBDIR))
        for name in FILE_NAMES
    ]
    return paths[0].parent


@functools.lru_cache(maxsize=4)
def _load_directory(directory: Path) -> FashionMnist:
    arrays = [_read_idx(_require_file(directory, spec), spec) for spec in _FILES]
    train_images, train_labels, test_images, test_labels = arrays
    return FashionMnist(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        source_dir=directory,
    )


def _require_file(directory: Path, spec: _IdxFile) -> Path:
    path = _find_file(directory, spec)
    if path is None:  # removed between the search and the read
        raise DatasetNotFoundError(f"{directory / spec.name}[.gz] disappeared while loading")
    return path


def _read_idx(path: Path, spec: _IdxFile) -> UInt8Array:
    """Read one IDX file, checking magic, count, dimensions, exact size and label range."""
    # One byte more than expected tells "too long" from "exact" without reading it all.
    limit = spec.header_bytes + spec.payload_bytes + 1
    try:
        if path.suffix == ".gz":
            content = _gunzip(path, limit)
        else:
            with path.open("rb") as stream:
                content = stream.read(limit)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetCorruptError(f"{path}: cannot be read ({exc}); {_REPLACE_HINT}") from exc
    _check_header(path, spec, content[: spec.header_bytes])
    payload = memoryview(content)[spec.header_bytes :]
    if len(payload) != spec.payload_bytes:
        expected = spec.header_bytes + spec.payload_bytes
        found = spec.header_bytes + len(payload)
        problem = "truncated" if found < expected else "too long"
        raise DatasetCorruptError(
            f"{path}: {problem}: {found}{'+' if found > expected else ''} bytes of data, "
            f"expected exactly {expected}; {_REPLACE_HINT}"
        )
    array = np.frombuffer(payload, dtype=np.uint8)  # read-only: bytes are immutable
    if spec.is_images:
        return array.reshape(spec.count, IMAGE_PIXELS)
    _check_labels(path, array)
    return array


_REPLACE_HINT = (
    "replace the file (sudo apt-get install --reinstall dataset-fashion-mnist, or a fresh copy)"
)


def _check_header(path: Path, spec: _IdxFile, header: bytes) -> None:
    if len(header) < spec.header_bytes:
        raise DatasetCorruptError(
            f"{path}: truncated: {len(header)} bytes, shorter than the "
            f"{spec.header_bytes}-byte IDX header; {_REPLACE_HINT}"
        )
    fields = [int.from_bytes(header[i : i + 4], "big") for i in range(0, spec.header_bytes, 4)]
    magic, count = fields[0], fields[1]
    kind = "images" if spec.is_images else "labels"
    if magic != spec.magic:
        raise DatasetCorruptError(
            f"{path}: bad magic number {magic}, expected {spec.magic} (IDX {kind} file); "
            f"is this the right file? {_REPLACE_HINT}"
        )
    if count != spec.count:
        raise DatasetCorruptError(
            f"{path}: wrong count: the header says {count} {kind}, expected {spec.count}; "
            f"{_REPLACE_HINT}"
        )
    if spec.is_images and fields[2:] != [IMAGE_SIDE, IMAGE_SIDE]:
        raise DatasetCorruptError(
            f"{path}: wrong image dimensions {fields[2]}x{fields[3]}, expected "
            f"{IMAGE_SIDE}x{IMAGE_SIDE}; {_REPLACE_HINT}"
        )


def _check_labels(path: Path, labels: UInt8Array) -> None:
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        first = int(bad[0])
        raise DatasetCorruptError(
            f"{path}: {bad.size} label(s) outside 0..{NUM_CLASSES - 1}, the first is "
            f"{int(labels[first])} at index {first}; {_REPLACE_HINT}"
        )
