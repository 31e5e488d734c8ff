"""The policy form of actions: what the policy network emits and RLlib trains on.

PROTOCOL.md section 3 ("What the policy sees"): Discrete -> index ``v - start``;
MultiDiscrete / MultiBinary -> a flat vector of indices; Box -> the raw
(normalized) sample. Env actions and policy actions convert here only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .spaces import Box, Discrete, MultiBinary, MultiDiscrete, Space, SpaceError


def check_trainable_action_space(space: Space) -> None:
    if not isinstance(space, (Box, Discrete, MultiDiscrete, MultiBinary)):
        raise SpaceError(
            f"action space {space!r} cannot be trained yet: use Box, Discrete, MultiDiscrete or "
            "MultiBinary (Dict and Tuple action spaces are representable on the wire but "
            "not trainable in protocol 1)"
        )
    if isinstance(space, Box) and space.dtype.kind != "f":
        raise SpaceError(f"Box action spaces must have a float dtype, got {space!r}")


def action_dist_size(space: Space) -> int:
    """Width of the policy's distribution inputs: logits of every choice, or mean and log_std."""
    _, shape, high = policy_action_layout(space)
    return int(high.sum()) if high is not None else 2 * shape[0]


def unsquash_box(raw: np.ndarray, space: Box) -> np.ndarray:
    """Raw policy sample -> env action, as RLlib's normalize_actions does."""
    raw = raw.reshape((-1, *space.shape))
    if not space.bounded:
        return raw.astype(space.dtype, copy=False)
    env = space.low + (raw + 1.0) * (space.high - space.low) / 2.0
    return np.clip(env, space.low, space.high).astype(space.dtype, copy=False)


def squash_box(env: np.ndarray, space: Box) -> np.ndarray:
    """Env action -> raw policy value (inverse of unsquash_box inside the bounds)."""
    if not space.bounded:
        return env.astype(np.float32)
    span = np.where(space.high > space.low, space.high - space.low, 1.0)
    return (2.0 * (env - space.low) / span - 1.0).astype(np.float32)


def to_policy_actions(space: Space, actions: Any, n: int) -> np.ndarray:
    """A checked batch of env actions -> the flat batch RLlib trains on."""
    if isinstance(space, Discrete):
        return (actions - space.start).astype(np.int64)
    if isinstance(space, MultiDiscrete):
        return (actions - space.start).reshape(n, -1).astype(np.int64)
    if isinstance(space, MultiBinary):
        return actions.reshape(n, -1).astype(np.int64)
    if isinstance(space, Box):
        return squash_box(actions.reshape(n, -1), space)
    raise SpaceError(f"no policy representation for {space!r}")


def from_policy_actions(space: Space, flat: np.ndarray, n: int) -> Any:
    """The policy's flat batch -> env actions (Box: unsquashed and clipped)."""
    if isinstance(space, Discrete):
        return flat.astype(np.int64) + space.start
    if isinstance(space, MultiDiscrete):
        return flat.reshape(n, *space.shape).astype(np.int64) + space.start
    if isinstance(space, MultiBinary):
        return flat.reshape(n, *space.shape).astype(np.int8)
    if isinstance(space, Box):
        return unsquash_box(flat, space)
    raise SpaceError(f"no policy representation for {space!r}")


def policy_action_layout(space: Space) -> tuple[np.dtype, tuple[int, ...], np.ndarray | None]:
    """Dtype, per-step shape and (discrete forms) exclusive upper bounds of the policy form."""
    if isinstance(space, Discrete):
        return np.dtype(np.int64), (), np.asarray(space.n, np.int64)
    if isinstance(space, MultiDiscrete):
        return np.dtype(np.int64), (space.nvec.size,), space.nvec.ravel()
    if isinstance(space, MultiBinary):
        return np.dtype(np.int64), (space.flat_size,), np.full(space.flat_size, 2, np.int64)
    if isinstance(space, Box):
        return np.dtype(np.float32), (space.flat_size,), None
    raise SpaceError(f"no policy representation for {space!r}")
