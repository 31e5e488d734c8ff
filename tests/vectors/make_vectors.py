"""Writes the shared protocol test vectors: NAME.msgpack (bytes) + NAME.json (decoded value).

In the JSON, an array is {"ndarray": {"dtype", "shape", "values"}} (values raveled,
non-finite floats as "inf"/"-inf"/"nan"), bytes are {"bin": "<hex>"}; everything
else is plain JSON. Every codec (Python, C#) must decode each .msgpack to the
.json value and encode the .json value back to exactly the .msgpack bytes.
distributions.json pins the action distributions (PROTOCOL.md section 3): a list of
cases {"name", "distribution", "action_space" (the contract's JSON form), "epsilon"
(number or null), "dist_inputs" (one row, float32 values), "deterministic_action" (the
policy form: ints, or floats for Box), "scored": [{"policy_action", "logp"}]}. logp is
the Python implementation's (float32, written exactly; "-inf" when the action is
impossible). Every implementation rebuilds each distribution from (action_space,
distribution, epsilon) and must reproduce the deterministic action and every logp.
Run: python tests/vectors/make_vectors.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from agentsdk_client import encode
from agentsdk_client.protocol.distributions import distribution_for
from agentsdk_client.protocol.spaces import Box, Discrete, MultiBinary, MultiDiscrete
from agentsdk_client.protocol.spec import space_to_json

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


# -- action distributions -----------------------------------------------------------------

_BOX = Box(np.array([-2.0, -1.0], f32), np.array([2.0, 3.0], f32))
_OPEN_BOX = Box(np.array([-np.inf, 0.0], f32), np.array([np.inf, np.inf], f32))
_UNIT_BOX = Box(-1.0, 1.0, (2,))
_EDGE = [1.0, -1.0]  # exactly at the bounds: scored as +-(1 - 1e-6)
_NEAR_EDGE = [0.9999999, -0.9999995]  # inside (-1, 1) but beyond 1 - 1e-6: clipped too

# (name, distribution, action space, epsilon, dist_inputs, policy actions to score)
DISTRIBUTION_CASES = [
    ("categorical", "Categorical", Discrete(3), None, [0.5, 2.0, -1.0], [[0], [1], [2]]),
    (
        "categorical_tie_first_index",
        "Categorical",
        Discrete(3, start=5),
        None,
        [1.0, 1.0, 0.25],
        [[0], [1], [2]],
    ),
    ("categorical_peaked", "Categorical", Discrete(3), None, [30.0, -30.0, 0.0], [[0], [1]]),
    (
        "multicategorical_multidiscrete",
        "MultiCategorical",
        MultiDiscrete([2, 3]),
        None,
        [0.25, -0.5, 1.0, 3.0, -2.0],
        [[0, 0], [1, 2], [0, 1], [1, 1]],
    ),
    (
        "multicategorical_multibinary",
        "MultiCategorical",
        MultiBinary(2),
        None,
        [0.1, 0.7, 1.5, -0.3],
        [[0, 0], [1, 1], [1, 0]],
    ),
    (
        "diag_gaussian",
        "DiagGaussian",
        _BOX,
        None,
        [0.3, -0.7, -0.5, 0.2],
        [[0.3, -0.7], [1.5, 0.25], [-2.0, 3.0]],
    ),
    (
        "diag_gaussian_unbounded",
        "DiagGaussian",
        _OPEN_BOX,
        None,
        [5.0, -12.5, 1.5, -3.0],
        [[5.0, -12.5], [0.0, 0.0]],
    ),
    (
        "squashed_gaussian",
        "SquashedGaussian",
        _BOX,
        None,
        [0.0, 0.8, -1.0, 0.5],
        [[0.0, 0.0], [0.5, -0.25], [-0.9, 0.99999], _EDGE],
    ),
    (
        # log_std 3.5 is clipped to 2, -7 to -5
        "squashed_gaussian_clipped_log_std",
        "SquashedGaussian",
        _UNIT_BOX,
        None,
        [0.4, -1.2, 3.5, -7.0],
        [[0.0, 0.0], [0.5, -0.83], [0.38, -0.8337], _EDGE, _NEAR_EDGE, [0.99999, -0.5]],
    ),
    (
        "squashed_gaussian_saturated_mean",
        "SquashedGaussian",
        _UNIT_BOX,
        None,
        [6.0, -9.5, 0.0, -2.0],
        [_EDGE, _NEAR_EDGE, [0.0, 0.0]],
    ),
    ("epsilon_greedy", "EpsilonGreedy", Discrete(4), 0.1, [0.5, 2.0, 2.0, -1.0], [[0], [1], [2], [3]]),
    ("epsilon_greedy_epsilon_0", "EpsilonGreedy", Discrete(4), 0.0, [1.0, -1.0, 3.0, 0.0], [[2], [0], [3]]),
    (
        "epsilon_greedy_epsilon_1",
        "EpsilonGreedy",
        Discrete(4, start=-1),
        1.0,
        [0.0, 0.0, -4.0, 7.0],
        [[3], [0]],
    ),
    (
        "epsilon_greedy_small_epsilon",
        "EpsilonGreedy",
        Discrete(4),
        0.003,
        [-0.5, -0.25, -0.75, -1.0],
        [[1], [0], [3]],
    ),
]


def _float_json(x: float):
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf" if x < 0 else "nan")


def distribution_vectors() -> list[dict]:
    cases = []
    for name, dist_name, space, epsilon, inputs, actions in DISTRIBUTION_CASES:
        dist = distribution_for(space, dist_name, epsilon)
        row = np.asarray([inputs], f32)
        is_box = isinstance(space, Box)
        deterministic = dist.sample(row, np.random.default_rng(0), True)
        if is_box:
            # tanh(mean) for SquashedGaussian: scored as well
            actions = [*actions, deterministic[0].tolist()]
        scored = []
        for action in actions:
            policy = (
                np.asarray([action], f32)
                if is_box
                else np.asarray(action, np.int64).reshape((1,) if isinstance(space, Discrete) else (1, -1))
            )
            with np.errstate(divide="ignore"):  # EpsilonGreedy with epsilon 0: log(0) for a non-greedy action
                logp = float(dist.logp(row, policy)[0])
            scored.append({"policy_action": np.asarray(policy).ravel().tolist(), "logp": _float_json(logp)})
        cases.append(
            {
                "name": name,
                "distribution": dist_name,
                "action_space": space_to_json(space),
                "epsilon": epsilon,
                "dist_inputs": row[0].tolist(),
                "deterministic_action": np.asarray(deterministic).ravel().tolist(),
                "scored": scored,
            }
        )
    return cases


if __name__ == "__main__":
    for name, value in VECTORS.items():
        (HERE / f"{name}.msgpack").write_bytes(encode(value))
        (HERE / f"{name}.json").write_text(json.dumps(to_json(value), indent=1, ensure_ascii=False) + "\n")
    (HERE / "distributions.json").write_text(json.dumps(distribution_vectors(), indent=1) + "\n")
    print(f"wrote {len(VECTORS)} vectors and {len(DISTRIBUTION_CASES)} distribution cases to {HERE}")
