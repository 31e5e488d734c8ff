"""The exported policy: its contract, and the one way to open it with onnxruntime.

An exported policy is an ONNX model from the flattened observation
(``ONNX_INPUT``, float32 ``[batch, flat_obs_size]``) to the distribution
inputs (``ONNX_OUTPUT``, float32 ``[batch, D]``), with a JSON *contract* in
its metadata (``CONTRACT_KEY``) saying which spaces, distribution and version
it is. The trainer writes the contract, the front serves it, clients (Python
and C#) read it back.

``open_session`` is the session recipe every process uses: the CPU provider
with one intra-op and one inter-op thread (an app's frame loop, and the
front's event loop, must not compete with a thread pool). onnxruntime is
imported only when a session is opened: a remote-mode client never needs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .constants import CONTRACT_KEY, DEFAULT_POLICY_ID, ONNX_INPUT, ONNX_OUTPUT, PROTOCOL_VERSION
from .distributions import ActionDistribution, default_distribution, distribution_for
from .policy_form import action_dist_size
from .spaces import Space
from .spec import space_from_json, space_to_json


@dataclass(frozen=True)
class PolicyContract:
    protocol: str
    policy_version: int
    algorithm: str
    observation_space: Space
    action_space: Space
    distribution: str
    dist_inputs_size: int
    flat_obs_size: int
    opset: int
    input_name: str = ONNX_INPUT
    output_name: str = ONNX_OUTPUT
    epsilon: float | None = None
    """EpsilonGreedy only (protocol 1.1): the exploration rate this version acts with."""
    policy_id: str = DEFAULT_POLICY_ID
    """(1.2) Which of the server's policies this is."""

    @classmethod
    def for_policy(
        cls,
        observation_space: Space,
        action_space: Space,
        version: int,
        algorithm: str,
        opset: int,
        distribution: str | None = None,
        epsilon: float | None = None,
        policy_id: str = DEFAULT_POLICY_ID,
    ) -> PolicyContract:
        """The contract of a policy acting in these spaces (RLlib's default distribution unless named)."""
        name = distribution or default_distribution(action_space)
        distribution_for(action_space, name, epsilon)  # fails here, not in a client, if it does not fit
        size = action_dist_size(action_space)
        return cls(
            PROTOCOL_VERSION, version, algorithm, observation_space, action_space, name, size,
            observation_space.flat_size, opset, epsilon=epsilon, policy_id=policy_id,
        )  # fmt: skip

    def action_distribution(self) -> ActionDistribution:
        """The distribution this policy's actions are sampled with; ValueError if this client has none."""
        return distribution_for(self.action_space, self.distribution, self.epsilon)

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "policy_version": self.policy_version,
            "algorithm": self.algorithm,
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "distribution": self.distribution,
            "dist_inputs_size": self.dist_inputs_size,
            "flat_obs_size": self.flat_obs_size,
            "opset": self.opset,
            "input_name": self.input_name,
            "output_name": self.output_name,
            **({} if self.epsilon is None else {"epsilon": self.epsilon}),
            "policy_id": self.policy_id,
        }

    @classmethod
    def from_json(cls, value: Any) -> PolicyContract:
        """Read a contract; ValueError (a SpaceError for spaces) names the first bad field."""
        if not isinstance(value, dict):
            raise ValueError("the contract is not a JSON object")
        out: dict[str, Any] = {}
        for name, kind in (
            ("protocol", str),
            ("policy_version", int),
            ("algorithm", str),
            ("distribution", str),
            ("dist_inputs_size", int),
            ("flat_obs_size", int),
            ("opset", int),
            ("input_name", str),
            ("output_name", str),
        ):
            got = value.get(name)
            if not isinstance(got, kind) or (kind is int and isinstance(got, bool)):
                raise ValueError(f"contract field {name!r}: expected {kind.__name__}, got {got!r}")
            out[name] = got
        epsilon = value.get("epsilon")
        if epsilon is not None and (not isinstance(epsilon, (int, float)) or isinstance(epsilon, bool)):
            raise ValueError(f"contract field 'epsilon': expected a number, got {epsilon!r}")
        out["epsilon"] = None if epsilon is None else float(epsilon)
        policy_id = value.get("policy_id", DEFAULT_POLICY_ID)
        if not isinstance(policy_id, str):
            raise ValueError(f"contract field 'policy_id': expected str, got {policy_id!r}")
        out["policy_id"] = policy_id
        out["observation_space"] = space_from_json(value.get("observation_space"), "observation_space")
        out["action_space"] = space_from_json(value.get("action_space"), "action_space")
        return cls(**out)

    def fits(self, observation_space: Space, action_space: Space) -> bool:
        return self.observation_space == observation_space and self.action_space == action_space


def import_onnxruntime() -> Any:
    """onnxruntime, imported on first use (ImportError says how to install it)."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError("onnxruntime is not installed: pip install 'agentsdk-client[onnx]'") from exc
    return onnxruntime


def open_session(onnx_bytes: bytes) -> Any:
    """An onnxruntime InferenceSession for an exported policy: CPU, one thread."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def read_contract(session: Any) -> PolicyContract:
    """The contract embedded in an opened policy; ValueError when it is missing or malformed."""
    text = session.get_modelmeta().custom_metadata_map.get(CONTRACT_KEY)
    if text is None:
        raise ValueError(f"the model has no '{CONTRACT_KEY}' metadata: it was not exported by agentsdk")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"'{CONTRACT_KEY}' is not JSON: {exc}") from exc
    return PolicyContract.from_json(value)
