"""Remote inference (the server) and local inference (the client's ONNX) agree on one policy version."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from agentsdk_client import PolicyClient, decode, encode
from agentsdk_client.protocol.onnx_policy import PolicyContract

pytestmark = pytest.mark.e2e

DICT_OBS = json.dumps(
    {
        "type": "Dict",
        "spaces": [
            ["pos", {"type": "Box", "low": [-1, -1], "high": [1, 1], "dtype": "float32"}],
            ["mode", {"type": "Discrete", "n": 3}],
            ["keys", {"type": "MultiBinary", "shape": [2]}],
        ],
    }
)
MULTI_ACT = json.dumps({"type": "MultiDiscrete", "nvec": [3, 2]})

CASES = {
    "cartpole-discrete": ["--env", "CartPole-v1"],
    "pendulum-box": ["--env", "Pendulum-v1"],
    "dict-obs-multidiscrete": ["--observation-space", DICT_OBS, "--action-space", MULTI_ACT],
    # Every algorithm's distribution (PROTOCOL.md section 3).
    "cartpole-appo": ["--env", "CartPole-v1", "--algo", "APPO"],
    "pendulum-impala": ["--env", "Pendulum-v1", "--algo", "IMPALA"],
    "cartpole-dqn-epsilon-greedy": ["--env", "CartPole-v1", "--algo", "DQN"],
    "pendulum-sac-squashed-gaussian": ["--env", "Pendulum-v1", "--algo", "SAC"],
    "cartpole-sac-discrete": ["--env", "CartPole-v1", "--algo", "SAC"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_remote_and_local_agree(start_server, case):
    server = start_server(*CASES[case], "--seed", "3")
    local = PolicyClient(server.address, inference_mode="local", seed=1)
    remote = PolicyClient(server.address, inference_mode="remote", seed=1)
    try:
        assert local.policy_version == remote.policy_version == 0
        space = local.observation_space
        rng = np.random.default_rng(0)
        observations = [sample(space, rng) for _ in range(100)]
        episode_l, episode_r = (
            local.start_episode(training_enabled=False),
            remote.start_episode(training_enabled=False),
        )
        for obs in observations:
            a_local = local.get_action(episode_l, obs, deterministic=True)
            a_remote = remote.get_action(episode_r, obs, deterministic=True)
            np.testing.assert_array_equal(np.asarray(a_local), np.asarray(a_remote))

        # Log-probs of the server's sampled (policy-form) actions, re-evaluated on the local ONNX outputs
        # with the distribution the policy's contract names.
        policy = decode(httpx.get(server.address + "/v1/policy", timeout=10).content)
        contract = PolicyContract.from_json(policy["contract"])
        assert contract.distribution == local.info.distribution
        distribution = contract.action_distribution()
        batch = space.stack(observations)
        answer = decode(
            httpx.post(
                server.address + "/v1/act",
                content=encode({"observations": batch}),
                headers={"Content-Type": "application/msgpack"},
            ).content
        )
        assert answer["policy_version"] == local.policy_version
        for i, obs in enumerate(observations):
            action = space_value(local.action_space, answer["actions"], i)
            _, _, _, dist_inputs, version = local._local.evaluate(obs, action)
            assert version == answer["policy_version"]
            np.testing.assert_allclose(dist_inputs, answer["dist_inputs"][i], atol=1e-5)
            logp = distribution.logp(dist_inputs[None], answer["policy_actions"][i : i + 1])[0]
            assert abs(float(logp) - float(answer["logp"][i])) < 1e-5
    finally:
        local.close()
        remote.close()


def sample(space, rng):
    from agentsdk_client import Box, Dict, Discrete, MultiBinary

    if isinstance(space, Box):
        low = np.where(np.isfinite(space.low), space.low, -3.0)
        high = np.where(np.isfinite(space.high), space.high, 3.0)
        return rng.uniform(low, high).astype(space.dtype)
    if isinstance(space, Discrete):
        return int(rng.integers(space.start, space.start + space.n))
    if isinstance(space, MultiBinary):
        return rng.integers(0, 2, space.shape).astype(np.int8)
    if isinstance(space, Dict):
        return {k: sample(s, rng) for k, s in space.spaces.items()}
    raise AssertionError(space)


def space_value(space, batch, i):
    return space.unstack(batch, len(batch))[i]


def test_local_client_picks_up_new_policy_by_long_poll(start_server):
    """A local client learns of a new version as soon as the server publishes it."""
    import time

    from conftest import run_client

    server = start_server(
        "--env",
        "CartPole-v1",
        "--training",
        '{"train_batch_size_per_learner": 400, "minibatch_size": 100, "num_epochs": 1}',
    )
    client = PolicyClient(server.address, inference_mode="local", update_interval=20.0)
    feeder = run_client(server.address, "remote", "--max-steps", "3000")
    try:
        deadline = time.monotonic() + 15
        while client.policy_version < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        # A plain poll every 20 s could not have seen version 1 within 15 s; the long poll does.
        assert client.policy_version >= 1, server.output()[-2000:]
    finally:
        feeder.terminate()
        feeder.wait(30)
        client.close()
