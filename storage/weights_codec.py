"""A small self-describing binary format for weight arrays. Never pickle.

Layout (all integers little-endian)::

    magic     4s   b"TRQW"
    version   u16  1
    reserved  u16  0
    count     u32  number of arrays
    count times:
        name_len  u16, name (utf-8, name_len bytes)
        dtype     u8   1 = float32 little-endian (the only one)
        ndim      u8
        shape     ndim x u64
        payload   prod(shape) x 4 bytes

The blob must end exactly after the last payload. A SHA-256 of the whole blob is stored next to it
and checked on every read.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from storage.errors import (
    InvalidValueError,
    WeightsChecksumError,
    WeightsFormatError,
)
from storage.records import FloatArray

MAGIC = b"TRQW"
FORMAT_VERSION = 1
DTYPE_FLOAT32 = 1
MAX_ARRAYS = 4096
MAX_NDIM = 32
MAX_NAME_BYTES = 1024

_HEADER = struct.Struct("<4sHHI")
_NAME_LEN = struct.Struct("<H")
_ARRAY_META = struct.Struct("<BB")
_DIM = struct.Struct("<Q")
_F32 = np.dtype("<f4")


def sha256_hex(blob: bytes) -> str:
    """Return the SHA-256 of ``blob`` as 64 lowercase hex digits."""
    return hashlib.sha256(blob).hexdigest()


def encode_weights(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialize named float32 arrays, in the mapping's order.

    Raises:
        InvalidValueError: a name is empty or too long, a value is not a float32 array, or
            there are too many arrays or dimensions.
    """
    if len(arrays) > MAX_ARRAYS:
        raise InvalidValueError(f"{len(arrays)} arrays; the weights format holds {MAX_ARRAYS}")
    parts = [_HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(arrays))]
    for name, array in arrays.items():
        encoded_name = _encoded_name(name)
        if not isinstance(array, np.ndarray) or array.dtype.kind != "f" or array.itemsize != 4:
            kind = getattr(array, "dtype", type(array).__name__)
            raise InvalidValueError(
                f"weights {name!r} is {kind}; store float32 arrays (use .astype(np.float32))"
            )
        if array.ndim > MAX_NDIM:
            raise InvalidValueError(
                f"weights {name!r} has {array.ndim} dimensions (max {MAX_NDIM})"
            )
        parts.append(_NAME_LEN.pack(len(encoded_name)))
        parts.append(encoded_name)
        parts.append(_ARRAY_META.pack(DTYPE_FLOAT32, array.ndim))
        parts.extend(_DIM.pack(dim) for dim in array.shape)
        parts.append(np.ascontiguousarray(array, dtype=_F32).tobytes())
    return b"".join(parts)


def decode_weights(blob: bytes, expected_sha256: str | None = None) -> dict[str, FloatArray]:
    """Parse and verify a blob made by :func:`encode_weights`.

    Args:
        blob: the stored bytes.
        expected_sha256: the checksum stored with the blob; checked first when given.

    Returns:
        Writable float32 arrays in native byte order, in stored order.

    Raises:
        WeightsChecksumError: the SHA-256 differs.
        WeightsFormatError: bad magic, unknown version or dtype, a header or payload running
            past the end, or bytes left over after the last array.
    """
    if expected_sha256 is not None:
        actual = sha256_hex(blob)
        if actual != expected_sha256.lower():
            raise WeightsChecksumError(
                f"weight blob checksum mismatch: stored sha256 {expected_sha256}, blob hashes to "
                f"{actual} ({len(blob)} bytes); the blob is corrupt. Re-run or use another "
                "checkpoint (`trainq runs show RUN_ID` lists them)."
            )
    reader = _Reader(blob)
    count = _read_header(reader)
    arrays: dict[str, FloatArray] = {}
    for index in range(count):
        name, array = _read_array(reader, index)
        if name in arrays:
            raise WeightsFormatError(f"weight blob holds array {name!r} twice")
        arrays[name] = array
    if reader.offset != len(blob):
        raise WeightsFormatError(
            f"weight blob has {len(blob) - reader.offset} trailing bytes after its last array "
            f"(ends at {reader.offset}, blob is {len(blob)} bytes)"
        )
    return arrays


class _Reader:
    """A bounds-checked cursor over the blob."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.offset = 0

    def take(self, size: int, what: str) -> bytes:
        end = self.offset + size
        if end > len(self.blob):
            raise WeightsFormatError(
                f"weight blob truncated: {what} needs {size} bytes at offset {self.offset}, "
                f"but the blob is {len(self.blob)} bytes"
            )
        chunk = self.blob[self.offset : end]
        self.offset = end
        return chunk

    def unpack(self, layout: struct.Struct, what: str) -> tuple[Any, ...]:
        return layout.unpack(self.take(layout.size, what))


def _encoded_name(name: str) -> bytes:
    if not isinstance(name, str) or not name:
        raise InvalidValueError(f"weights need a non-empty string name, got {name!r}")
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        raise InvalidValueError(f"weights name {name[:40]!r}... is over {MAX_NAME_BYTES} bytes")
    return encoded


def _read_header(reader: _Reader) -> int:
    magic, version, _reserved, count = reader.unpack(_HEADER, "the header")
    if magic != MAGIC:
        raise WeightsFormatError(f"not a trainq weight blob: magic {magic!r}, expected {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise WeightsFormatError(
            f"weight blob format version {version}; this trainq reads version {FORMAT_VERSION}. "
            "Upgrade trainq to read it."
        )
    if count > MAX_ARRAYS:
        raise WeightsFormatError(f"weight blob claims {count} arrays (max {MAX_ARRAYS})")
    return int(count)


def _read_array(reader: _Reader, index: int) -> tuple[str, FloatArray]:
    (name_len,) = reader.unpack(_NAME_LEN, f"array #{index}'s name length")
    try:
        name = reader.take(name_len, f"array #{index}'s name").decode("utf-8")
    except UnicodeDecodeError:
        raise WeightsFormatError(f"weight blob: array #{index}'s name is not UTF-8") from None
    dtype_code, ndim = reader.unpack(_ARRAY_META, f"array {name!r}'s dtype and ndim")
    if dtype_code != DTYPE_FLOAT32:
        raise WeightsFormatError(f"weight blob: array {name!r} has unknown dtype code {dtype_code}")
    if ndim > MAX_NDIM:
        raise WeightsFormatError(f"weight blob: array {name!r} claims {ndim} dimensions")
    shape = tuple(int(reader.unpack(_DIM, f"array {name!r}'s shape")[0]) for _ in range(ndim))
    n_values = math.prod(shape)
    remaining = len(reader.blob) - reader.offset
    if n_values * _F32.itemsize > remaining:
        raise WeightsFormatError(
            f"weight blob truncated: array {name!r} of shape {shape} needs "
            f"{n_values * _F32.itemsize} payload bytes, only {remaining} left"
        )
    payload = reader.take(n_values * _F32.itemsize, f"array {name!r}'s payload")
    array = np.frombuffer(payload, dtype=_F32).reshape(shape).astype(np.float32)
    return name, array
