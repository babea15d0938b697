"""Canonical bytes: a content hash that names the data, chunks that each carry a checksum."""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import replace

import numpy as np
import pytest

from worker.datasets import (
    DatasetChunk,
    DatasetVersionData,
    RawSplit,
    build_version,
    content_hash,
    decode_chunks,
    iter_chunks,
)
from worker.datasets.codec import MAGIC
from worker.datasets.problems import Origin
from worker.errors import DatasetCorruptError, DatasetDamagedError


def features_version(
    labels: tuple[int, ...] = (0, 1, 2, 1, 0, 2), names: tuple[str, ...] = ("a", "b", "c")
) -> DatasetVersionData:
    x = np.arange(len(labels) * 5, dtype=np.float64).reshape(len(labels), 5) ** 1.5
    train_at, test_at = Origin(None, "train", "x_train"), Origin(None, "test", "x_test")
    return build_version(
        RawSplit(x, np.array(labels), train_at, train_at.at("y_train")),
        RawSplit(x[:3] + 0.25, np.array(labels[:3]), test_at, test_at.at("y_test")),
        names,
    )


def images_version() -> DatasetVersionData:
    images = (np.arange(40 * 64) % 251).astype(np.uint8).reshape(40, 8, 8)
    at = Origin(None, "train", "images")
    return build_version(RawSplit(images, np.arange(40) % 4, at, at.at("labels")))


def blob_of(chunks: list[DatasetChunk]) -> bytes:
    return b"".join(chunk.data for chunk in chunks)


@pytest.mark.parametrize("make", [features_version, images_version])
def test_a_version_survives_chunking_and_decoding_unchanged(make: object) -> None:
    version = make()  # type: ignore[operator]
    chunks = list(iter_chunks(version, chunk_bytes=100))
    decoded = decode_chunks(chunks, content_hash(version))
    for name in ("x_train", "y_train", "x_test", "y_test"):
        original, copy = getattr(version, name), getattr(decoded, name)
        assert (original is None and copy is None) or (
            original.dtype == copy.dtype and np.array_equal(original, copy)
        )
    assert decoded.class_names == version.class_names
    assert (decoded.num_features, decoded.num_classes) == (
        version.num_features,
        version.num_classes,
    )
    assert decoded.scaling.kind is version.scaling.kind
    for statistic in ("mean", "std"):
        original, copy = getattr(version.scaling, statistic), getattr(decoded.scaling, statistic)
        assert (original is None and copy is None) or np.array_equal(original, copy)
    assert not decoded.x_train.flags.writeable and not decoded.y_train.flags.writeable


def test_chunks_are_the_canonical_bytes_cut_in_order_each_with_its_sha256() -> None:
    version = images_version()
    chunks = list(iter_chunks(version, chunk_bytes=1000))
    blob = blob_of(chunks)
    assert blob.startswith(MAGIC)
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    assert (
        all(len(chunk.data) == 1000 for chunk in chunks[:-1]) and 0 < len(chunks[-1].data) <= 1000
    )
    assert all(hashlib.sha256(chunk.data).hexdigest() == chunk.sha256 for chunk in chunks)
    assert hashlib.sha256(blob).hexdigest() == content_hash(version)
    assert blob_of(list(iter_chunks(version, chunk_bytes=7))) == blob


def test_the_header_is_json_that_describes_the_arrays_in_little_endian_order() -> None:
    blob = blob_of(list(iter_chunks(features_version())))
    _, format_version, _, header_len = struct.unpack_from("<4sHHI", blob)
    header = json.loads(blob[12 : 12 + header_len])
    assert format_version == 1
    assert [entry["name"] for entry in header["arrays"]] == [
        "x_train", "y_train", "x_test", "y_test", "scaling_mean", "scaling_std"
    ]  # fmt: skip
    assert {entry["dtype"] for entry in header["arrays"]} == {"<f4", "<i4"}
    assert header["scaling"] == "standardise" and header["class_names"] == ["a", "b", "c"]


def test_the_hash_of_a_known_version_does_not_change_unless_the_format_version_does() -> None:
    # Stored versions are found by this hash: a change to the bytes without a new format
    # version would orphan every stored dataset. Bump FORMAT_VERSION and this value together.
    assert content_hash(images_version()) == (
        "74f6a1284d73caf10f2ce7e91811dd7ea9327ea1fb82af998dcf2ebdff0fadd4"
    )


def test_the_hash_changes_with_one_label_and_with_the_class_names() -> None:
    base = content_hash(features_version())
    assert content_hash(features_version(labels=(0, 1, 2, 1, 0, 1))) != base
    assert content_hash(features_version(names=("a", "b", "z"))) != base
    assert content_hash(features_version()) == base


def test_a_damaged_chunk_is_detected_by_its_checksum() -> None:
    version = images_version()
    chunks = list(iter_chunks(version, chunk_bytes=500))
    damaged = bytearray(chunks[1].data)
    damaged[10] ^= 0x01
    chunks[1] = replace(chunks[1], data=bytes(damaged))
    with pytest.raises(DatasetDamagedError, match="digits@3: chunk 1 fails its SHA-256 check"):
        decode_chunks(chunks, content_hash(version), label="digits@3")


def test_a_chunk_replaced_along_with_its_checksum_fails_the_content_hash() -> None:
    version = images_version()
    chunks = list(iter_chunks(version, chunk_bytes=500))
    forged = chunks[2].data[:-1] + b"\x00"
    chunks[2] = DatasetChunk(2, forged, hashlib.sha256(forged).hexdigest())
    with pytest.raises(DatasetDamagedError, match="do not match its content hash"):
        decode_chunks(chunks, content_hash(version))


def test_a_missing_chunk_is_named() -> None:
    version = images_version()
    chunks = list(iter_chunks(version, chunk_bytes=500))
    del chunks[1]
    with pytest.raises(DatasetDamagedError, match="chunk 1 is missing"):
        decode_chunks(chunks, content_hash(version))


def test_a_newer_format_version_asks_for_an_upgrade() -> None:
    blob = bytearray(blob_of(list(iter_chunks(images_version()))))
    blob[4:6] = (2).to_bytes(2, "little")
    data = bytes(blob)
    chunk = DatasetChunk(0, data, hashlib.sha256(data).hexdigest())
    with pytest.raises(DatasetDamagedError, match=r"format version 2.*upgrade"):
        decode_chunks([chunk], chunk.sha256)


def test_a_header_that_disagrees_with_its_arrays_is_damage() -> None:
    blob = blob_of(list(iter_chunks(images_version())))
    header_len = struct.unpack_from("<I", blob, 8)[0]
    header = json.loads(blob[12 : 12 + header_len])
    header["num_classes"] = 3  # the labels go up to 3
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    data = blob[:8] + struct.pack("<I", len(encoded)) + encoded + blob[12 + header_len :]
    chunk = DatasetChunk(0, data, hashlib.sha256(data).hexdigest())
    with pytest.raises(DatasetDamagedError, match=r"y_train holds labels 0\.\.3, not in 0\.\.C-1"):
        decode_chunks([chunk], chunk.sha256)


def test_damage_fails_a_job_without_retry_like_any_corrupt_dataset() -> None:
    assert issubclass(DatasetDamagedError, DatasetCorruptError)
