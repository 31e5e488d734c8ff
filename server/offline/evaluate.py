"""``agentsdk evaluate --offline DIR --policy FILE.onnx``: a candidate's return, estimated from logged data.

RLlib's off-policy estimators (``ray.rllib.offline.estimators``: step-wise
ImportanceSampling and WeightedImportanceSampling) reweight each recorded
episode by how likely the candidate was to act as the app did. The two
probabilities they need come from:

- the candidate: ``OnnxTargetPolicy`` runs the exported ONNX with the protocol
  core's session recipe and scores the recorded (policy-form) actions with the
  distribution its contract names, exactly as a client would sample them;
- the behaviour: the recorded ``action_logp``.

One adaptation: RLlib normalises the weighted estimator's weights at step t
over the episodes still running at t. With survival rewards (CartPole's +1 a
step) that gives every candidate the behaviour's own value. So an episode
that *terminated* is continued in its absorbing state (reward 0, weight kept)
up to the longest episode, and the normalisation counts it; truncated and
unfinished episodes are left as they are. Plain importance sampling is
unchanged by this (the added rewards are 0).

Imports Ray's RLlib (no ``ray.init``: the estimators are plain numpy here).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from ray.rllib.offline.estimators import ImportanceSampling, WeightedImportanceSampling
from ray.rllib.policy.sample_batch import SampleBatch, concat_samples

from agentsdk_client.protocol.onnx_policy import open_session, read_contract

from .recording import Recording, RecordingError, open_recording, read_table
from .train import OfflineError

PADDING = "agentsdk_absorbing"  # rows added after a terminated episode's end


class OnnxTargetPolicy:
    """The candidate policy, as RLlib's estimators see it: probabilities of recorded actions."""

    def __init__(self, onnx_bytes: bytes, recording: Recording, name: str = "policy") -> None:
        try:
            self.session = open_session(onnx_bytes)
            self.contract = read_contract(self.session)
            self.distribution = self.contract.action_distribution()
        except Exception as exc:  # onnxruntime's own errors, a missing or foreign contract
            raise OfflineError(f"{name} is not an agentsdk policy: {exc}") from exc
        if not self.contract.fits(recording.observation_space, recording.action_space):
            raise OfflineError(
                f"{name} acts on observations {self.contract.observation_space!r}, actions "
                f"{self.contract.action_space!r}, but {recording.path} was recorded for {recording.describe()}; "
                "evaluate it on a recording of its own spaces"
            )

    def action_prob(self, flat_obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """pi(action | obs) for each row (a density for continuous actions)."""
        c = self.contract
        dist_inputs = self.session.run([c.output_name], {c.input_name: flat_obs.astype(np.float32)})[0]
        return np.exp(self.distribution.logp(dist_inputs, actions).astype(np.float64))


class _OnnxTarget:
    """Mixed into RLlib's estimators: the target's probabilities from the ONNX policy, absorbing states."""

    policy: OnnxTargetPolicy

    def compute_action_probs(self, batch: SampleBatch) -> np.ndarray:
        probs = np.ones(batch.count)
        real = ~batch[PADDING]
        if real.any():
            probs[real] = self.policy.action_prob(
                batch[SampleBatch.OBS][real], batch[SampleBatch.ACTIONS][real]
            )
        return probs

    def on_after_split_batch_by_episode(self, all_episodes: list[SampleBatch]) -> list[SampleBatch]:
        horizon = max(e.count for e in all_episodes)
        return [_absorb(e, horizon) for e in all_episodes]


class OnnxImportanceSampling(_OnnxTarget, ImportanceSampling):
    pass


class OnnxWeightedImportanceSampling(_OnnxTarget, WeightedImportanceSampling):
    pass


ESTIMATORS = {
    "ImportanceSampling": OnnxImportanceSampling,
    "WeightedImportanceSampling": OnnxWeightedImportanceSampling,
}


def _absorb(episode: SampleBatch, horizon: int) -> SampleBatch:
    """A terminated episode, continued in its absorbing state (reward 0, probability ratio 1)."""
    extra = horizon - episode.count
    if extra <= 0 or not episode["terminateds"][-1]:
        return episode
    pad = {
        key: np.repeat(episode[key][-1:], extra, axis=0)
        for key in (SampleBatch.OBS, SampleBatch.ACTIONS, SampleBatch.EPS_ID, "terminateds")
    }
    pad[SampleBatch.REWARDS] = np.zeros(extra, episode[SampleBatch.REWARDS].dtype)
    pad["action_prob"] = np.ones(extra)
    pad[PADDING] = np.ones(extra, bool)
    return concat_samples([episode, SampleBatch(pad)])


def episodes_batch(recording: Recording) -> tuple[SampleBatch, int]:
    """Every recorded step, episode by episode in step order, as RLlib's estimators take it; and the
    number of episodes. OfflineError when behaviour log-probs are missing."""
    table = read_table(recording)
    if not table.num_rows:
        raise OfflineError(f"{recording.path} holds no steps")
    eps_id = np.asarray(table.column("eps_id").to_pylist(), dtype=object)
    order = np.lexsort((table.column("t").to_numpy(), eps_id))
    logp = table.column("action_logp").to_numpy(zero_copy_only=False).astype(np.float64)
    missing = int(np.isnan(logp).sum())
    if missing:
        raise OfflineError(
            f"{missing:,} of {len(logp):,} recorded steps have no behaviour log-prob, which importance "
            "sampling needs; record with log_action(..., logp=...) (or let the policy act)"
        )
    obs = np.stack(table.column("obs").to_numpy(zero_copy_only=False)).astype(np.float32)
    actions = table.column("actions").to_numpy(zero_copy_only=False)
    if actions.dtype == object:  # a list column (MultiDiscrete, MultiBinary, Box)
        actions = np.stack(actions)
    batch = SampleBatch(
        {
            SampleBatch.EPS_ID: eps_id[order],
            SampleBatch.OBS: obs[order],
            SampleBatch.ACTIONS: actions[order],
            SampleBatch.REWARDS: table.column("rewards").to_numpy().astype(np.float64)[order],
            "terminateds": table.column("terminateds").to_numpy(zero_copy_only=False)[order],
            "action_prob": np.exp(logp)[order],
            PADDING: np.zeros(table.num_rows, bool),
        }
    )
    return batch, len(set(eps_id))


def estimate(recording: Recording, target: OnnxTargetPolicy, gamma: float = 1.0) -> dict[str, Any]:
    """Each estimator's v_target (mean, std over episodes, 95% interval) and the behaviour's v_behavior."""
    batch, episodes = episodes_batch(recording)
    out: dict[str, Any] = {"episodes": episodes, "steps": batch.count, "gamma": gamma, "estimates": {}}
    for name, cls in ESTIMATORS.items():
        result = cls(target, gamma=gamma).estimate(batch.copy(), split_batch_by_episode=True)
        mean, std = float(result["v_target"]), float(result["v_target_std"])
        half = 1.96 * std / math.sqrt(episodes)
        out["estimates"][name] = {"v_target": mean, "std": std, "ci95": [mean - half, mean + half]}
        out["behaviour"] = {"v_behavior": float(result["v_behavior"]), "std": float(result["v_behavior_std"])}
    return out


def run_offline_evaluation(directory: str, policy: str, gamma: float = 1.0, as_json: bool = False) -> int:
    def say(text: str) -> None:
        print(f"[agentsdk evaluate {time.strftime('%H:%M:%S')}] {text}", flush=True)

    if not 0.0 <= gamma <= 1.0:
        raise OfflineError(f"--gamma {gamma}: a discount lies in [0, 1]")
    try:
        recording = open_recording(directory)
        onnx_bytes = Path(policy).read_bytes()
    except RecordingError as exc:
        raise OfflineError(str(exc)) from exc
    except OSError as exc:
        raise OfflineError(f"--policy {policy}: cannot read it: {exc}") from exc
    target = OnnxTargetPolicy(onnx_bytes, recording, policy)
    try:
        result = estimate(recording, target, gamma)
    except RecordingError as exc:
        raise OfflineError(str(exc)) from exc
    c = target.contract
    result["policy"] = {
        "path": policy,
        "algorithm": c.algorithm,
        "version": c.policy_version,
        "distribution": c.distribution,
    }
    if as_json:
        print(json.dumps(result), flush=True)
        return 0
    b = result["behaviour"]
    say(
        f"{recording.path}: {result['steps']:,} steps in {result['episodes']:,} episodes; behaviour policy's "
        f"mean return {b['v_behavior']:.2f} (std {b['std']:.2f}), gamma {gamma:g}"
    )
    say(f"{policy}: {c.algorithm} policy version {c.policy_version}, acts with {c.distribution}")
    for name, e in result["estimates"].items():
        low, high = e["ci95"]
        say(
            f"  {name:<27} estimated return {e['v_target']:9.2f}  std {e['std']:9.2f}  95% CI [{low:.2f}, {high:.2f}]"
        )
    return 0
