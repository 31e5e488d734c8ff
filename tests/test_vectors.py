"""The Python codec against the shared protocol vectors (the C# codec runs the same files)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from agentsdk_client import CodecError, decode, encode

VECTORS = Path(__file__).parent / "vectors"
NAMES = sorted(p.stem for p in VECTORS.glob("*.msgpack"))


def from_json(value):
    if isinstance(value, dict) and set(value) == {"ndarray"}:
        nd = value["ndarray"]
        values = [float(v) if isinstance(v, str) else v for v in nd["values"]]
        return np.asarray(values, dtype=nd["dtype"]).reshape(nd["shape"])
    if isinstance(value, dict) and set(value) == {"bin"}:
        return bytes.fromhex(value["bin"])
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def assert_same(got, want, path="value"):
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype and got.shape == want.shape, path
        assert np.array_equal(got, want, equal_nan=want.dtype.kind == "f"), path
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), path
        for k in want:
            assert_same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert isinstance(got, float) and (got == want or (math.isnan(got) and math.isnan(want))), path
    else:
        assert type(got) is type(want) and got == want, path


def test_vectors_exist():
    assert len(NAMES) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_decode_matches_json(name):
    want = from_json(json.loads((VECTORS / f"{name}.json").read_text()))
    assert_same(decode((VECTORS / f"{name}.msgpack").read_bytes()), want)


@pytest.mark.parametrize("name", NAMES)
def test_encode_is_byte_exact(name):
    value = from_json(json.loads((VECTORS / f"{name}.json").read_text()))
    assert encode(value) == (VECTORS / f"{name}.msgpack").read_bytes()


@pytest.mark.parametrize(
    "bad",
    [
        b"\xc1",  # never-used byte
        b"\x92\x01",  # truncated array
        b"\x01\x02",  # two values
        b"\xc7\x03\x02abc",  # unknown ext type
        b"\xc7\x04\x01\x93\xa1x",  # truncated ndarray payload
        b"\x81\x01\x02",  # int map key
    ],
)
def test_malformed_bytes_raise_codec_error(bad):
    with pytest.raises(CodecError):
        decode(bad)


def test_ndarray_payload_checks():
    import msgpack

    def ext(parts):
        return msgpack.packb(msgpack.ExtType(1, msgpack.packb(parts, use_bin_type=True)), use_bin_type=True)

    with pytest.raises(CodecError, match="dtype 'object'"):
        decode(ext(["object", [1], b"x"]))
    with pytest.raises(CodecError, match="need 8"):
        decode(ext(["float32", [2], b"\x00" * 7]))
    with pytest.raises(CodecError, match="shape"):
        decode(ext(["float32", [-1], b""]))
    with pytest.raises(CodecError, match="shape"):
        decode(ext(["uint8", [1] * 9, b"\x00"]))
    assert decode(ext(["uint8", [2, 0], b""])).shape == (2, 0)


def test_big_endian_arrays_are_sent_little_endian():
    value = np.array([1.0, 2.0], dtype=">f4")
    assert np.array_equal(decode(encode(value)), value)
    assert encode(value) == encode(value.astype("<f4"))
