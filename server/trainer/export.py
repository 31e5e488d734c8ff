"""Export an RLModule's inference path to ONNX, with its contract embedded.

The graph maps the flattened observation (float32 [batch, flat_obs_size]) to the
action distribution inputs (float32 [batch, D]); sampling happens outside, in
numpy, identically on the server and in every client. The legacy exporter
(dynamo=False) takes milliseconds; the dynamo one takes about a second.
"""

from __future__ import annotations

import io
import json
import warnings

import onnx
import torch
from ray.rllib.core.columns import Columns

from agentsdk_client.protocol.constants import CONTRACT_KEY
from agentsdk_client.protocol.onnx_policy import PolicyContract
from agentsdk_client.protocol.spaces import Space

OPSET = 15  # Unity Sentis / Inference Engine documents opsets 7-15


class InferencePath(torch.nn.Module):
    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]


def make_contract(
    observation_space: Space, action_space: Space, version: int, algorithm: str
) -> PolicyContract:
    return PolicyContract.for_policy(observation_space, action_space, version, algorithm, OPSET)


def export_onnx(module: torch.nn.Module, contract: PolicyContract) -> bytes:
    """The module's inference path as ONNX bytes, contract in the metadata."""
    path = InferencePath(module).eval()
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
