"""RLlib's algorithms through the external path: each one learns from real client processes.

APPO, IMPALA and DQN on CartPole-v1 to a mean return of 150, SAC on Pendulum-v1
to well above a random policy (about -1,200), each with one local-mode and one
remote-mode app; every step the apps played reaches the server exactly once.
Combinations an algorithm cannot train fail at once, with one line naming the
problem and the fix. (PPO's run is tests/test_e2e_learning.py.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_client

MULTI_DISCRETE = json.dumps({"type": "MultiDiscrete", "nvec": [3, 2]})
OPEN_BOX = json.dumps({"type": "Box", "low": [float("-inf")], "high": [float("inf")], "dtype": "float32"})
BOX_OBS = json.dumps({"type": "Box", "low": [-1, -1], "high": [1, 1], "dtype": "float32"})


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--env", "Pendulum-v1", "--algo", "DQN"], "DQN needs a Discrete action space"),
        (
            ["--observation-space", BOX_OBS, "--action-space", MULTI_DISCRETE, "--algo", "SAC"],
            "SAC needs a Box or Discrete action space",
        ),
        (
            ["--observation-space", BOX_OBS, "--action-space", OPEN_BOX, "--algo", "SAC"],
            "give the Box finite low and high",
        ),
        (["--env", "CartPole-v1", "--algo", "NOPE"], "use one of PPO, APPO, IMPALA, DQN, SAC"),
    ],
)
def test_a_combination_the_algorithm_cannot_train_fails_at_once_in_one_line(args, says):
    proc = subprocess.run(
        [sys.executable, "-m", "agentsdk.cli", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def learn(start_server, env_id: str, algo: str, threshold: float, timeout: float, *server_args: str) -> None:
    """One local and one remote app play ``env_id`` until the mean return reaches ``threshold``."""
    server = start_server("--env", env_id, "--algo", algo, "--seed", "1", *server_args)
    clients = [
        run_client(server.address, "local", "--env", env_id, seed=1),
        run_client(server.address, "remote", "--env", env_id, seed=2),
    ]
    best, deadline = float("-inf"), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and best < threshold:
            time.sleep(2)
            assert all(c.poll() is None for c in clients), [
                c.stdout.read() for c in clients if c.poll() is not None
            ]
            if server.metric("agentsdk_training_iterations_total") > 0:
                best = max(best, server.metric("agentsdk_episode_return_mean"))
    finally:
        for c in clients:
            c.send_signal(signal.SIGTERM)
        outputs = [c.communicate(timeout=120)[0] for c in clients]
    assert best >= threshold, f"{algo}: mean return only reached {best}\n{server.output()[-3000:]}"

    # Exactly once: what the apps played was acknowledged, or the client says why not (dropped at
    # its memory bound, or still queued when it stopped: a replay learner consumes slowly and the
    # server pushes back; these apps have no spool_dir).
    played = acknowledged = dropped = undelivered = 0
    for out in outputs:
        match = re.search(
            r"played (\d+) steps, server acknowledged (\d+), dropped by the client (\d+), undelivered (\d+)",
            out,
        )
        assert match, out
        played += int(match.group(1))
        acknowledged += int(match.group(2))
        dropped += int(match.group(3))
        undelivered += int(match.group(4))
    assert acknowledged == server.metric("agentsdk_steps_ingested_total")
    assert played == acknowledged + dropped + undelivered


# Hyperparameters a user would pick for a quick CartPole / Pendulum run; the learning
# parity benchmark (benchmarks/learn_parity.py) uses RLlib's defaults on both sides.
FAST_DQN = json.dumps(
    {
        "lr": 0.0005,
        "num_steps_sampled_before_learning_starts": 500,
        "epsilon": [[0, 1.0], [4000, 0.02]],
        "target_network_update_freq": 250,
        "n_step": 3,
        "min_sample_timesteps_per_iteration": 500,
        "training_intensity": 8,
    }
)
FAST_SAC = json.dumps(
    {
        "actor_lr": 0.0002,
        "critic_lr": 0.0008,
        "alpha_lr": 0.0009,
        "train_batch_size_per_learner": 64,
        "num_steps_sampled_before_learning_starts": 256,
        "min_sample_timesteps_per_iteration": 500,
        "model_config": {"fcnet_hiddens": [64, 64]},
    }
)


@pytest.mark.e2e
@pytest.mark.learning
@pytest.mark.parametrize("algo", ["APPO", "IMPALA"])
def test_appo_and_impala_learn_cartpole_from_client_processes(start_server, algo):
    learn(start_server, "CartPole-v1", algo, 150, 600)


@pytest.mark.e2e
@pytest.mark.learning
def test_dqn_learns_cartpole_from_client_processes(start_server):
    learn(start_server, "CartPole-v1", "DQN", 150, 900, "--training", FAST_DQN)


@pytest.mark.e2e
@pytest.mark.learning
def test_sac_learns_pendulum_from_client_processes(start_server):
    learn(start_server, "Pendulum-v1", "SAC", -700, 900, "--training", FAST_SAC)


SCRIPTED_APP = """
import sys, gymnasium as gym
from agentsdk_client import PolicyClient
steps = 0
env = gym.make("CartPole-v1")
with PolicyClient(sys.argv[1], inference_mode=sys.argv[2]) as client:
    obs, _ = env.reset(seed=0)
    while steps < int(sys.argv[3]):
        episode = client.start_episode()
        done = truncated = False
        while not (done or truncated):
            action = int(obs[2] + 0.5 * obs[3] > 0)  # the app's own logic: push toward the lean
            client.log_action(episode, obs, action)
            obs, reward, done, truncated, _ = env.step(action)
            client.log_returns(episode, reward)
            steps += 1
        client.end_episode(episode, obs, truncated=truncated and not done)
        obs, _ = env.reset()
    client.flush(timeout=60)
    sys.stdout.write(f"played {steps} acknowledged {client.stats.steps_acknowledged}\\n")
"""


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["local", "remote"])
def test_the_apps_own_actions_reach_dqns_replay_buffer(start_server, mode):
    training = json.dumps(
        {"num_steps_sampled_before_learning_starts": 100, "min_sample_timesteps_per_iteration": 100}
    )
    server = start_server(
        "--env", "CartPole-v1", "--algo", "DQN", "--inbox-batches", "1000", "--training", training
    )
    app = subprocess.run(
        [sys.executable, "-c", SCRIPTED_APP, server.address, mode, "1500"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    match = re.search(r"played (\d+) acknowledged (\d+)", app.stdout)
    assert match and match.group(1) == match.group(2), app.stdout + app.stderr
    played = int(match.group(1))
    assert server.metric("agentsdk_steps_ingested_total") == played
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and server.metric("agentsdk_replay_steps_added_total") < played:
        time.sleep(1)
    # Every logged step was handed to the learner and stored in DQN's replay buffer (none stale).
    assert server.metric("agentsdk_steps_stale_total") == 0
    assert server.metric("agentsdk_steps_delivered_total") == played
    assert server.metric("agentsdk_replay_steps_added_total") == played, server.output()[-2000:]
