"""Unit tests of the Python client: no server process, no Ray.

A fake server implements /v1/info, /v1/act, /v1/experience and /v1/policy with
the client's own codec. Most tests reach it through ``httpx.MockTransport``; one
serves it on a real socket to cover the http.client act path.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest

from agentsdk_client import (
    AuthenticationError,
    BadRequest,
    Box,
    Discrete,
    PolicyClient,
    RateLimited,
    ServerError,
    ServerUnavailable,
    UsageError,
    VersionMismatch,
    decode,
    encode,
)
from agentsdk_client._uploader import Uploader
from agentsdk_client.protocol.chunk import ExperienceChunk
from agentsdk_client.protocol.distributions import Categorical
from agentsdk_client.protocol.spec import spec_to_json

OBS_SPACE = Box(np.array([-4.8, -np.inf, -0.42, -np.inf], np.float32),
                np.array([4.8, np.inf, 0.42, np.inf], np.float32), (4,), np.float32)
ACT_SPACE = Discrete(2)


def make_onnx(weights: np.ndarray, bias: np.ndarray, version: int) -> bytes:
    """obs [batch, 4] @ W [4, 2] + b -> dist_inputs [batch, 2], with the agentsdk contract."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["dist_inputs"])],
        "policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("dist_inputs", TensorProto.FLOAT, ["batch", 2])],
        [numpy_helper.from_array(weights.astype(np.float32), "W"), numpy_helper.from_array(bias.astype(np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    contract = {
        "protocol": "1.0", "policy_version": version, "algorithm": "PPO",
        "observation_space": spec_to_json(OBS_SPACE.to_spec()), "action_space": spec_to_json(ACT_SPACE.to_spec()),
        "distribution": "Categorical", "dist_inputs_size": 2, "flat_obs_size": 4, "opset": 17,
        "input_name": "obs", "output_name": "dist_inputs",
    }
    helper.set_model_props(model, {"agentsdk_contract": json.dumps(contract)})
    return model.SerializeToString()


def envelope(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {}, encode({"error": {"code": code, "message": message, "request_id": "req-1"}})


class FakeServer:
    """Just enough of the protocol, with knobs for failures."""

    def __init__(self, *, token: str | None = None, protocol: str = "1.0", max_chunk_steps: int = 1000) -> None:
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

    def handle(self, method: str, path: str, headers: Any, content: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            return envelope(401, "unauthorized", "token missing or wrong")
        if headers.get("agentsdk-protocol", "1.0").split(".")[0] != self.protocol.split(".")[0]:
            return envelope(400, "protocol_version_mismatch",
                            f"client speaks {headers.get('agentsdk-protocol')}, server speaks {self.protocol}")
        if (method, path) == ("GET", "/v1/info"):
            return 200, {}, encode({
                "protocol": self.protocol, "server_version": "test", "observation_space": OBS_SPACE.to_spec(),
                "action_space": ACT_SPACE.to_spec(), "policy_version": self.version, "algorithm": "PPO",
                "max_policy_lag": 1, "token_required": bool(self.token),
                "limits": {"max_body_bytes": 1 << 20, "max_batch": 64, "max_chunk_steps": self.max_chunk_steps,
                           "max_chunks": 8},
                "dist_inputs_size": 2, "distribution": "Categorical"})
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
                return 200, {"ETag": etag}, encode({"policy_version": self.version, "onnx": onnx_bytes,
                                                    "contract": {}})
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
        return 200, {}, encode({"actions": actions, "policy_actions": actions.copy(), "logp": logp,
                                "dist_inputs": dist_inputs, "policy_version": self.version + 0 * n})

    def _experience(self, message: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        self.experience.append(message)
        if self.fail_experience:
            return self.fail_experience.pop(0)
        duplicate = any(m["batch_id"] == message["batch_id"] for m in self.accepted)
        if not duplicate:
            self.accepted.append(message)
        steps = sum(len(c["rewards"]) for c in message["chunks"])
        return 200, {}, encode({"accepted_steps": 0 if duplicate else steps, "duplicate": duplicate,
                                "policy_version": self.version})

    def mock(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            status, headers, body = self.handle(request.method, request.url.path, request.headers, request.read())
            return httpx.Response(status, headers={"Content-Type": "application/msgpack", **headers}, content=body)

        return httpx.MockTransport(handler)

    def chunks(self) -> list[dict[str, Any]]:
        return [c for m in self.accepted for c in m["chunks"]]


def client_for(server: FakeServer, **kw: Any) -> PolicyClient:
    return PolicyClient("http://agentsdk.test", transport=server.mock(), **kw)


OBS = np.array([0.1, 0.0, 0.01, 0.0], np.float32)


# -- import hygiene ---------------------------------------------------------------------

def test_import_pulls_in_no_heavy_dependency() -> None:
    code = ("import sys, agentsdk_client; heavy = [m for m in ('ray', 'torch', 'gymnasium', 'onnxruntime') "
            "if m in sys.modules]; print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# -- handshake --------------------------------------------------------------------------

def test_handshake_reads_spaces_and_limits() -> None:
    with client_for(FakeServer(max_chunk_steps=100), max_chunk_steps=256) as client:
        assert client.observation_space == OBS_SPACE
        assert client.action_space == ACT_SPACE
        assert client.policy_version == 1
        assert client.max_chunk_steps == 100


def test_wrong_or_missing_token_is_an_authentication_error() -> None:
    server = FakeServer(token="s3cret")
    with pytest.raises(AuthenticationError, match="token="):
        client_for(server)
    with pytest.raises(AuthenticationError, match="refused"):
        client_for(server, token="wrong")
    client_for(server, token="s3cret").close()


def test_protocol_major_mismatch_names_both_versions() -> None:
    with pytest.raises(VersionMismatch, match=r"2\.0.*1\.0|1\.0.*2\.0"):
        client_for(FakeServer(protocol="2.0"))


def test_unreachable_server_says_what_to_check() -> None:
    with pytest.raises(ServerUnavailable, match="agentsdk serve"):
        PolicyClient("http://127.0.0.1:9", timeout=2)


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="inference_mode"):
        PolicyClient("http://x", inference_mode="cloud")
    with pytest.raises(UsageError, match="address"):
        PolicyClient("ftp://x")


# -- observations -----------------------------------------------------------------------

def test_wrong_observation_shape_names_expected_and_got() -> None:
    with client_for(FakeServer()) as client:
        episode = client.start_episode()
        with pytest.raises(UsageError, match=r"expected shape \(4,\).*got an array of shape \(3,\)"):
            client.get_action(episode, np.zeros(3, np.float32))


def test_wrong_observation_dtype_names_expected_and_got() -> None:
    with client_for(FakeServer()) as client:
        episode = client.start_episode()
        with pytest.raises(UsageError, match=r"expected dtype float32.*<U"):
            client.get_action(episode, np.array(["a", "b", "c", "d"]))


def test_out_of_bounds_or_nan_observation_is_refused() -> None:
    with client_for(FakeServer()) as client:
        episode = client.start_episode()
        with pytest.raises(UsageError, match="outside the bounds"):
            client.get_action(episode, [9.0, 0.0, 0.0, 0.0])
        with pytest.raises(UsageError, match="outside the bounds"):
            client.get_action(episode, [np.nan, 0.0, 0.0, 0.0])


def test_observation_is_copied_so_the_app_may_reuse_its_buffer() -> None:
    server = FakeServer()
    with client_for(server) as client:
        episode = client.start_episode()
        buffer = OBS.copy()
        client.get_action(episode, buffer)
        buffer[0] = -0.5
        client.end_episode(episode, buffer)
        assert client.flush(5)
    observations = server.chunks()[0]["observations"]
    assert observations[0, 0] == pytest.approx(0.1) and observations[1, 0] == pytest.approx(-0.5)


def test_lists_and_float64_observations_are_accepted() -> None:
    with client_for(FakeServer()) as client:
        episode = client.start_episode()
        assert client.get_action(episode, [0.5, 1.0, 0.0, -3.0]) == 1
        assert client.get_action(episode, np.array([-0.5, 1.0, 0.0, -3.0])) == 0


# -- trajectory assembly ----------------------------------------------------------------

def run_episode(client: PolicyClient, steps: int, *, truncated: bool = False, agent_id: str = "agent0",
                episode: str | None = None) -> str:
    episode = episode or client.start_episode()
    for t in range(steps):
        obs = np.array([0.01 * t, t, 0.0, 0.0], np.float32)
        action = client.get_action(episode, obs, agent_id=agent_id)
        assert isinstance(action, int)
        client.log_returns(episode, 1.0, agent_id=agent_id)
        client.log_returns(episode, 0.5 * t, agent_id=agent_id)
    client.end_episode(episode, np.array([0.0, steps, 0.0, 0.0], np.float32), agent_id=agent_id,
                       truncated=truncated)
    return episode


def test_chunks_have_t_plus_one_observations_and_are_cut_lazily() -> None:
    server = FakeServer()
    with client_for(server, max_chunk_steps=3) as client:
        episode = run_episode(client, 7)
        assert client.flush(5)
        stats = client.stats
    chunks = server.chunks()
    assert [c["chunk_index"] for c in chunks] == [0, 1, 2]
    assert [len(c["rewards"]) for c in chunks] == [3, 3, 1]
    for chunk in chunks:
        assert chunk["episode_id"] == episode and chunk["agent_id"] == "agent0"
        steps = len(chunk["rewards"])
        assert chunk["observations"].shape == (steps + 1, 4) and chunk["observations"].dtype == np.float32
        assert chunk["policy_actions"].shape == (steps,) and chunk["policy_actions"].dtype == np.int64
        assert chunk["logp"].shape == (steps,) and chunk["dist_inputs"].shape == (steps, 2)
        assert chunk["policy_versions"].tolist() == [1] * steps
    # observations[T] of chunk k is observations[0] of chunk k+1 (index 1 holds the step number)
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        np.testing.assert_array_equal(prev["observations"][-1], nxt["observations"][0])
    assert np.concatenate([c["observations"][:-1, 1] for c in chunks]).tolist() == list(range(7))
    assert chunks[-1]["observations"][-1, 1] == 7
    # rewards of a step add up everything logged until the next get_action
    rewards = np.concatenate([c["rewards"] for c in chunks])
    np.testing.assert_allclose(rewards, [1.0 + 0.5 * t for t in range(7)])
    assert [(c["terminated"], c["truncated"]) for c in chunks] == [(False, False), (False, False), (True, False)]
    assert stats.steps_recorded == 7 and stats.steps_acknowledged == 7 and stats.chunks_pending == 0


def test_truncated_episode_and_exact_multiple_of_chunk_size() -> None:
    server = FakeServer()
    with client_for(server, max_chunk_steps=3) as client:
        run_episode(client, 6, truncated=True)
        assert client.flush(5)
    chunks = server.chunks()
    assert [len(c["rewards"]) for c in chunks] == [3, 3]
    assert [(c["terminated"], c["truncated"]) for c in chunks] == [(False, False), (False, True)]


def test_remote_act_request_and_answer() -> None:
    server = FakeServer()
    with client_for(server) as client:
        episode = client.start_episode()
        assert client.get_action(episode, OBS) == 1
        assert client.get_action(episode, -OBS, deterministic=True) == 0
        client.end_episode(episode, OBS)
        assert client.flush(5)
    first, second = server.act_requests
    assert first["observations"].shape == (1, 4) and "deterministic" not in first
    assert second["deterministic"] is True
    chunk = server.chunks()[0]
    expected = Categorical().logp(chunk["dist_inputs"], chunk["policy_actions"])
    np.testing.assert_allclose(chunk["logp"], expected, rtol=1e-6)


def test_log_action_remote_sends_the_action_for_evaluation() -> None:
    server = FakeServer()
    with client_for(server) as client:
        episode = client.start_episode()
        client.log_action(episode, OBS, 0)
        client.log_returns(episode, 2.0)
        client.end_episode(episode, OBS)
        assert client.flush(5)
    assert server.act_requests[0]["actions"].tolist() == [0]
    chunk = server.chunks()[0]
    assert chunk["policy_actions"].tolist() == [0] and chunk["rewards"].tolist() == [2.0]


def test_multi_agent_streams_are_separate_chunks() -> None:
    server = FakeServer()
    with client_for(server) as client:
        episode = client.start_episode()
        for agent in ("red", "blue"):
            client.get_action(episode, OBS, agent_id=agent)
            client.log_returns(episode, 1.0 if agent == "red" else -1.0, agent_id=agent)
        client.end_episode(episode, OBS, agent_id="red")
        client.get_action(episode, OBS, agent_id="blue")  # the episode goes on for blue
        client.end_episode(episode, OBS, agent_id="blue", truncated=True)
        with pytest.raises(UsageError, match="unknown episode"):
            client.get_action(episode, OBS, agent_id="blue")
        assert client.flush(5)
    by_agent = {c["agent_id"]: c for c in server.chunks()}
    assert by_agent["red"]["rewards"].tolist() == [1.0] and by_agent["red"]["terminated"]
    assert by_agent["blue"]["rewards"].tolist() == [-1.0, 0.0] and by_agent["blue"]["truncated"]


def test_training_disabled_episode_uploads_nothing() -> None:
    server = FakeServer()
    with client_for(server) as client:
        episode = client.start_episode(training_enabled=False)
        client.get_action(episode, OBS)
        client.log_returns(episode, 1.0)
        client.end_episode(episode, OBS)
        assert client.flush(5)
    assert server.experience == []


def test_misuse_is_reported_clearly() -> None:
    with client_for(FakeServer()) as client:
        with pytest.raises(UsageError, match="start_episode"):
            client.get_action("nope", OBS)
        episode = client.start_episode("e1")
        with pytest.raises(UsageError, match="already running"):
            client.start_episode("e1")
        with pytest.raises(UsageError, match="before its first get_action"):
            client.log_returns(episode, 1.0)
        client.get_action(episode, OBS)
        with pytest.raises(UsageError, match="finite"):
            client.log_returns(episode, float("nan"))
    with pytest.raises(UsageError, match="closed"):
        client.start_episode()


# -- uploader ---------------------------------------------------------------------------

def fake_chunk(steps: int = 2, tag: int = 0) -> ExperienceChunk:
    return ExperienceChunk(
        episode_id=f"e{tag}", agent_id="agent0", chunk_index=0,
        observations=np.zeros((steps + 1, 4), np.float32), policy_actions=np.zeros(steps, np.int64),
        rewards=np.full(steps, tag, np.float32), terminated=True, truncated=False,
        logp=np.zeros(steps, np.float32), dist_inputs=np.zeros((steps, 2), np.float32),
        policy_versions=np.ones(steps, np.int64))


class ScriptedSend:
    """A send function that raises the scripted errors first, then accepts."""

    def __init__(self, errors: list[Exception], *, reject_tag: float | None = None) -> None:
        self.errors = errors
        self.reject_tag = reject_tag
        self.bodies: list[dict[str, Any]] = []
        self.times: list[float] = []

    def __call__(self, body: bytes) -> Any:
        message = decode(body)
        self.bodies.append(message)
        self.times.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        if self.reject_tag is not None and any(c["rewards"][0] == self.reject_tag for c in message["chunks"]):
            raise BadRequest("chunks[0].rewards bad", status=422, code="invalid_message")
        return {"accepted_steps": 1, "duplicate": False, "policy_version": 1}


def test_retries_reuse_the_batch_id() -> None:
    send = ScriptedSend([ServerError("boom", status=503), ServerError("boom", status=500)])
    uploader = Uploader(send, client_id="t", max_chunks=8, max_body_bytes=1 << 20, backoff_base=0.01)
    uploader.submit(fake_chunk())
    assert uploader.flush(5)
    uploader.close(1)
    assert len(send.bodies) == 3
    assert len({b["batch_id"] for b in send.bodies}) == 1
    assert send.bodies[0]["client_id"] == "t"
    counts = uploader.counts()
    assert counts.steps_acknowledged == 2 and counts.retries == 2 and counts.batches_sent == 3


def test_rate_limit_honours_retry_after() -> None:
    send = ScriptedSend([RateLimited("full", retry_after=0.3, status=429, code="inbox_full")])
    uploader = Uploader(send, client_id="t", max_chunks=8, max_body_bytes=1 << 20, backoff_base=0.001)
    uploader.submit(fake_chunk())
    assert uploader.flush(5)
    uploader.close(1)
    assert send.times[1] - send.times[0] >= 0.3
    assert send.bodies[0]["batch_id"] == send.bodies[1]["batch_id"]


def test_client_retries_429_from_the_server_with_the_same_batch() -> None:
    server = FakeServer()
    server.fail_experience = [(429, {"Retry-After": "0.1"},
                               encode({"error": {"code": "inbox_full", "message": "full", "request_id": "r"}}))]
    with client_for(server) as client:
        run_episode(client, 2)
        assert client.flush(5)
    assert len(server.experience) == 2 and server.experience[0]["batch_id"] == server.experience[1]["batch_id"]
    assert len(server.chunks()) == 1


def test_a_rejected_chunk_is_isolated_and_not_retried() -> None:
    send = ScriptedSend([], reject_tag=3.0)
    uploader = Uploader(send, client_id="t", max_chunks=8, max_body_bytes=1 << 20)
    for tag in range(6):
        uploader.submit(fake_chunk(tag=tag))
    assert uploader.flush(5)
    uploader.close(1)
    counts = uploader.counts()
    assert counts.steps_rejected == 2 and counts.steps_acknowledged == 10


def test_batches_respect_max_chunks_and_body_size() -> None:
    send = ScriptedSend([])
    gate = threading.Event()
    original = send.__call__

    def slow_send(body: bytes) -> Any:
        gate.wait(5)
        return original(body)

    uploader = Uploader(slow_send, client_id="t", max_chunks=3, max_body_bytes=1500)
    for tag in range(7):
        uploader.submit(fake_chunk(tag=tag))
    gate.set()
    assert uploader.flush(5)
    uploader.close(1)
    sizes = [len(b["chunks"]) for b in send.bodies]
    assert sum(sizes) == 7 and max(sizes) <= 3
    assert [c["rewards"][0] for b in send.bodies for c in b["chunks"]] == list(range(7))  # order kept


def test_flush_times_out_while_the_server_is_down() -> None:
    send = ScriptedSend([ServerError("down", status=503)] * 1000)
    uploader = Uploader(send, client_id="t", max_chunks=8, max_body_bytes=1 << 20, backoff_base=0.01,
                        backoff_cap=0.02)
    uploader.submit(fake_chunk())
    start = time.monotonic()
    assert uploader.flush(0.2) is False
    assert time.monotonic() - start < 1.0
    assert uploader.close(0.1) is False
    assert uploader.counts().chunks_pending == 1


def test_full_queue_drops_the_oldest() -> None:
    gate = threading.Event()
    send = ScriptedSend([])

    def blocked(body: bytes) -> Any:
        gate.wait(5)
        return send(body)

    uploader = Uploader(blocked, client_id="t", max_chunks=1, max_body_bytes=1 << 20, max_queued_chunks=2)
    for tag in range(6):
        uploader.submit(fake_chunk(tag=tag))
    gate.set()
    assert uploader.flush(5)
    uploader.close(1)
    counts = uploader.counts()
    assert counts.steps_dropped + counts.steps_acknowledged == 12 and counts.steps_dropped >= 2
    sent = [c["rewards"][0] for b in send.bodies for c in b["chunks"]]
    assert sent[-2:] == [4.0, 5.0]  # the newest survive


# -- local mode -------------------------------------------------------------------------

def local_client(server: FakeServer, **kw: Any) -> PolicyClient:
    pytest.importorskip("onnxruntime")
    return client_for(server, inference_mode="local", seed=0, **kw)


def test_local_mode_logp_matches_the_reference_distribution() -> None:
    server = FakeServer()
    server.publish(np.arange(8, dtype=np.float32).reshape(4, 2) / 10, np.array([0.3, -0.2], np.float32))
    with local_client(server) as client:
        assert client.policy_version == 2
        episode = client.start_episode()
        actions = []
        for _ in range(400):
            actions.append(client.get_action(episode, OBS))
            client.log_returns(episode, 1.0)
        client.end_episode(episode, OBS)
        assert client.flush(5)
    assert server.act_requests == []  # local inference never calls /v1/act
    chunks = server.chunks()
    chunk = {k: np.concatenate([c[k] for c in chunks]) for k in ("dist_inputs", "policy_actions", "logp",
                                                                  "policy_versions")}
    expected_inputs = OBS @ server.weights + server.bias
    np.testing.assert_allclose(chunk["dist_inputs"], np.tile(expected_inputs, (400, 1)), rtol=1e-5)
    reference = Categorical().logp(chunk["dist_inputs"], chunk["policy_actions"])
    np.testing.assert_allclose(chunk["logp"], reference, rtol=1e-6, atol=1e-7)
    assert chunk["policy_actions"].tolist() == actions
    p1 = np.exp(Categorical().logp(expected_inputs[None], np.array([1])))[0]
    assert abs(np.mean(actions) - p1) < 0.08  # sampled with the right probabilities
    assert chunk["policy_versions"].tolist() == [2] * 400


def test_local_deterministic_and_log_action() -> None:
    server = FakeServer()
    with local_client(server) as client:
        episode = client.start_episode()
        assert client.get_action(episode, OBS, deterministic=True) == 0  # bias favours action 0
        client.log_action(episode, OBS, 1)
        client.end_episode(episode, OBS)
        assert client.flush(5)
    chunk = server.chunks()[0]
    assert chunk["policy_actions"].tolist() == [0, 1]
    np.testing.assert_allclose(chunk["logp"], Categorical().logp(chunk["dist_inputs"], np.array([0, 1])),
                               rtol=1e-6)


def test_local_policy_refresh_uses_etag_and_swaps() -> None:
    server = FakeServer()
    with local_client(server, update_interval=3600) as client:
        assert client.policy_version == 1
        client.update_policy_weights()  # unchanged: 304
        assert client.policy_version == 1
        server.publish(np.zeros((4, 2), np.float32), np.array([-5.0, 5.0], np.float32))
        client.update_policy_weights()
        assert client.policy_version == 2
        episode = client.start_episode()
        assert client.get_action(episode, OBS, deterministic=True) == 1


def test_background_refresh_never_blocks_get_action() -> None:
    server = FakeServer()
    with local_client(server, update_interval=0.05) as client:
        server.policy_gate = threading.Event()  # the next policy download hangs until released
        server.publish(np.zeros((4, 2), np.float32), np.array([-5.0, 5.0], np.float32))
        deadline = time.monotonic() + 5
        requests = server.policy_requests
        while server.policy_requests == requests and time.monotonic() < deadline:
            time.sleep(0.01)  # test-side wait for the refresher to be inside the request
        episode = client.start_episode()
        start = time.perf_counter()
        for _ in range(100):
            client.get_action(episode, OBS)
        assert time.perf_counter() - start < 0.5
        assert client.policy_version == 1  # still acting with the old version, unblocked
        server.policy_gate.set()
        while client.policy_version != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.policy_version == 2
        assert client.get_action(episode, OBS, deterministic=True) == 1


# -- the http.client act path on a real socket ----------------------------------------------

@pytest.fixture
def socket_server() -> Any:
    fake = FakeServer(token="tok")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, content = fake.handle(self.command, self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/msgpack")
            self.send_header("Content-Length", str(len(content)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_remote_mode_over_a_real_socket(socket_server: Any) -> None:
    fake, address = socket_server
    with PolicyClient(address, token="tok", max_chunk_steps=2) as client:
        episode = client.start_episode()
        for _ in range(5):
            assert client.get_action(episode, OBS) == 1
            client.log_returns(episode, 1.0)
        client.end_episode(episode, OBS)
        assert client.flush(5)
        assert client.stats.steps_acknowledged == 5
        assert client.stats.time_blocked_s > 0
    assert len(fake.act_requests) == 5 and sum(len(c["rewards"]) for c in fake.chunks()) == 5


def test_act_errors_on_the_fast_path_are_mapped(socket_server: Any) -> None:
    fake, address = socket_server
    with PolicyClient(address, token="tok") as client:
        episode = client.start_episode()
        fake.token = "rotated"
        with pytest.raises(AuthenticationError):
            client.get_action(episode, OBS)


def test_experience_body_is_byte_identical_to_the_protocol_vector() -> None:
    from pathlib import Path

    from agentsdk_client._uploader import _Item

    raw = (Path(__file__).parent / "vectors" / "experience_request.msgpack").read_bytes()
    message = decode(raw)
    uploader = Uploader(lambda body: None, client_id=message["client_id"], max_chunks=8, max_body_bytes=1 << 20)
    items = []
    for chunk in message["chunks"]:
        item = _Item(0, len(chunk["rewards"]), chunk)
        item.data = encode(chunk)
        items.append(item)
    assert uploader._body(message["batch_id"], items) == raw
    uploader.close(1)
