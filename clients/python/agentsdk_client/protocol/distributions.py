"""Action distributions in numpy, matching RLlib's torch ones.

The policy network outputs *distribution inputs* (RLlib's ACTION_DIST_INPUTS);
this module turns them into actions and log-probabilities exactly as RLlib's
TorchCategorical / TorchMultiCategorical / TorchDiagGaussian would, so the
learner's importance ratios start at 1. ``Sampler`` is the one place where
actions are drawn: the server (remote act) and the client (local mode) both
use it, so the same inputs and seed give the same actions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .policy_form import from_policy_actions, to_policy_actions
from .spaces import Box, Discrete, MultiBinary, MultiDiscrete, Space

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# Up to this many choices, one Categorical row is sampled on Python floats: for a
# single observation that is several times faster than the numpy path.
PY_CATEGORICAL_MAX = 32


def sample_categorical_row(
    logits: list[float], rng: np.random.Generator, deterministic: bool
) -> tuple[int, float]:
    """(index, logp) for one row of logits, by inverse CDF on Python floats."""
    top = max(logits)
    weights = [math.exp(z - top) for z in logits]
    total = sum(weights)
    if deterministic:
        index = logits.index(top)
    else:
        u = rng.random() * total
        index, last, acc = 0, len(weights) - 1, weights[0]
        while acc <= u and index < last:
            index += 1
            acc += weights[index]
    return index, logits[index] - top - math.log(total)


class ActionDistribution:
    """Sampling and log-probs for one action space, on [B, D] distribution inputs."""

    name: str

    def sample(self, inputs: np.ndarray, rng: np.random.Generator, deterministic: bool) -> np.ndarray:
        raise NotImplementedError

    def logp(self, inputs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Categorical(ActionDistribution):
    name = "Categorical"

    def sample(self, inputs, rng, deterministic):
        if deterministic:
            return inputs.argmax(axis=-1).astype(np.int64)
        # Gumbel-max: one draw per logit, no normalisation needed.
        gumbel = -np.log(-np.log(rng.random(inputs.shape)))
        return (inputs + gumbel).argmax(axis=-1).astype(np.int64)

    def logp(self, inputs, actions):
        logp = _log_softmax(inputs.astype(np.float64))
        return logp[np.arange(len(actions)), actions].astype(np.float32)


class MultiCategorical(ActionDistribution):
    name = "MultiCategorical"

    def __init__(self, nvec: np.ndarray) -> None:
        self.splits = np.cumsum(nvec)[:-1]
        self.parts = [Categorical() for _ in nvec]

    def sample(self, inputs, rng, deterministic):
        chunks = np.split(inputs, self.splits, axis=-1)
        return np.stack(
            [c.sample(x, rng, deterministic) for c, x in zip(self.parts, chunks, strict=True)], axis=-1
        )

    def logp(self, inputs, actions):
        chunks = np.split(inputs, self.splits, axis=-1)
        return sum(c.logp(x, actions[:, i]) for i, (c, x) in enumerate(zip(self.parts, chunks, strict=True)))


class DiagGaussian(ActionDistribution):
    name = "DiagGaussian"

    def sample(self, inputs, rng, deterministic):
        mean, log_std = np.split(inputs, 2, axis=-1)
        if deterministic:
            return mean.astype(np.float32)
        return (mean + np.exp(log_std) * rng.standard_normal(mean.shape)).astype(np.float32)

    def logp(self, inputs, actions):
        mean, log_std = np.split(inputs.astype(np.float64), 2, axis=-1)
        z = (actions - mean) / np.exp(log_std)
        return (-0.5 * z * z - log_std - _HALF_LOG_2PI).sum(axis=-1).astype(np.float32)


class SquashedGaussian(ActionDistribution):
    """SAC on Box actions: a Gaussian squashed by tanh into [-1, 1] (RLlib's TorchSquashedGaussian)."""

    name = "SquashedGaussian"
    MIN_LOG_STD, MAX_LOG_STD = -5.0, 2.0  # RLlib clips log_std to these
    EDGE = 1e-6  # scoring a given action: clip it this far inside (-1, 1) before atanh

    def sample(self, inputs, rng, deterministic):
        mean, log_std = np.split(inputs, 2, axis=-1)
        if deterministic:
            return np.tanh(mean).astype(np.float32)
        std = np.exp(np.clip(log_std, self.MIN_LOG_STD, self.MAX_LOG_STD))
        return np.tanh(mean + std * rng.standard_normal(mean.shape)).astype(np.float32)

    def logp(self, inputs, actions):
        mean, log_std = np.split(inputs.astype(np.float64), 2, axis=-1)
        log_std = np.clip(log_std, self.MIN_LOG_STD, self.MAX_LOG_STD)
        x = np.arctanh(np.clip(actions.astype(np.float64), -1.0 + self.EDGE, 1.0 - self.EDGE))
        z = (x - mean) / np.exp(log_std)
        normal = -0.5 * z * z - log_std - _HALF_LOG_2PI
        # log(1 - tanh(x)^2) in RLlib's numerically stable form.
        jacobian = 2.0 * (math.log(2.0) - x - np.logaddexp(0.0, -2.0 * x))
        return (normal - jacobian).sum(axis=-1).astype(np.float32)


class EpsilonGreedy(ActionDistribution):
    """DQN: the greedy action over Q-values, a uniform one with probability ``epsilon``."""

    name = "EpsilonGreedy"

    def __init__(self, epsilon: float) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        self.epsilon = float(epsilon)

    def sample(self, inputs, rng, deterministic):
        greedy = inputs.argmax(axis=-1).astype(np.int64)
        if deterministic or self.epsilon == 0.0:
            return greedy
        explore = rng.random(len(inputs)) < self.epsilon
        uniform = rng.integers(0, inputs.shape[-1], len(inputs))
        return np.where(explore, uniform, greedy).astype(np.int64)

    def logp(self, inputs, actions):
        n = inputs.shape[-1]
        greedy = inputs.argmax(axis=-1) == actions
        return np.log(self.epsilon / n + (1.0 - self.epsilon) * greedy).astype(np.float32)


# The names a contract or /v1/info may carry (PROTOCOL.md section 3), and the spaces each fits.
DISTRIBUTIONS = ("Categorical", "MultiCategorical", "DiagGaussian", "SquashedGaussian", "EpsilonGreedy")


def default_distribution(space: Space) -> str:
    """The distribution RLlib's default catalog picks for this action space (PPO, APPO, IMPALA)."""
    if isinstance(space, Discrete):
        return "Categorical"
    if isinstance(space, (MultiDiscrete, MultiBinary)):
        return "MultiCategorical"
    if isinstance(space, Box):
        return "DiagGaussian"
    raise ValueError(f"no action distribution for {space!r}")


def distribution_for(
    space: Space, name: str | None = None, epsilon: float | None = None
) -> ActionDistribution:
    """The named distribution (default: RLlib's default for the space); ValueError if it does not fit."""
    name = name or default_distribution(space)
    fits = {
        "Categorical": isinstance(space, Discrete),
        "MultiCategorical": isinstance(space, (MultiDiscrete, MultiBinary)),
        "DiagGaussian": isinstance(space, Box),
        "SquashedGaussian": isinstance(space, Box) and space.bounded,
        "EpsilonGreedy": isinstance(space, Discrete),
    }
    if name not in fits:
        raise ValueError(
            f"unknown action distribution {name!r}; this client knows {', '.join(DISTRIBUTIONS)} "
            "(a newer server? upgrade the client)"
        )
    if not fits[name]:
        raise ValueError(f"distribution {name} does not fit action space {space!r}")
    if name == "Categorical":
        return Categorical()
    if name == "MultiCategorical":
        nvec = space.nvec.ravel() if isinstance(space, MultiDiscrete) else np.full(space.flat_size, 2)
        return MultiCategorical(nvec)
    if name == "DiagGaussian":
        return DiagGaussian()
    if name == "SquashedGaussian":
        return SquashedGaussian()
    if epsilon is None:
        raise ValueError("EpsilonGreedy needs the policy's epsilon (the contract's 'epsilon')")
    return EpsilonGreedy(epsilon)


class Sampler:
    """Draws actions (or scores given ones) for one action space from [B, D] distribution inputs."""

    def __init__(
        self, action_space: Space, rng: np.random.Generator, distribution: ActionDistribution | None = None
    ) -> None:
        self.space = action_space
        self.distribution = distribution or distribution_for(action_space)
        self.rng = rng
        # One row of a small Categorical: sampled on Python floats (see PY_CATEGORICAL_MAX).
        self._row = (
            type(self.distribution) is Categorical
            and isinstance(action_space, Discrete)
            and action_space.n <= PY_CATEGORICAL_MAX
        )

    def sample_one(self, dist_inputs: np.ndarray, deterministic: bool) -> tuple[Any, Any, float]:
        """(env action, policy-form action, logp) for [1, D] inputs, as plain values."""
        if self._row:
            index, logp = sample_categorical_row(dist_inputs[0].tolist(), self.rng, deterministic)
            return index + self.space.start, index, logp  # type: ignore[attr-defined]
        policy = self.distribution.sample(dist_inputs, self.rng, deterministic)
        logp = float(self.distribution.logp(dist_inputs, policy)[0])
        env = self.space.unstack(from_policy_actions(self.space, policy, 1), 1)[0]
        return env, policy[0], logp

    def sample(self, dist_inputs: np.ndarray, deterministic: bool) -> tuple[Any, np.ndarray, np.ndarray]:
        """(env-action batch, policy-form actions, logp [B]) for [B, D] inputs."""
        n = len(dist_inputs)
        if n == 1 and self._row:
            _, index, logp = self.sample_one(dist_inputs, deterministic)
            policy = np.array([index], np.int64)
            return policy + self.space.start, policy, np.array([logp], np.float32)  # type: ignore[attr-defined]
        policy = self.distribution.sample(dist_inputs, self.rng, deterministic)
        return from_policy_actions(self.space, policy, n), policy, self.distribution.logp(dist_inputs, policy)

    def evaluate(self, dist_inputs: np.ndarray, env_actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """(policy-form actions, logp [B]) of a batch of env actions the app chose itself."""
        policy = to_policy_actions(self.space, env_actions, len(dist_inputs))
        return policy, self.distribution.logp(dist_inputs, policy)
