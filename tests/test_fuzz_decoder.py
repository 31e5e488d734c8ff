"""Fuzzing the wire: the codec's decoder and the server's message endpoints.

- ``decode`` on arbitrary bytes, arbitrary msgpack values (extension types and
  malformed arrays included) and byte-level mutations of the shared vectors
  either returns a value or raises ``CodecError``; nothing else escapes.
- The real ASGI app (``create_app`` over a ``ServerState`` built as ``agentsdk
  serve`` builds it, with a tiny ONNX policy), driven in-process through
  starlette's TestClient: whatever arrives at ``/v1/act`` and
  ``/v1/experience`` (random bytes, mutated vectors, valid messages with fields
  replaced by random values), the answer is below 500, and a good request still
  works afterwards.

CI runs a short variant; ``AGENTSDK_FUZZ_EXAMPLES=100000`` sets the examples per
test for a long run.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentsdk_client.protocol.codec import DTYPES, CodecError, decode, encode
from agentsdk_client.protocol.spaces import Box, Discrete
from agentsdk_client.protocol.spec import spec_to_json

VECTORS = {p.name: p.read_bytes() for p in sorted((Path(__file__).parent / "vectors").glob("*.msgpack"))}
EXAMPLES = int(os.environ.get("AGENTSDK_FUZZ_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# -- strategies -----------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=16)
    | st.binary(max_size=32)
)
shapes = st.lists(st.integers(min_value=-2, max_value=6), max_size=4) | st.lists(
    st.integers(0, 3), max_size=10
)
dtype_names = st.sampled_from([*DTYPES, "object", "complex64", "<f4", "U3", ""]) | st.text(max_size=6)


@st.composite
def array_ext(draw: Any) -> msgpack.ExtType:
    """An ndarray extension, well-formed or not (wrong sizes, dtypes, shapes, payloads)."""
    name, shape = draw(dtype_names), draw(shapes)
    if draw(st.booleans()) and name in DTYPES and all(d >= 0 for d in shape):
        size = int(np.prod(shape)) * DTYPES[name].itemsize if shape else DTYPES[name].itemsize
        data = draw(st.binary(min_size=size, max_size=size)) if size <= 256 else bytes(size)
    else:
        data = draw(st.binary(max_size=64))
    payload = draw(
        st.sampled_from(
            [
                msgpack.packb([name, shape, data], use_bin_type=True),
                msgpack.packb([name, shape], use_bin_type=True),
                msgpack.packb({"dtype": name}, use_bin_type=True),
                data,
            ]
        )
    )
    return msgpack.ExtType(draw(st.sampled_from([1, 1, 1, 0, 2, 127])), payload)


values = st.recursive(
    scalars | array_ext() | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=16)),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=12) | st.integers(-3, 3), children, max_size=5)
    ),
    max_leaves=24,
)


def pack(value: Any) -> bytes:
    return encode(value)  # msgpack, numpy arrays as extension 1; ExtType values pass through as they are


@st.composite
def mutated_vector(draw: Any) -> bytes:
    """A shared test vector with a few byte-level edits (flip, cut, insert, repeat)."""
    data = bytearray(VECTORS[draw(st.sampled_from(sorted(VECTORS)))])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "set"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(
                st.sampled_from([0x00, 0x7F, 0x80, 0xC1, 0xC4, 0xC7, 0xD4, 0xDB, 0xDC, 0xDF, 0xFF])
            )
        elif op == "cut":
            data = data[:at]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


# Extensions with any type code, negative ones (msgpack's reserved range: -1 is a timestamp) included,
# which msgpack.ExtType cannot build: ext 8 = 0xc7, length, type, payload.
raw_ext = st.builds(
    lambda code, payload: bytes([0xC7, len(payload), code & 0xFF]) + payload,
    st.integers(-128, 127),
    st.binary(max_size=16),
)
raw_bodies = st.binary(max_size=256) | mutated_vector() | values.map(pack) | raw_ext


# -- the decoder ----------------------------------------------------------------------------


def decode_or_codec_error(raw: bytes) -> None:
    try:
        decode(raw)
    except CodecError:
        pass


@FUZZ
@given(raw_bodies)
def test_decode_returns_or_raises_codec_error_only(raw: bytes) -> None:
    decode_or_codec_error(raw)


@settings(FUZZ, max_examples=max(1, EXAMPLES // 4))
@given(values)
def test_decode_of_encoded_values_returns_or_raises_codec_error(value: Any) -> None:
    decode_or_codec_error(pack(value))


# -- the server's endpoints -----------------------------------------------------------------

OBS_SPACE = Box(
    np.array([-4.8, -np.inf, -0.42, -np.inf], np.float32),
    np.array([4.8, np.inf, 0.42, np.inf], np.float32),
    (4,),
    np.float32,
)
ACT_SPACE = Discrete(2)


def tiny_policy_onnx() -> bytes:
    """obs float32 [batch, 4] -> dist_inputs float32 [batch, 2] (a MatMul and an Add)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["obs", "W"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["dist_inputs"]),
        ],
        "policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("dist_inputs", TensorProto.FLOAT, ["batch", 2])],
        [
            numpy_helper.from_array(rng.normal(size=(4, 2)).astype(np.float32), "W"),
            numpy_helper.from_array(np.zeros(2, np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


@pytest.fixture(scope="module")
def app_client() -> Any:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from starlette.testclient import TestClient

    from agentsdk_client.protocol.limits import Limits
    from agentsdk_server.front.app import create_app
    from agentsdk_server.front.inbox import Inbox
    from agentsdk_server.front.inference import BatchedInference, load_policy
    from agentsdk_server.front.state import ServerState

    state = ServerState(
        observation_space=OBS_SPACE,
        action_space=ACT_SPACE,
        algorithm="PPO",
        distribution="Categorical",
        limits=Limits(max_body_bytes=1 << 20, max_batch=64, max_chunks=16, max_chunk_steps=512),
        inbox=Inbox(capacity_steps=10_000_000, max_policy_lag=1),
        inference=BatchedInference(seed=0),
    )
    contract = {
        "protocol": "1.0",
        "policy_version": 0,
        "algorithm": "PPO",
        "observation_space": spec_to_json(OBS_SPACE.to_spec()),
        "action_space": spec_to_json(ACT_SPACE.to_spec()),
        "distribution": "Categorical",
        "dist_inputs_size": 2,
        "flat_obs_size": 4,
        "opset": 17,
        "input_name": "obs",
        "output_name": "dist_inputs",
    }
    state.publish(load_policy(0, tiny_policy_onnx(), contract, state.inference.rng))
    with TestClient(create_app(state)) as client:
        yield client, state


HEADERS = {"Content-Type": "application/msgpack", "Agentsdk-Protocol": "1.0"}
GOOD_ACT = {"observations": np.zeros((2, 4), np.float32)}
GOOD_EXPERIENCE = decode(VECTORS["experience_request.msgpack"])


def post(client: Any, path: str, raw: bytes) -> int:
    return client.post(path, content=raw, headers=HEADERS).status_code


def still_serves(client: Any) -> None:
    resp = client.post("/v1/act", content=encode(GOOD_ACT), headers=HEADERS)
    assert resp.status_code == 200, resp.content
    assert decode(resp.content)["actions"].shape == (2,)


@st.composite
def mutated_message(draw: Any) -> tuple[str, bytes]:
    """A valid act or experience message with one field replaced, removed or added (at any depth)."""
    path, message = draw(st.sampled_from([("/v1/act", GOOD_ACT), ("/v1/experience", GOOD_EXPERIENCE)]))
    message = copy.deepcopy(message)
    node: Any = message
    while True:  # walk down to a random map or list
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        inner = [k for k in keys if isinstance(node[k], (dict, list)) and node[k]]
        if not inner or draw(st.booleans()):
            break
        node = node[draw(st.sampled_from(inner))]
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    op = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
    if op == "replace" and keys:
        node[draw(st.sampled_from(keys))] = draw(values)
    elif op == "remove" and keys:
        del node[draw(st.sampled_from(keys))]
    elif isinstance(node, dict):
        node[draw(st.text(max_size=12))] = draw(values)
    else:
        node.append(draw(values))
    if (
        path == "/v1/experience"
        and isinstance(message, dict)
        and message.get("batch_id") == GOOD_EXPERIENCE["batch_id"]
    ):
        message["batch_id"] = draw(st.uuids()).hex  # a fresh id, so an accidentally valid batch is ingested
    return path, pack(message)


@FUZZ
@given(st.sampled_from(["/v1/act", "/v1/experience"]), raw_bodies)
def test_endpoints_answer_raw_garbage_below_500(app_client: Any, path: str, raw: bytes) -> None:
    client, _ = app_client
    assert post(client, path, raw) < 500


@FUZZ
@given(mutated_message())
def test_endpoints_answer_mutated_messages_below_500(app_client: Any, case: tuple[str, bytes]) -> None:
    client, _ = app_client
    path, raw = case
    assert post(client, path, raw) < 500


def test_the_app_still_serves_after_the_fuzzing(app_client: Any) -> None:
    client, state = app_client
    still_serves(client)
    resp = client.post(
        "/v1/experience", content=encode({**GOOD_EXPERIENCE, "batch_id": "after-fuzz"}), headers=HEADERS
    )
    assert resp.status_code == 200 and decode(resp.content)["duplicate"] is False
    assert state.inbox.counters.steps_ingested >= sum(len(c["rewards"]) for c in GOOD_EXPERIENCE["chunks"])
