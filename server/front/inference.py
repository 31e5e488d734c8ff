"""Remote inference: the published ONNX policy, run with onnxruntime, batched.

The server acts with exactly the artifact clients download (GET /v1/policy),
opened with the same session recipe and sampled with the same ``Sampler``
the Python client uses locally, so remote and local actions agree.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentsdk_client.protocol.constants import ONNX_INPUT
from agentsdk_client.protocol.distributions import Sampler
from agentsdk_client.protocol.onnx_policy import PolicyContract, open_session


@dataclass(frozen=True)
class Policy:
    """One published policy version. Immutable: a swap is one attribute assignment."""

    version: int
    onnx: bytes
    contract: dict[str, Any]  # JSON form, as embedded in the model
    session: Any  # onnxruntime.InferenceSession
    sampler: Sampler  # this version's distribution (DQN's epsilon changes with the version)
    run_id: str = ""

    @property
    def etag(self) -> str:
        # The run id tells apart a version re-trained after a crash and --resume.
        return f'"v{self.version}-{self.run_id}"'


def load_policy(
    version: int, onnx: bytes, contract: dict[str, Any], rng: np.random.Generator, run_id: str = ""
) -> Policy:
    """A published version, ready to serve: its session and its sampler (sharing ``rng``)."""
    parsed = PolicyContract.from_json(contract)
    sampler = Sampler(parsed.action_space, rng, parsed.action_distribution())
    return Policy(version, onnx, contract, open_session(onnx), sampler, run_id)


class BatchedInference:
    """Runs concurrent act requests through one session call.

    A request that finds no batch forming starts one; if other act requests
    are in flight it yields to the event loop once so they can join, then runs
    the whole batch inline (a CartPole-sized run takes microseconds, less than
    a thread hop). A lone request never waits.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)  # shared by every version's sampler
        self.policy: Policy | None = None
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self.active = 0  # act requests being handled (the app counts them)
        self.batches_run = 0
        self.observations_run = 0

    async def dist_inputs(self, flat_obs: np.ndarray) -> tuple[np.ndarray, Policy]:
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
            out = policy.session.run(None, {ONNX_INPUT: obs})[0]
        except Exception as exc:  # surfaced as a 500 on every request of the batch
            for _, future in pending:
                future.set_exception(exc)
            return
        self.batches_run += 1
        self.observations_run += len(obs)
        start = 0
        for flat, future in pending:
            future.set_result((out[start : start + len(flat)], policy))
            start += len(flat)

    @staticmethod
    def act(
        policy: Policy, dist_inputs: np.ndarray, deterministic: bool, given_actions: Any | None
    ) -> dict[str, Any]:
        """Choose (or evaluate given) actions from ``policy``'s distribution inputs: the act answer's fields."""
        if given_actions is None:
            actions, policy_actions, logp = policy.sampler.sample(dist_inputs, deterministic)
        else:
            actions = given_actions
            policy_actions, logp = policy.sampler.evaluate(dist_inputs, given_actions)
        return {
            "actions": actions,
            "policy_actions": policy_actions,
            "logp": logp,
            "dist_inputs": np.ascontiguousarray(dist_inputs, np.float32),
        }
