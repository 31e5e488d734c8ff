"""Remote inference: the published ONNX policy, run with onnxruntime, batched.

The server acts with exactly the artifact clients download (GET /v1/policy),
through the same numpy distributions the Python client uses locally, so
remote and local actions agree.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from agentsdk_client._distributions import PY_CATEGORICAL_MAX, distribution_for, sample_categorical_row
from agentsdk_client._spaces import Discrete, Space, from_policy_actions, to_policy_actions


@dataclass(frozen=True)
class Policy:
    """One published policy version. Immutable: a swap is one attribute assignment."""

    version: int
    onnx: bytes
    contract: dict[str, Any]
    session: ort.InferenceSession
    run_id: str = ""

    @property
    def etag(self) -> str:
        # The run id tells apart a version re-trained after a crash and --resume.
        return f'"v{self.version}-{self.run_id}"'


def load_policy(version: int, onnx: bytes, contract: dict[str, Any], run_id: str = "") -> Policy:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    return Policy(version, onnx, contract, session, run_id)


class BatchedInference:
    """Runs concurrent act requests through one session call.

    A request that finds no batch forming starts one; if other act requests
    are in flight it yields to the event loop once so they can join, then runs
    the whole batch inline (a CartPole-sized run takes microseconds, less than
    a thread hop). A lone request never waits.
    """

    def __init__(self, action_space: Space, seed: int | None = None) -> None:
        self.action_space = action_space
        self.distribution = distribution_for(action_space)
        self.python_categorical = isinstance(action_space, Discrete) and action_space.n <= PY_CATEGORICAL_MAX
        self.policy: Policy | None = None
        self.rng = np.random.default_rng(seed)
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self.active = 0  # act requests being handled (the app counts them)
        self.batches_run = 0
        self.observations_run = 0

    async def dist_inputs(self, flat_obs: np.ndarray) -> tuple[np.ndarray, int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.append((flat_obs, future))
        if len(self._pending) == 1:
            if self.active > 1:  # other act requests are in flight: let them join this batch
                await asyncio.sleep(0)
            self._run(self._pending)
            self._pending = []
        return await future

    def _run(self, pending: list[tuple[np.ndarray, asyncio.Future]]) -> None:
        policy = self.policy
        assert policy is not None, "the app answers 503 until the first policy is published"
        obs = pending[0][0] if len(pending) == 1 else np.concatenate([p[0] for p in pending])
        try:
            out = policy.session.run(None, {"obs": obs})[0]
        except Exception as exc:  # surfaced as a 500 on every request of the batch
            for _, future in pending:
                future.set_exception(exc)
            return
        self.batches_run += 1
        self.observations_run += len(obs)
        start = 0
        for flat, future in pending:
            future.set_result((out[start:start + len(flat)], policy.version))
            start += len(flat)

    def act(self, dist_inputs: np.ndarray, deterministic: bool, given_actions: Any | None) -> dict[str, Any]:
        """Choose (or evaluate given) actions from distribution inputs."""
        n = len(dist_inputs)
        if given_actions is None and n == 1 and self.python_categorical:
            index, logp = sample_categorical_row(dist_inputs[0].tolist(), self.rng, deterministic)
            policy_actions = np.array([index], np.int64)
            return {
                "actions": policy_actions + self.action_space.start,
                "policy_actions": policy_actions,
                "logp": np.array([logp], np.float32),
                "dist_inputs": dist_inputs,
            }
        if given_actions is None:
            policy_actions = self.distribution.sample(dist_inputs, self.rng, deterministic)
            actions = from_policy_actions(self.action_space, policy_actions, n)
        else:
            policy_actions = to_policy_actions(self.action_space, given_actions, n)
            actions = given_actions
        return {
            "actions": actions,
            "policy_actions": policy_actions,
            "logp": self.distribution.logp(dist_inputs, policy_actions),
            "dist_inputs": np.ascontiguousarray(dist_inputs, np.float32),
        }
