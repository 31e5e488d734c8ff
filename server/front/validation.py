"""Checks every request body against PROTOCOL.md and the announced spaces.

Each function takes a decoded msgpack value and returns plain, checked data,
or raises a 422 ApiError whose message names the field. Nothing unchecked
reaches inference or the learner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agentsdk_client.protocol.chunk import ExperienceChunk
from agentsdk_client.protocol.constants import DEFAULT_AGENT_ID, MAX_ID_CHARS
from agentsdk_client.protocol.limits import Limits
from agentsdk_client.protocol.policy_form import policy_action_layout
from agentsdk_client.protocol.spaces import Space, SpaceError

from .errors import invalid


@dataclass
class ActRequest:
    n: int
    flat_obs: np.ndarray
    deterministic: bool
    agent_ids: list[str] | None
    actions: Any | None  # env-form actions to evaluate instead of choosing


def _field(body: dict[str, Any], name: str, path: str, kinds: tuple[type, ...], required: bool = True) -> Any:
    if name not in body:
        if required:
            raise invalid(f"{path}{name}: required field is missing")
        return None
    value = body[name]
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        names = " or ".join(k.__name__ for k in kinds)
        raise invalid(f"{path}{name}: expected {names}, got {type(value).__name__}")
    return value


def _array(value: Any, path: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype != np.dtype(dtype) or value.shape != shape:
        got = (
            f"an array of shape {list(value.shape)} and dtype {value.dtype}"
            if isinstance(value, np.ndarray)
            else f"a {type(value).__name__}"
        )
        raise invalid(f"{path}: expected an array of shape {list(shape)} and dtype {dtype}, got {got}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise invalid(f"{path}: contains NaN or infinity")
    return value


def _batch(space: Space, value: Any, n: int, path: str) -> Any:
    try:
        return space.check_batch(value, n, path)
    except SpaceError as exc:
        raise invalid(str(exc)) from exc


def _batch_size(value: Any, path: str) -> int:
    """N of a batch: the first axis of its first array leaf."""
    while isinstance(value, (dict, list)) and value:
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        return int(value.shape[0])
    raise invalid(f"{path}: expected a batch (arrays with a leading batch axis), see PROTOCOL.md 'Batches'")


def _str_list(value: Any, n: int, path: str) -> list[str]:
    if not isinstance(value, list) or len(value) != n or not all(isinstance(v, str) for v in value):
        raise invalid(f"{path}: expected a list of {n} strings")
    return value


def parse_act(body: Any, obs_space: Space, act_space: Space, limits: Limits) -> ActRequest:
    if not isinstance(body, dict):
        raise invalid("body: expected a map with 'observations'")
    raw = _field(body, "observations", "", (np.ndarray, dict, list))
    n = _batch_size(raw, "observations")
    if not 1 <= n <= limits.max_batch:
        raise invalid(f"observations: batch of {n}; send 1 to {limits.max_batch} per request")
    obs = _batch(obs_space, raw, n, "observations")
    deterministic = _field(body, "deterministic", "", (bool,), required=False) or False
    agent_ids = body.get("agent_ids")
    if agent_ids is not None:
        agent_ids = _str_list(agent_ids, n, "agent_ids")
    actions = body.get("actions")
    if actions is not None:
        actions = _batch(act_space, actions, n, "actions")
    return ActRequest(n, obs_space.flatten_batch(obs, n), bool(deterministic), agent_ids, actions)


def _policy_actions(value: Any, act_space: Space, t: int, path: str) -> np.ndarray:
    dtype, shape, high = policy_action_layout(act_space)
    actions = _array(value, path, dtype.name, (t, *shape))
    if high is not None and ((actions < 0) | (actions >= high)).any():
        raise invalid(f"{path}: policy-form actions must lie in [0, n) for {act_space!r}")
    return actions


def parse_chunk(
    chunk: Any, i: int, obs_space: Space, act_space: Space, dist_size: int, limits: Limits
) -> ExperienceChunk:
    p = f"chunks[{i}]."
    if not isinstance(chunk, dict):
        raise invalid(f"chunks[{i}]: expected a map")
    episode_id = _field(chunk, "episode_id", p, (str,))
    if not 1 <= len(episode_id) <= MAX_ID_CHARS:
        raise invalid(f"{p}episode_id: must be 1 to {MAX_ID_CHARS} characters")
    agent_id = _field(chunk, "agent_id", p, (str,), required=False) or DEFAULT_AGENT_ID
    chunk_index = _field(chunk, "chunk_index", p, (int,))
    if chunk_index < 0:
        raise invalid(f"{p}chunk_index: must be >= 0")
    rewards = chunk.get("rewards")
    t = rewards.shape[0] if isinstance(rewards, np.ndarray) and rewards.ndim == 1 else -1
    rewards = _array(rewards, f"{p}rewards", "float32", (max(t, 0),))
    if not 1 <= t <= limits.max_chunk_steps:
        raise invalid(f"{p}rewards: a chunk holds 1 to {limits.max_chunk_steps} steps, got {t}")
    obs = _batch(
        obs_space, _field(chunk, "observations", p, (np.ndarray, dict, list)), t + 1, f"{p}observations"
    )
    return ExperienceChunk(
        episode_id=episode_id,
        agent_id=agent_id,
        chunk_index=chunk_index,
        observations=obs,
        policy_actions=_policy_actions(chunk.get("policy_actions"), act_space, t, f"{p}policy_actions"),
        rewards=rewards,
        terminated=_field(chunk, "terminated", p, (bool,)),
        truncated=_field(chunk, "truncated", p, (bool,)),
        logp=_array(chunk.get("logp"), f"{p}logp", "float32", (t,)),
        dist_inputs=_array(chunk.get("dist_inputs"), f"{p}dist_inputs", "float32", (t, dist_size)),
        policy_versions=_array(chunk.get("policy_versions"), f"{p}policy_versions", "int64", (t,)),
    )


@dataclass
class ExperienceRequest:
    batch_id: str
    client_id: str
    chunks: list[ExperienceChunk]
    steps: int


def parse_experience(
    body: Any, obs_space: Space, act_space: Space, dist_size: int, limits: Limits
) -> ExperienceRequest:
    if not isinstance(body, dict):
        raise invalid("body: expected a map with 'batch_id' and 'chunks'")
    batch_id = _field(body, "batch_id", "", (str,))
    if not 1 <= len(batch_id) <= MAX_ID_CHARS:
        raise invalid(f"batch_id: must be 1 to {MAX_ID_CHARS} characters")
    client_id = _field(body, "client_id", "", (str,), required=False) or ""
    raw = _field(body, "chunks", "", (list,))
    if not 1 <= len(raw) <= limits.max_chunks:
        raise invalid(f"chunks: send 1 to {limits.max_chunks} chunks per request, got {len(raw)}")
    chunks = [parse_chunk(c, i, obs_space, act_space, dist_size, limits) for i, c in enumerate(raw)]
    return ExperienceRequest(batch_id, client_id[:MAX_ID_CHARS], chunks, sum(c.steps for c in chunks))
