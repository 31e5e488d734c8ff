"""Trajectory assembly: one agent's steps in one episode, cut into wire chunks.

A step is what one ``get_action`` (or ``log_action``) produced: the observation
before it, the policy-form action, its log-prob and distribution inputs, and
the policy version. The reward of step t is everything ``log_returns`` reported
between step t and the next step (or the end of the episode).

A chunk (PROTOCOL.md, ``POST /v1/experience``) holds T steps and T+1
observations. When a chunk is full it is cut *lazily*, on the next step: only
then are its last reward and its bootstrap observation known. The next chunk
starts with that same observation, so ``observations[0]`` of chunk k+1 equals
``observations[T]`` of chunk k.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np

from ._errors import UsageError
from .protocol.chunk import ExperienceChunk
from .protocol.policy_form import policy_action_layout
from .protocol.spaces import Space


class StepStream:
    """Steps of one (episode, agent) not yet handed over as a chunk."""

    __slots__ = (
        "episode_id",
        "agent_id",
        "max_steps",
        "chunk_index",
        "_obs_space",
        "_action_dtype",
        "obs",
        "actions",
        "rewards",
        "logp",
        "dist_inputs",
        "versions",
    )

    def __init__(
        self, episode_id: str, agent_id: str, max_steps: int, obs_space: Space, action_space: Space
    ) -> None:
        self.episode_id = episode_id
        self.agent_id = agent_id
        self.max_steps = max_steps
        self.chunk_index = 0
        self._obs_space = obs_space
        self._action_dtype = policy_action_layout(action_space)[0]
        self._reset()

    def _reset(self) -> None:
        self.obs: list[Any] = []
        self.actions: list[Any] = []
        self.rewards: list[float] = []
        self.logp: list[float] = []
        self.dist_inputs: list[Any] = []
        self.versions: list[int] = []

    def __len__(self) -> int:
        return len(self.actions)

    def add_step(
        self, obs: Any, policy_action: Any, logp: float, dist_inputs: Any, version: int
    ) -> ExperienceChunk | None:
        """Record a step; returns the previous chunk if it was full (cut at ``obs``)."""
        chunk = self._cut(obs, False, False) if len(self.actions) >= self.max_steps else None
        self.obs.append(obs)
        self.actions.append(policy_action)
        self.rewards.append(0.0)
        self.logp.append(logp)
        self.dist_inputs.append(dist_inputs)
        self.versions.append(version)
        return chunk

    def add_reward(self, reward: float) -> None:
        if not self.rewards:
            raise UsageError(
                f"log_returns for agent {self.agent_id!r} of episode {self.episode_id!r} came before "
                "its first get_action/log_action; a reward belongs to the step that preceded it"
            )
        self.rewards[-1] += reward

    def finish(self, obs: Any, truncated: bool) -> ExperienceChunk | None:
        """Close the episode with its final observation; None when no step is pending."""
        if not self.actions:
            return None
        return self._cut(obs, not truncated, truncated)

    def _cut(self, last_obs: Any, terminated: bool, truncated: bool) -> ExperienceChunk:
        self.obs.append(last_obs)
        chunk = ExperienceChunk(
            episode_id=self.episode_id,
            agent_id=self.agent_id,
            chunk_index=self.chunk_index,
            observations=self._obs_space.stack(self.obs),
            policy_actions=np.asarray(self.actions, dtype=self._action_dtype),
            rewards=np.asarray(self.rewards, dtype=np.float32),
            terminated=terminated,
            truncated=truncated,
            logp=np.asarray(self.logp, dtype=np.float32),
            dist_inputs=np.asarray(self.dist_inputs, dtype=np.float32),
            policy_versions=np.asarray(self.versions, dtype=np.int64),
        )
        self.chunk_index += 1
        self._reset()
        return chunk


def check_reward(reward: Any) -> float:
    try:
        value = float(reward)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"reward must be a number, got {reward!r}") from exc
    if not math.isfinite(value):
        raise UsageError(f"reward must be finite, got {value}")
    return value


def check_logp(logp: Any) -> float:
    try:
        value = float(logp)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"logp must be a number (a log-probability), got {logp!r}") from exc
    if not (math.isfinite(value) and value <= 0.0):
        raise UsageError(f"logp must be a finite log-probability (<= 0), got {value}")
    return value


def new_episode_id(episode_id: str | None) -> str:
    """The id ``start_episode`` uses: the one given (a non-empty str) or a new UUID."""
    if episode_id is None:
        return uuid.uuid4().hex
    if not isinstance(episode_id, str) or not episode_id:
        raise UsageError(f"episode_id must be a non-empty str, got {episode_id!r}")
    return episode_id
