"""Bridges between gymnasium spaces, the wire spaces and what RLlib trains on.

The wire spaces themselves (spec, checks, flattening) live in
``agentsdk_client._spaces``; this module only converts.
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np

from agentsdk_client import _spaces as ws


def from_gym(space: gym.Space) -> ws.Space:
    """A gymnasium space -> the wire space the server announces."""
    if isinstance(space, gym.spaces.Box):
        return ws.Box(space.low, space.high, space.shape, space.dtype)
    if isinstance(space, gym.spaces.Discrete):
        return ws.Discrete(int(space.n), int(space.start))
    if isinstance(space, gym.spaces.MultiDiscrete):
        return ws.MultiDiscrete(space.nvec, space.start)
    if isinstance(space, gym.spaces.MultiBinary):
        return ws.MultiBinary(space.n)
    if isinstance(space, gym.spaces.Dict):
        return ws.Dict([(k, from_gym(s)) for k, s in space.spaces.items()])
    if isinstance(space, gym.spaces.Tuple):
        return ws.Tuple([from_gym(s) for s in space.spaces])
    raise ValueError(f"gymnasium space {space} has no agentsdk equivalent")


def spaces_of_env(env_id: str) -> tuple[ws.Space, ws.Space]:
    """The (observation, action) spaces of a registered gymnasium env."""
    env = gym.make(env_id)
    try:
        return from_gym(env.observation_space), from_gym(env.action_space)
    finally:
        env.close()


def from_json_arg(text: str) -> ws.Space:
    """A space given on the command line as a JSON spec (PROTOCOL.md, arrays as lists)."""
    spec = json.loads(text)

    def arrays(node):
        if isinstance(node, dict):
            out = {k: arrays(v) for k, v in node.items()}
            if out.get("type") == "Box":
                dtype = out.get("dtype", "float32")
                shape = out.get("shape") or list(np.shape(out["low"]))
                out["low"] = np.broadcast_to(np.asarray(out["low"], dtype), shape).copy()
                out["high"] = np.broadcast_to(np.asarray(out["high"], dtype), shape).copy()
                out.setdefault("shape", shape)
                out.setdefault("dtype", dtype)
            if out.get("type") == "MultiDiscrete":
                out["nvec"] = np.asarray(out["nvec"], np.int64)
                if "start" in out:
                    out["start"] = np.asarray(out["start"], np.int64)
            return out
        if isinstance(node, list):
            return [arrays(v) for v in node]
        return node

    return ws.space_from_spec(ws.spec_from_json(arrays(spec)))


def policy_observation_space(space: ws.Space) -> gym.spaces.Box:
    """What the RLModule sees: the flattened float32 observation."""
    return gym.spaces.Box(-np.inf, np.inf, (space.flat_size,), np.float32)


def policy_action_space(space: ws.Space) -> gym.Space:
    """What the RLModule emits and trains on (PROTOCOL.md 'policy form')."""
    ws.check_trainable_action_space(space)
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
