"""Export an RLModule's inference path to ONNX, with its contract embedded.

The graph maps the flattened observation (float32 [batch, flat_obs_size]) to the
action distribution inputs (float32 [batch, D]): the ``pi`` head's output for
PPO, APPO, IMPALA and SAC, the Q-values for DQN. Sampling happens outside, in
numpy (or C#), identically on the server and in every client, with the
distribution the contract names. The legacy exporter (dynamo=False) takes
milliseconds; the dynamo one takes about a second.
"""

from __future__ import annotations

import io
import json
import warnings

import onnx
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT

from agentsdk_client.protocol.constants import CONTRACT_KEY, DEFAULT_POLICY_ID
from agentsdk_client.protocol.onnx_policy import PolicyContract
from agentsdk_client.protocol.spaces import Space

OPSET = 15  # Unity Sentis / Inference Engine documents opsets 7-15
QF_PREDS = "qf_preds"  # the key of RLlib's DQN modules' Q-values (ray.rllib.algorithms.dqn)


class InferencePath(torch.nn.Module):
    """obs -> distribution inputs: the ``pi`` head (forward_inference), or DQN's Q-values (``q``)."""

    def __init__(self, module: torch.nn.Module, head: str) -> None:
        super().__init__()
        self.module = module
        self.head = head

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        batch = {Columns.OBS: obs}
        if self.head != "q":
            return self.module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        module = self.module
        if module.uses_dueling and module.num_atoms == 1:
            # RLlib centres the advantages with nanmean (for masked actions), which has no
            # ONNX op; without masking it equals the plain mean used here.
            features = module.encoder(batch)[ENCODER_OUT]
            advantages = module.af(features)
            return advantages - advantages.mean(dim=-1, keepdim=True) + module.vf(features)
        return module.compute_q_values(batch)[QF_PREDS]


def make_contract(
    observation_space: Space,
    action_space: Space,
    version: int,
    algorithm: str,
    distribution: str,
    epsilon: float | None = None,
    policy_id: str = DEFAULT_POLICY_ID,
) -> PolicyContract:
    return PolicyContract.for_policy(
        observation_space, action_space, version, algorithm, OPSET, distribution, epsilon, policy_id
    )


def current_epsilon(module: torch.nn.Module, env_steps: int) -> float:
    """DQN's exploration rate after ``env_steps`` sampled steps (RLlib's schedule on the module)."""
    schedule = module.epsilon_schedule
    schedule.update(env_steps)
    return float(schedule.get_current_value())


def export_onnx(module: torch.nn.Module, contract: PolicyContract, head: str = "pi") -> bytes:
    """The module's inference path as ONNX bytes, contract in the metadata."""
    path = InferencePath(module, head).eval()
    example = torch.zeros(1, contract.flat_obs_size, dtype=torch.float32)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            path,
            (example,),
            buffer,
            dynamo=False,
            opset_version=contract.opset,
            input_names=[contract.input_name],
            output_names=[contract.output_name],
            dynamic_axes={contract.input_name: {0: "batch"}, contract.output_name: {0: "batch"}},
        )
    model = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(model, {CONTRACT_KEY: json.dumps(contract.to_json())})
    return model.SerializeToString()
