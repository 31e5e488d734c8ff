"""What each supported RLlib algorithm needs from the external path (no Ray import here).

The front sizes its inbox and applies the policy-lag rule from this table;
the trainer applies the training defaults. Adding an algorithm starts here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    max_policy_lag: int
    """Versions behind the newest still trained on (-1: any age). On-policy PPO takes the previous one."""
    train_batch: int
    """RLlib's default train batch (steps), used when the config sets none: sizes the inbox."""
    training: dict[str, Any] = field(default_factory=dict)
    """What agentsdk changes from RLlib's defaults, and why, in the comment beside it."""


ALGORITHMS: dict[str, AlgorithmSpec] = {
    # The hyperparameters of RLlib's external-env example, so figures compare.
    "PPO": AlgorithmSpec(
        "PPO", max_policy_lag=1, train_batch=4000, training={"num_epochs": 10, "vf_loss_coeff": 0.01}
    ),
}


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The spec of a supported algorithm; ValueError naming the supported ones otherwise."""
    spec = ALGORITHMS.get(name)
    if spec is None:
        raise ValueError(f"--algo {name} is not supported yet; use one of {', '.join(ALGORITHMS)}")
    return spec


def train_batch_size(name: str, training: dict[str, Any]) -> int:
    """Steps per train batch: the config's, else the algorithm's default."""
    default = algorithm_spec(name).train_batch
    return int(training.get("train_batch_size_per_learner", training.get("train_batch_size", default)))
