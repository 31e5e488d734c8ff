"""Unit tests of PolicyClient against a fake server: handshake, observations, trajectory assembly, remote act.

No server process, no Ray. Most tests reach the fake server through
``httpx.MockTransport``; the last ones serve it on a real socket
(``socket_server``) to cover the http.client act path.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from agentsdk_client import AuthenticationError, PolicyClient, ServerUnavailable, UsageError, VersionMismatch
from agentsdk_client.protocol.constants import PROTOCOL_VERSION
from agentsdk_client.protocol.distributions import Categorical

from ._helpers import ACT_SPACE, OBS, OBS_SPACE, FakeServer, client_for, run_episode

# -- import hygiene ---------------------------------------------------------------------


def test_import_pulls_in_no_heavy_dependency() -> None:
    """The client and its public protocol core import neither Ray, torch, gymnasium nor onnxruntime."""
    code = (
        "import sys, agentsdk_client, agentsdk_client.protocol; "
        "heavy = [m for m in ('ray', 'torch', 'gymnasium', 'onnxruntime') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
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
    ours = re.escape(PROTOCOL_VERSION)
    with pytest.raises(VersionMismatch, match=rf"2\.0.*{ours}|{ours}.*2\.0"):
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
    assert [(c["terminated"], c["truncated"]) for c in chunks] == [
        (False, False),
        (False, False),
        (True, False),
    ]
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


# -- the http.client act path on a real socket ----------------------------------------------


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
