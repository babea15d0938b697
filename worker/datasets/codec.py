"""The canonical bytes of a version, its content hash, and chunks for storage. Never pickle.

Layout (integers little-endian)::

    magic       4s   b"TRQD"
    version     u16  1
    reserved    u16  0
    header_len  u32
    header      header_len bytes of ASCII JSON, keys sorted, no spaces: class_names, num_classes,
                num_features, scaling, and arrays: [{name, dtype, shape}] in payload order
    payload     each array's values, little-endian, C order, back to back: x_train, y_train,
                [x_test, y_test], [scaling_mean, scaling_std]

The content hash is the SHA-256 of these bytes, so it names the data, not the file they came
from: the same images gzipped or not, or the same CSV rows, are one version. For storage the bytes
are cut into chunks of :data:`~worker.datasets.limits.CHUNK_BYTES`, each with its own SHA-256;
decoding checks every chunk and the whole before it trusts a byte.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from worker.datasets.canonical import DatasetVersionData
from worker.datasets.codec_header import parse_header, version_from_arrays
from worker.datasets.limits import CHUNK_BYTES
from worker.errors import DatasetDamagedError

MAGIC = b"TRQD"
FORMAT_VERSION = 1
SHORT_HASH_CHARS = 12
_PREFIX = struct.Struct("<4sHHI")


@dataclass(frozen=True)
class DatasetChunk:
    """One piece of a version's canonical bytes, as stored: its position, bytes and SHA-256."""

    index: int  # 0, 1, 2… in order
    data: bytes
    sha256: str  # hex digest of data


def short_hash(content_hash: str) -> str:
    """The first characters of a content hash, as people write it (``NAME`` or ``3f9c2a…``)."""
    return content_hash[:SHORT_HASH_CHARS]


def content_hash(version: DatasetVersionData) -> str:
    """The SHA-256 (hex) of ``version``'s canonical bytes, computed without copying them."""
    digest = hashlib.sha256()
    for part in _parts(version):
        digest.update(part)
    return digest.hexdigest()


def iter_chunks(
    version: DatasetVersionData, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[DatasetChunk]:
    """``version``'s canonical bytes in chunks of ``chunk_bytes`` (the last may be shorter)."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be positive, not {chunk_bytes}")
    buffer = bytearray()
    index = 0
    for part in _parts(version):
        offset = 0
        while offset < len(part):
            take = min(chunk_bytes - len(buffer), len(part) - offset)
            buffer += part[offset : offset + take]
            offset += take
            if len(buffer) == chunk_bytes:
                yield _chunk(index, bytes(buffer))
                index, buffer = index + 1, bytearray()
    if buffer:
        yield _chunk(index, bytes(buffer))


def decode_chunks(
    chunks: Iterable[DatasetChunk], expected_hash: str, *, label: str | None = None
) -> DatasetVersionData:
    """The version whose canonical bytes ``chunks`` hold, after checking every checksum.

    Args:
        chunks: The stored chunks, in index order.
        expected_hash: The content hash the version is stored under.
        label: How messages name the version (``NAME@N``); None means its short hash.

    Raises:
        DatasetDamagedError: a chunk is missing, out of order or fails its SHA-256, the whole
            fails the content hash, or the bytes are not a version this trainq can read.
    """
    name = label or short_hash(expected_hash)
    blob = bytearray()
    digest = hashlib.sha256()
    for position, chunk in enumerate(chunks):
        if chunk.index != position:
            raise _damaged(name, f"chunk {position} is missing (found chunk {chunk.index})")
        if hashlib.sha256(chunk.data).hexdigest() != chunk.sha256:
            raise _damaged(name, f"chunk {position} fails its SHA-256 check")
        digest.update(chunk.data)
        blob += chunk.data
    if digest.hexdigest() != expected_hash:
        raise _damaged(name, "its bytes do not match its content hash (a chunk may be missing)")
    try:
        return _decode(blob)
    except (ValueError, TypeError) as exc:  # TypeError: NumPy's word for an unknown dtype
        raise _damaged(name, f"its bytes are not a readable dataset version ({exc})") from None


def decode_verified(
    blob: bytes | bytearray, expected_hash: str, *, label: str | None = None
) -> DatasetVersionData:
    """The version whose canonical bytes are ``blob`` (a cached copy), after one hash check.

    Raises:
        DatasetDamagedError: ``blob`` fails the content hash or is not a readable version.
    """
    name = label or short_hash(expected_hash)
    if hashlib.sha256(blob).hexdigest() != expected_hash:
        raise _damaged(name, "its bytes do not match its content hash")
    try:
        return _decode(blob)
    except (ValueError, TypeError) as exc:
        raise _damaged(name, f"its bytes are not a readable dataset version ({exc})") from None


def _parts(version: DatasetVersionData) -> Iterator[memoryview]:
    arrays = _arrays(version)
    header = {
        "arrays": [
            {"name": name, "dtype": array.dtype.str, "shape": list(array.shape)}
            for name, array in arrays
        ],
        "class_names": list(version.class_names),
        "num_classes": version.num_classes,
        "num_features": version.num_features,
        "scaling": version.scaling.kind.value,
    }
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    header_bytes = encoded.encode("ascii")
    yield memoryview(_PREFIX.pack(MAGIC, FORMAT_VERSION, 0, len(header_bytes)) + header_bytes)
    for _, array in arrays:
        yield memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)


def _arrays(version: DatasetVersionData) -> list[tuple[str, npt.NDArray[Any]]]:
    """The payload's arrays in order, each little-endian (a no-op on little-endian machines)."""
    arrays: list[tuple[str, npt.NDArray[Any]]] = [
        ("x_train", version.x_train),
        ("y_train", version.y_train),
    ]
    if version.x_test is not None and version.y_test is not None:
        arrays += [("x_test", version.x_test), ("y_test", version.y_test)]
    if version.scaling.mean is not None and version.scaling.std is not None:
        arrays += [("scaling_mean", version.scaling.mean), ("scaling_std", version.scaling.std)]
    return [
        (name, array.astype(array.dtype.newbyteorder("<"), copy=False)) for name, array in arrays
    ]


def _decode(blob: bytes | bytearray) -> DatasetVersionData:
    if len(blob) < _PREFIX.size:
        raise ValueError(f"{len(blob)} bytes, shorter than the {_PREFIX.size}-byte prefix")
    magic, format_version, _, header_len = _PREFIX.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError(f"magic {magic!r}, expected {MAGIC!r}")
    if format_version != FORMAT_VERSION:
        raise ValueError(
            f"format version {format_version}; this trainq reads version {FORMAT_VERSION} "
            "(a newer trainq wrote it: upgrade)"
        )
    header_end = _PREFIX.size + header_len
    header = parse_header(bytes(blob[_PREFIX.size : header_end]))
    arrays: dict[str, npt.NDArray[Any]] = {}
    offset = header_end
    for spec in header.arrays:
        count = int(np.prod(spec.shape, dtype=np.int64))
        if offset + count * spec.dtype.itemsize > len(blob):
            raise ValueError(f"the payload ends inside {spec.name}")
        array = np.frombuffer(blob, dtype=spec.dtype, count=count, offset=offset)
        array = array.reshape(spec.shape).astype(spec.dtype.newbyteorder("="), copy=False)
        array.flags.writeable = False
        arrays[spec.name] = array
        offset += count * spec.dtype.itemsize
    if offset != len(blob):
        raise ValueError(f"{len(blob) - offset} bytes follow the last array")
    return version_from_arrays(header, arrays)


def _chunk(index: int, data: bytes) -> DatasetChunk:
    return DatasetChunk(index, data, hashlib.sha256(data).hexdigest())


def _damaged(name: str, problem: str) -> DatasetDamagedError:
    return DatasetDamagedError(
        f"dataset version {name}: {problem}: its stored or cached copy is damaged; fetch it "
        "again (a worker drops its cached copy and refetches), or add the dataset again from "
        "its files"
    )
