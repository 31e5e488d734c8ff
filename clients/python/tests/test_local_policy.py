"""Unit tests of local inference (``inference_mode="local"``): the ONNX policy, its refresh, its samples.

No server process: the fake server of ``_helpers`` serves a tiny linear ONNX
policy built with ``onnx.helper``; onnxruntime runs it in the client.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from agentsdk_client import PolicyClient
from agentsdk_client.protocol.distributions import Categorical

from ._helpers import OBS, FakeServer, client_for


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
    chunk = {
        k: np.concatenate([c[k] for c in chunks])
        for k in ("dist_inputs", "policy_actions", "logp", "policy_versions")
    }
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
    np.testing.assert_allclose(
        chunk["logp"], Categorical().logp(chunk["dist_inputs"], np.array([0, 1])), rtol=1e-6
    )


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
