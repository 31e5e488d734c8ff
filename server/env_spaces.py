"""The spaces a server announces: from a registered gymnasium env, or from JSON specs.

Runs in the front process at start-up (gymnasium, but no Ray or torch).
"""

from __future__ import annotations

import json

import gymnasium as gym

from agentsdk_client.protocol import spaces as ws
from agentsdk_client.protocol.spec import space_from_json


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


def from_json_arg(text: str, what: str = "space") -> ws.Space:
    """A space given as JSON text (PROTOCOL.md spec; bounds may be plain numbers or lists)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ws.SpaceError(f"not valid JSON ({exc})", what) from exc
    return space_from_json(value, what)
