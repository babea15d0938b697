"""IDX files (the MNIST, Fashion-MNIST and KMNIST layout), gzipped or not.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian u32 per dimension, then the values, big-endian, C order. Everything the header
claims is checked against the file before its values are used, and the size limit is checked
from the header, before the payload is decompressed. Gzip is recognised by its own magic bytes,
not by the file's name.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from worker.datasets.canonical import RawSplit
from worker.datasets.checks import canonical_bytes, feature_itemsize, require_within_size
from worker.datasets.files import checked_file_size
from worker.datasets.gunzip import gunzip_bytes
from worker.datasets.limits import DatasetLimits, describe_bytes
from worker.datasets.problems import Origin, invalid

#: IDX type codes and the (big-endian) dtypes they stand for.
IDX_TYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
MAX_DIMENSIONS = 8
_GZIP_MAGIC = b"\x1f\x8b"
_LONGEST_HEADER = 4 + 4 * MAX_DIMENSIONS
_GET_AGAIN = "get a fresh copy of the file (the copy or download may have been cut short)"


@dataclass(frozen=True)
class IdxHeader:
    """What an IDX header claims."""

    dtype: np.dtype[Any]
    dims: tuple[int, ...]

    @property
    def header_bytes(self) -> int:
        return 4 + 4 * len(self.dims)

    @property
    def payload_bytes(self) -> int:
        return math.prod(self.dims) * self.dtype.itemsize


def read_idx_split(
    images: Path, labels: Path, split: str, limits: DatasetLimits | None = None
) -> RawSplit:
    """Read one split from its images (or features) file and its labels file.

    Raises:
        InvalidDatasetError: naming the file and split, for any problem with either file.
    """
    limits = limits or DatasetLimits()
    images_at = Origin(images, split, "images")
    labels_at = Origin(labels, split, "labels")
    image_values = _read(images_at, limits, expect_labels=False)
    label_values = _read(labels_at, limits, expect_labels=True)
    return RawSplit(image_values, label_values, images_at, labels_at)


def _read(origin: Origin, limits: DatasetLimits, *, expect_labels: bool) -> npt.NDArray[Any]:
    assert origin.path is not None
    file_bytes = checked_file_size(origin.path)
    # Incompressible data grow a little under gzip: allow 1 MiB beyond the limit.
    if file_bytes > limits.max_canonical_bytes + 2**20:
        require_within_size(origin, file_bytes, limits)
    raw = origin.path.read_bytes()
    compressed = raw.startswith(_GZIP_MAGIC)
    head = _gunzip(raw, _LONGEST_HEADER, origin) if compressed else raw[:_LONGEST_HEADER]
    header = _parse_header(head, origin, expect_labels=expect_labels)
    rows = header.dims[0]
    features = math.prod(header.dims[1:])
    itemsize = 0 if expect_labels else feature_itemsize(header.dtype)
    require_within_size(origin, canonical_bytes(rows, features, itemsize), limits)
    expected = header.header_bytes + header.payload_bytes
    # One byte more than expected tells "too long" from "exact" without decompressing it all.
    content = _gunzip(raw, expected + 1, origin) if compressed else raw
    if len(content) != expected:
        found = "fewer" if len(content) < expected else "more"
        raise invalid(
            origin,
            f"the header promises {_describe(header)} ({describe_bytes(expected)} in all) but "
            f"the {'decompressed ' if compressed else ''}file holds {found} "
            f"({describe_bytes(len(content))}{'+' if found == 'more' else ''}): it is "
            "truncated, or its header is wrong",
            _GET_AGAIN,
        )
    values = np.frombuffer(content, dtype=header.dtype, offset=header.header_bytes)
    return values.reshape(header.dims)


def _gunzip(raw: bytes, limit: int, origin: Origin) -> bytes:
    try:
        return gunzip_bytes(raw, limit)
    except EOFError:
        raise invalid(
            origin, "the gzip data end early: the file is truncated", _GET_AGAIN
        ) from None
    except zlib.error as exc:
        raise invalid(origin, f"the gzip data are damaged ({exc})", _GET_AGAIN) from None


def _parse_header(head: bytes, origin: Origin, *, expect_labels: bool) -> IdxHeader:
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise invalid(
            origin,
            f"is not an IDX file: it starts with bytes {head[:4].hex(' ')}, an IDX file with "
            "00 00 (then its type code and number of dimensions)",
            "check the file and the format (is it a CSV or NPZ file?)",
        )
    type_code, ndim = head[2], head[3]
    if type_code not in IDX_TYPES:
        raise invalid(
            origin,
            f"its magic number names type code 0x{type_code:02x}, which IDX does not define "
            f"(it defines {', '.join(f'0x{code:02x}' for code in IDX_TYPES)})",
            _GET_AGAIN,
        )
    role, wanted = ("labels", "1") if expect_labels else ("images", "2 or more")
    if (ndim == 1) != expect_labels or not 1 <= ndim <= MAX_DIMENSIONS:
        swapped = " (are the images and labels files swapped?)" if 1 <= ndim <= 3 else ""
        raise invalid(
            origin,
            f"its magic number says {ndim} dimension(s), but an IDX {role} file has "
            f"{wanted}{swapped}",
            "give the images file first and the labels file second",
        )
    if len(head) < 4 + 4 * ndim:
        raise invalid(origin, f"ends inside its {4 + 4 * ndim}-byte header", _GET_AGAIN)
    dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if 0 in dims:
        raise invalid(origin, f"its header gives dimensions {dims}, one is zero", _GET_AGAIN)
    return IdxHeader(np.dtype(IDX_TYPES[type_code]), dims)


def _describe(header: IdxHeader) -> str:
    count, *shape = header.dims
    if not shape:
        return f"{count:,} labels"
    return f"{count:,} images of {'x'.join(str(side) for side in shape)}"
