"""One experience chunk: T consecutive steps of one agent in one episode.

The same field names from the wire (PROTOCOL.md, ``POST /v1/experience``)
through the server's inbox and the trainer link to the RLlib episode: the
client builds these, the front validates them into these, the trainer turns
these into episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .constants import DEFAULT_POLICY_ID


@dataclass(slots=True)
class ExperienceChunk:
    episode_id: str
    agent_id: str
    chunk_index: int
    """0 for the episode's first chunk, then 1, 2, ..."""
    observations: Any
    """A batch of T+1 observations (wire form): before each step, plus the one after the last."""
    policy_actions: np.ndarray
    """Policy-form actions: int64 [T] (Discrete), int64 [T, A] or float32 [T, A]."""
    rewards: np.ndarray
    """float32 [T]."""
    terminated: bool
    truncated: bool
    logp: np.ndarray
    """float32 [T]: log-prob of each action under the acting policy."""
    dist_inputs: np.ndarray
    """float32 [T, D]: the acting policy's distribution inputs."""
    policy_versions: np.ndarray
    """int64 [T]: the policy version each action came from."""
    policy_id: str = DEFAULT_POLICY_ID
    """(1.2) The policy the agent acts with (the server's mapping of ``agent_id``)."""

    @property
    def steps(self) -> int:
        return len(self.rewards)

    def to_wire(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_wire(cls, value: dict[str, Any]) -> ExperienceChunk:
        """From a map this program wrote (inbox, trainer link); peers' chunks go through validation."""
        return cls(**{name: value[name] for name in FIELDS if name in value})


FIELDS = tuple(f.name for f in fields(ExperienceChunk))
