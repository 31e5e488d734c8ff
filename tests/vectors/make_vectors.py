"""Writes the shared protocol test vectors: NAME.msgpack (bytes) + NAME.json (decoded value).

In the JSON, an array is {"ndarray": {"dtype", "shape", "values"}} (values raveled,
non-finite floats as "inf"/"-inf"/"nan"), bytes are {"bin": "<hex>"}; everything
else is plain JSON. Every codec (Python, C#) must decode each .msgpack to the
.json value and encode the .json value back to exactly the .msgpack bytes.
Run: python tests/vectors/make_vectors.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from agentsdk_client import encode

HERE = Path(__file__).parent


def to_json(value):
    if isinstance(value, np.ndarray):
        vals = [
            (v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan"))
            if isinstance(v, float)
            else v
            for v in value.ravel().tolist()
        ]
        return {"ndarray": {"dtype": value.dtype.name, "shape": list(value.shape), "values": vals}}
    if isinstance(value, bytes):
        return {"bin": value.hex()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("plain non-finite floats are not used in vectors")
    return value


f32 = np.float32
VECTORS = {
    "nil_bool_int": [
        None,
        True,
        False,
        0,
        1,
        -1,
        127,
        128,
        -32,
        -33,
        255,
        256,
        65535,
        65536,
        -129,
        -32769,
        2**31,
        2**32,
        -(2**31) - 1,
        2**63 - 1,
        -(2**63),
    ],
    "floats": [0.5, -1.25, 1e300, 3.141592653589793],
    "strings": ["", "a", "x" * 31, "y" * 32, "z" * 300, "héllo ✓"],
    "bin": [b"", b"\x00\x01\xff", bytes(range(256))],
    "nested_map": {"a": 1, "b": [1, 2, {"c": "d"}], "e": {}},
    "ndarray_float32": np.array([1.5, -2.0], f32),
    "ndarray_scalar_float64": np.array(2.5),
    "ndarray_int64_2d": np.arange(6, dtype=np.int64).reshape(2, 3),
    "ndarray_types": [
        np.array([True, False]),
        np.array([-1, 2], np.int8),
        np.array([255], np.uint8),
        np.array([-300], np.int16),
        np.array([60000], np.uint16),
        np.array([-70000], np.int32),
        np.array([4000000000], np.uint32),
        np.array([2**40], np.uint64),
        np.array([0.5], np.float16),
        np.array([np.inf, -np.inf], f32),
        np.zeros((0, 3), f32),
    ],
    "space_box": {
        "type": "Box",
        "shape": [4],
        "dtype": "float32",
        "low": np.array([-4.8, -np.inf, -0.42, -np.inf], f32),
        "high": np.array([4.8, np.inf, 0.42, np.inf], f32),
    },
    "space_dict": {
        "type": "Dict",
        "spaces": [
            [
                "pos",
                {
                    "type": "Box",
                    "shape": [2],
                    "dtype": "float32",
                    "low": np.full(2, -1, f32),
                    "high": np.full(2, 1, f32),
                },
            ],
            ["mode", {"type": "Discrete", "n": 3, "start": 0}],
            ["keys", {"type": "MultiBinary", "shape": [4]}],
            [
                "grid",
                {"type": "MultiDiscrete", "nvec": np.array([3, 2], np.int64), "start": np.zeros(2, np.int64)},
            ],
            ["pair", {"type": "Tuple", "spaces": [{"type": "Discrete", "n": 2, "start": 0}]}],
        ],
    },
    "act_request": {"observations": np.array([[0.01, -0.02, 0.03, 0.04]], f32), "deterministic": False},
    "act_response": {
        "actions": np.array([1], np.int64),
        "policy_actions": np.array([1], np.int64),
        "logp": np.array([-0.6931], f32),
        "dist_inputs": np.array([[0.1, 0.1]], f32),
        "policy_version": 3,
    },
    "experience_request": {
        "batch_id": "0b7e5a0c4b7e4c0e9f1e2d3c4b5a6978",
        "client_id": "vec",
        "chunks": [
            {
                "episode_id": "ep-1",
                "agent_id": "agent0",
                "chunk_index": 0,
                "observations": np.zeros((3, 4), f32),
                "policy_actions": np.array([0, 1], np.int64),
                "rewards": np.array([1.0, 1.0], f32),
                "terminated": True,
                "truncated": False,
                "logp": np.array([-0.69, -0.7], f32),
                "dist_inputs": np.zeros((2, 2), f32),
                "policy_versions": np.array([0, 0], np.int64),
            }
        ],
    },
    "error_envelope": {
        "error": {
            "code": "invalid_message",
            "message": "chunks[0].rewards: expected ...",
            "request_id": "r-1",
        }
    },
}

if __name__ == "__main__":
    for name, value in VECTORS.items():
        (HERE / f"{name}.msgpack").write_bytes(encode(value))
        (HERE / f"{name}.json").write_text(json.dumps(to_json(value), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(VECTORS)} vectors to {HERE}")
