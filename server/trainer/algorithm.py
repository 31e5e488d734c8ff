"""Build the RLlib Algorithm whose only EnvRunner is the input reader.

What the RLModule sees is the *policy form* (PROTOCOL.md): a flat float32
observation and the policy form of the action space. Any AlgorithmConfig
field can come through the server's ``training`` option.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.registry import ALGORITHMS as RLLIB_ALGORITHMS
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

from agentsdk_client.protocol import spaces as ws
from agentsdk_client.protocol.policy_form import check_trainable_action_space

from ..algorithms import algorithm_spec
from ..config import ServerConfig
from ..link import TrainerLink
from ..policies import PolicySet
from .input_reader import ExternalInputEnvRunner


def policy_observation_space(space: ws.Space) -> gym.spaces.Box:
    """What the RLModule sees: the flattened float32 observation."""
    return gym.spaces.Box(-np.inf, np.inf, (space.flat_size,), np.float32)


def policy_action_space(space: ws.Space) -> gym.Space:
    """What the RLModule emits and trains on (PROTOCOL.md 'policy form')."""
    check_trainable_action_space(space)
    if isinstance(space, ws.Discrete):
        return gym.spaces.Discrete(space.n)
    if isinstance(space, ws.MultiDiscrete):
        return gym.spaces.MultiDiscrete(space.nvec.ravel())
    if isinstance(space, ws.MultiBinary):
        return gym.spaces.MultiDiscrete(np.full(space.flat_size, 2))
    assert isinstance(space, ws.Box)
    if space.bounded:
        return gym.spaces.Box(-1.0, 1.0, (space.flat_size,), np.float32)
    return gym.spaces.Box(space.low.ravel().astype(np.float32), space.high.ravel().astype(np.float32))


def build_algorithm(cfg: ServerConfig, policies: PolicySet, link: TrainerLink):
    """An RLlib Algorithm whose (local) EnvRunner reads experience from ``link``."""
    obs_space, act_space = policies.first.observation_space, policies.first.action_space
    spec = algorithm_spec(cfg.algo)
    if cfg.algo not in RLLIB_ALGORITHMS:
        raise ValueError(f"unknown algorithm {cfg.algo!r}; RLlib has {', '.join(sorted(RLLIB_ALGORITHMS))}")
    algo_cls, _ = RLLIB_ALGORITHMS[cfg.algo]()
    config = (
        algo_cls.get_default_config()
        .environment(
            observation_space=policy_observation_space(obs_space), action_space=policy_action_space(act_space)
        )
        .env_runners(env_runner_cls=ExternalInputEnvRunner, num_env_runners=0)
        .rl_module(model_config=DefaultModelConfig(vf_share_layers=True))
        .debugging(seed=cfg.seed)
    )
    training = {**spec.training, **cfg.training}
    model_config = training.pop("model_config", None)
    if model_config:
        config.rl_module(model_config=DefaultModelConfig(**model_config))
    # Any AlgorithmConfig field may be given; update_from_dict routes it.
    config.update_from_dict(training)
    algo = config.build_algo()
    algo.env_runner.connect(link, obs_space, per_batch=spec.on_policy)
    return algo
