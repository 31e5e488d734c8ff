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


# -- action distributions (tests/vectors/distributions.json) ----------------------------------

DISTRIBUTION_CASES = json.loads((VECTORS / "distributions.json").read_text())


def _logp_value(value):
    return float(value) if isinstance(value, str) else value  # "-inf": an impossible action


def test_distribution_vectors_cover_every_distribution():
    from agentsdk_client.protocol.distributions import DISTRIBUTIONS

    assert {case["distribution"] for case in DISTRIBUTION_CASES} == set(DISTRIBUTIONS)


@pytest.mark.parametrize("case", DISTRIBUTION_CASES, ids=[c["name"] for c in DISTRIBUTION_CASES])
def test_distribution_vectors(case):
    from agentsdk_client.protocol.distributions import distribution_for
    from agentsdk_client.protocol.spaces import Box, Discrete
    from agentsdk_client.protocol.spec import space_from_json

    space = space_from_json(case["action_space"])
    dist = distribution_for(space, case["distribution"], case["epsilon"])
    assert dist.name == case["distribution"]
    inputs = np.asarray([case["dist_inputs"]], np.float32)
    assert inputs.shape[1] == len(case["dist_inputs"])

    got = np.asarray(dist.sample(inputs, np.random.default_rng(0), True)).ravel()
    want = case["deterministic_action"]
    if isinstance(space, Box):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    else:
        assert got.dtype == np.int64 and got.tolist() == want

    for scored in case["scored"]:
        action = scored["policy_action"]
        if isinstance(space, Box):
            policy = np.asarray([action], np.float32)
        elif isinstance(space, Discrete):
            policy = np.asarray(action, np.int64)
        else:
            policy = np.asarray([action], np.int64)
        with np.errstate(divide="ignore"):  # EpsilonGreedy with epsilon 0 scores log(0) = -inf
            logp = float(dist.logp(inputs, policy)[0])
        want_logp = _logp_value(scored["logp"])
        if math.isinf(want_logp):
            assert logp == want_logp, (action, logp)
        else:
            assert logp == pytest.approx(want_logp, abs=1e-5, rel=1e-5), (action, logp, want_logp)
