"""The weight blob format: round trips exactly, and every kind of corruption is caught."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from storage import (
    InvalidValueError,
    WeightsChecksumError,
    WeightsCorruptError,
    WeightsFormatError,
    decode_weights,
    encode_weights,
    sha256_hex,
)
from storage.weights_codec import FORMAT_VERSION, MAGIC

SHAPES = {"W": (784, 10), "b": (10,)}


def weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "W": rng.standard_normal((784, 10)).astype(np.float32),
        "b": rng.standard_normal(10).astype(np.float32),
    }


def test_weights_round_trip_bit_for_bit_with_their_names_and_shapes() -> None:
    arrays = weights()
    arrays["b"][3] = np.nan
    arrays["W"][0, 0] = np.inf
    blob = encode_weights(arrays)

    decoded = decode_weights(blob, sha256_hex(blob))

    assert {name: array.shape for name, array in decoded.items()} == SHAPES
    assert list(decoded) == ["W", "b"]
    for name, array in arrays.items():
        assert decoded[name].dtype == np.float32
        assert decoded[name].tobytes() == array.tobytes()


def test_decoded_arrays_are_writable_native_copies() -> None:
    blob = encode_weights(weights())
    decoded = decode_weights(blob)
    decoded["W"][0, 0] = 42.0
    assert decoded["W"].flags.writeable
    assert decoded["W"].dtype.isnative


def test_big_endian_and_non_contiguous_float32_arrays_are_stored_as_their_values() -> None:
    base = np.arange(12, dtype=">f4").reshape(3, 4)
    blob = encode_weights({"w": base.T})
    np.testing.assert_array_equal(decode_weights(blob)["w"], base.T)


def test_scalars_and_empty_arrays_round_trip() -> None:
    arrays = {"scale": np.array(2.5, dtype=np.float32), "none": np.zeros((0, 3), np.float32)}
    decoded = decode_weights(encode_weights(arrays))
    assert decoded["scale"].shape == ()
    assert float(decoded["scale"]) == 2.5
    assert decoded["none"].shape == (0, 3)


def test_encoding_refuses_anything_but_float32() -> None:
    with pytest.raises(InvalidValueError, match="float32"):
        encode_weights({"W": np.zeros(3, dtype=np.float64)})
    with pytest.raises(InvalidValueError, match="non-empty"):
        encode_weights({"": np.zeros(3, dtype=np.float32)})


def test_a_flipped_payload_byte_fails_the_checksum() -> None:
    blob = bytearray(encode_weights(weights()))
    checksum = sha256_hex(bytes(blob))
    blob[-5] ^= 0x01
    with pytest.raises(WeightsChecksumError, match="checksum mismatch"):
        decode_weights(bytes(blob), checksum)


def test_a_wrong_checksum_is_detected() -> None:
    blob = encode_weights(weights())
    with pytest.raises(WeightsChecksumError):
        decode_weights(blob, "0" * 64)


def test_bad_magic_is_detected() -> None:
    blob = b"PK\x03\x04" + encode_weights(weights())[4:]
    with pytest.raises(WeightsFormatError, match="magic"):
        decode_weights(blob)


def test_a_pickle_is_refused_without_being_unpickled() -> None:
    import pickle

    blob = pickle.dumps({"W": np.zeros(3, np.float32)})
    with pytest.raises(WeightsFormatError, match="not a trainq weight blob"):
        decode_weights(blob)


def test_an_unknown_format_version_is_detected() -> None:
    blob = bytearray(encode_weights(weights()))
    struct.pack_into("<H", blob, len(MAGIC), FORMAT_VERSION + 1)
    with pytest.raises(WeightsFormatError, match="version 2"):
        decode_weights(bytes(blob))


@pytest.mark.parametrize("keep", [0, 3, 11, 13, 40, -1])
def test_a_truncated_blob_is_detected(keep: int) -> None:
    blob = encode_weights(weights())
    with pytest.raises(WeightsFormatError, match="truncated"):
        decode_weights(blob[:keep])


def test_trailing_bytes_are_detected() -> None:
    blob = encode_weights(weights()) + b"\x00"
    with pytest.raises(WeightsFormatError, match="1 trailing bytes"):
        decode_weights(blob)


def test_a_shape_that_claims_more_values_than_the_payload_holds_is_detected() -> None:
    blob = bytearray(encode_weights({"b": np.zeros(10, np.float32)}))
    # header 12 bytes, name length 2, name 1, dtype 1, ndim 1, then the first dimension.
    struct.pack_into("<Q", blob, 12 + 2 + 1 + 2, 2**40)
    with pytest.raises(WeightsFormatError, match="truncated"):
        decode_weights(bytes(blob))


def test_an_unknown_dtype_code_is_detected() -> None:
    blob = bytearray(encode_weights({"b": np.zeros(10, np.float32)}))
    blob[12 + 2 + 1] = 7
    with pytest.raises(WeightsFormatError, match="dtype code 7"):
        decode_weights(bytes(blob))


def test_every_corruption_error_is_a_weights_corrupt_error() -> None:
    for error in (WeightsChecksumError, WeightsFormatError):
        assert issubclass(error, WeightsCorruptError)
