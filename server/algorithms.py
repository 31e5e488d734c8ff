"""What each supported RLlib algorithm needs from the external path (no Ray import here).

The front sizes its inbox, applies the policy-lag rule and checks the action
space from this table; the trainer applies the training defaults, the
sampling mode and the export head. Adding an algorithm starts here.

Policy lag: on-policy PPO trains only on data from the current or the
previous version; APPO and IMPALA correct for lag (v-trace) within a window;
DQN and SAC learn from a replay buffer and take data of any age.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentsdk_client.protocol.distributions import default_distribution
from agentsdk_client.protocol.spaces import Box, Discrete, Space


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    max_policy_lag: int
    """Versions behind the newest still trained on (-1: any age)."""
    train_batch: int
    """RLlib's default train batch (steps), used when the config sets none: sizes the inbox."""
    on_policy: bool
    """True: the input reader hands over one train batch per policy version (PPO). False: it hands
    over RLlib's rollout fragments as they come, as an env runner would (the rest)."""
    replay: bool = False
    """Learns from a replay buffer (DQN, SAC): slow to consume, indifferent to age. The inbox then
    holds only ``inbox_batches`` train batches, so what clients send stays close to the policy."""
    export_head: str = "pi"
    """What the exported ONNX computes: "pi" (the distribution inputs) or "q" (DQN's Q-values)."""
    training: dict[str, Any] = field(default_factory=dict)
    """What agentsdk changes from RLlib's defaults, and why, in the comment beside it."""
    checkpoint_every: int = 10
    """Default of ``--checkpoint-every`` (iterations): about every 10-40 s of training."""

    def distribution(self, action_space: Space) -> str:
        """The action distribution clients sample with (PROTOCOL.md section 3)."""
        if self.name == "DQN":
            return "EpsilonGreedy"
        if self.name == "SAC" and isinstance(action_space, Box):
            return "SquashedGaussian"
        return default_distribution(action_space)

    def check_action_space(self, space: Space) -> None:
        """ValueError naming the problem and the fix when this algorithm cannot act in ``space``."""
        if self.name == "DQN" and not isinstance(space, Discrete):
            raise ValueError(f"DQN needs a Discrete action space, got {space!r}; use SAC or PPO for this one")
        if self.name == "SAC":
            if not isinstance(space, (Box, Discrete)):
                raise ValueError(
                    f"SAC needs a Box or Discrete action space, got {space!r}; use PPO for this one"
                )
            if isinstance(space, Box) and not space.bounded:
                raise ValueError(
                    f"SAC squashes actions into bounds, but {space!r} has an infinite bound; "
                    "give the Box finite low and high"
                )


# APPO and IMPALA: one iteration per learner update, so each update is a policy version
# and clients act as close to the learner as RLlib's own env runners do. With 1 s
# iterations (~16 updates each) the data was ~10 updates old and CartPole took 3x
# the env steps of RLlib in-process (BENCHMARKS.md, learning parity).
_ONE_UPDATE_PER_ITERATION = {"min_time_s_per_iteration": 0, "min_train_timesteps_per_iteration": 1}

ALGORITHMS: dict[str, AlgorithmSpec] = {
    # The hyperparameters of RLlib's external-env example, so figures compare.
    "PPO": AlgorithmSpec(
        "PPO",
        max_policy_lag=1,
        train_batch=4000,
        on_policy=True,
        training={"num_epochs": 10, "vf_loss_coeff": 0.01},
    ),
    "APPO": AlgorithmSpec(
        "APPO",
        max_policy_lag=16,
        train_batch=500,
        on_policy=False,
        training=_ONE_UPDATE_PER_ITERATION,
        checkpoint_every=200,  # iterations of ~0.1 s
    ),
    "IMPALA": AlgorithmSpec(
        "IMPALA",
        max_policy_lag=16,
        train_batch=500,
        on_policy=False,
        training=_ONE_UPDATE_PER_ITERATION,
        checkpoint_every=200,
    ),
    "DQN": AlgorithmSpec(
        "DQN", max_policy_lag=-1, train_batch=32, on_policy=False, replay=True, export_head="q"
    ),
    "SAC": AlgorithmSpec("SAC", max_policy_lag=-1, train_batch=256, on_policy=False, replay=True),
}


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The spec of a supported algorithm; ValueError naming the supported ones otherwise."""
    spec = ALGORITHMS.get(name)
    if spec is None:
        raise ValueError(f"--algo {name} is not supported; use one of {', '.join(ALGORITHMS)}")
    return spec


def train_batch_size(name: str, training: dict[str, Any]) -> int:
    """Steps per train batch: the config's, else the algorithm's default."""
    default = algorithm_spec(name).train_batch
    return int(training.get("train_batch_size_per_learner", training.get("train_batch_size", default)))
