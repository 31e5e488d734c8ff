"""Shared helpers of the client's unit tests: a fake server speaking the protocol with the client's own codec.

The fake implements /v1/info, /v1/act, /v1/experience and /v1/policy. Most
tests reach it through ``httpx.MockTransport`` (``client_for``); the
``socket_server`` fixture (conftest.py) serves it on a real socket to cover the
http.client act path.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import numpy as np
import pytest

from agentsdk_client import Box, Discrete, PolicyClient, decode, encode
from agentsdk_client.protocol.chunk import ExperienceChunk
from agentsdk_client.protocol.distributions import Categorical
from agentsdk_client.protocol.spec import spec_to_json

OBS_SPACE = Box(
    np.array([-4.8, -np.inf, -0.42, -np.inf], np.float32),
    np.array([4.8, np.inf, 0.42, np.inf], np.float32),
    (4,),
    np.float32,
)
ACT_SPACE = Discrete(2)

OBS = np.array([0.1, 0.0, 0.01, 0.0], np.float32)


def make_onnx(weights: np.ndarray, bias: np.ndarray, version: int) -> bytes:
    """obs [batch, 4] @ W [4, 2] + b -> dist_inputs [batch, 2], with the agentsdk contract."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["obs", "W"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["dist_inputs"]),
        ],
        "policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("dist_inputs", TensorProto.FLOAT, ["batch", 2])],
        [
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(bias.astype(np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    contract = {
        "protocol": "1.0",
        "policy_version": version,
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
    helper.set_model_props(model, {"agentsdk_contract": json.dumps(contract)})
    return model.SerializeToString()


def envelope(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {}, encode({"error": {"code": code, "message": message, "request_id": "req-1"}})


class FakeServer:
    """Just enough of the protocol, with knobs for failures."""

    def __init__(
        self, *, token: str | None = None, protocol: str = "1.0", max_chunk_steps: int = 1000
    ) -> None:
        self.token = token
        self.protocol = protocol
        self.max_chunk_steps = max_chunk_steps
        self.version = 1
        self.weights = np.zeros((4, 2), np.float32)
        self.bias = np.array([0.3, -0.2], np.float32)
        self.experience: list[dict[str, Any]] = []  # every request body received, failures included
        self.accepted: list[dict[str, Any]] = []
        self.act_requests: list[dict[str, Any]] = []
        self.fail_experience: list[tuple[int, dict[str, str], bytes]] = []  # answers to give first
        self.policy_gate: threading.Event | None = None
        self.policy_requests = 0
        self.lock = threading.Lock()

    def publish(self, weights: np.ndarray, bias: np.ndarray) -> None:
        with self.lock:
            self.version += 1
            self.weights, self.bias = weights, bias

    def handle(
        self, method: str, path: str, headers: Any, content: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            return envelope(401, "unauthorized", "token missing or wrong")
        if headers.get("agentsdk-protocol", "1.0").split(".")[0] != self.protocol.split(".")[0]:
            return envelope(
                400,
                "protocol_version_mismatch",
                f"client speaks {headers.get('agentsdk-protocol')}, server speaks {self.protocol}",
            )
        if (method, path) == ("GET", "/v1/info"):
            return (
                200,
                {},
                encode(
                    {
                        "protocol": self.protocol,
                        "server_version": "test",
                        "observation_space": OBS_SPACE.to_spec(),
                        "action_space": ACT_SPACE.to_spec(),
                        "policy_version": self.version,
                        "algorithm": "PPO",
                        "max_policy_lag": 1,
                        "token_required": bool(self.token),
                        "limits": {
                            "max_body_bytes": 1 << 20,
                            "max_batch": 64,
                            "max_chunk_steps": self.max_chunk_steps,
                            "max_chunks": 8,
                        },
                        "dist_inputs_size": 2,
                        "distribution": "Categorical",
                    }
                ),
            )
        if (method, path) == ("POST", "/v1/act"):
            return self._act(decode(content))
        if (method, path) == ("POST", "/v1/experience"):
            return self._experience(decode(content))
        if (method, path) == ("GET", "/v1/policy"):
            self.policy_requests += 1
            if self.policy_gate is not None:
                self.policy_gate.wait(5)
            with self.lock:
                etag = f'"v{self.version}"'
                if headers.get("if-none-match") == etag:
                    return 304, {"ETag": etag}, b""
                onnx_bytes = make_onnx(self.weights, self.bias, self.version)
                return (
                    200,
                    {"ETag": etag},
                    encode({"policy_version": self.version, "onnx": onnx_bytes, "contract": {}}),
                )
        return envelope(404, "not_found", f"no such path {path}")

    def _act(self, message: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        self.act_requests.append(message)
        obs = message["observations"]
        n = len(obs)
        dist_inputs = (obs @ self.weights + self.bias).astype(np.float32)
        if "actions" in message:
            actions = message["actions"]
        else:  # deterministic fake: action 1 when obs[0] > 0
            actions = (obs[:, 0] > 0).astype(np.int64)
        logp = Categorical().logp(dist_inputs, actions)
        return (
            200,
            {},
            encode(
                {
                    "actions": actions,
                    "policy_actions": actions.copy(),
                    "logp": logp,
                    "dist_inputs": dist_inputs,
                    "policy_version": self.version + 0 * n,
                }
            ),
        )

    def _experience(self, message: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        self.experience.append(message)
        if self.fail_experience:
            return self.fail_experience.pop(0)
        duplicate = any(m["batch_id"] == message["batch_id"] for m in self.accepted)
        if not duplicate:
            self.accepted.append(message)
        steps = sum(len(c["rewards"]) for c in message["chunks"])
        return (
            200,
            {},
            encode(
                {
                    "accepted_steps": 0 if duplicate else steps,
                    "duplicate": duplicate,
                    "policy_version": self.version,
                }
            ),
        )

    def mock(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            status, headers, body = self.handle(
                request.method, request.url.path, request.headers, request.read()
            )
            return httpx.Response(
                status, headers={"Content-Type": "application/msgpack", **headers}, content=body
            )

        return httpx.MockTransport(handler)

    def chunks(self) -> list[dict[str, Any]]:
        return [c for m in self.accepted for c in m["chunks"]]


def client_for(server: FakeServer, **kw: Any) -> PolicyClient:
    return PolicyClient("http://agentsdk.test", transport=server.mock(), **kw)


def run_episode(
    client: PolicyClient,
    steps: int,
    *,
    truncated: bool = False,
    agent_id: str = "agent0",
    episode: str | None = None,
) -> str:
    episode = episode or client.start_episode()
    for t in range(steps):
        obs = np.array([0.01 * t, t, 0.0, 0.0], np.float32)
        action = client.get_action(episode, obs, agent_id=agent_id)
        assert isinstance(action, int)
        client.log_returns(episode, 1.0, agent_id=agent_id)
        client.log_returns(episode, 0.5 * t, agent_id=agent_id)
    client.end_episode(
        episode, np.array([0.0, steps, 0.0, 0.0], np.float32), agent_id=agent_id, truncated=truncated
    )
    return episode


def fake_chunk(steps: int = 2, tag: int = 0) -> ExperienceChunk:
    return ExperienceChunk(
        episode_id=f"e{tag}",
        agent_id="agent0",
        chunk_index=0,
        observations=np.zeros((steps + 1, 4), np.float32),
        policy_actions=np.zeros(steps, np.int64),
        rewards=np.full(steps, tag, np.float32),
        terminated=True,
        truncated=False,
        logp=np.zeros(steps, np.float32),
        dist_inputs=np.zeros((steps, 2), np.float32),
        policy_versions=np.ones(steps, np.int64),
    )
