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
from typing import Any

import onnx
import torch
from ray.rllib.core.columns import Columns

from agentsdk_client._distributions import distribution_for
from agentsdk_client._spaces import Space, action_dist_size, spec_to_json
from agentsdk_client._version import PROTOCOL_VERSION

OPSET = 15  # Unity Sentis / Inference Engine documents opsets 7-15
INPUT_NAME = "obs"
OUTPUT_NAME = "dist_inputs"
CONTRACT_KEY = "agentsdk_contract"


class InferencePath(torch.nn.Module):
    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]


def make_contract(observation_space: Space, action_space: Space, version: int, algorithm: str) -> dict[str, Any]:
    return {
        "protocol": PROTOCOL_VERSION,
        "policy_version": version,
        "algorithm": algorithm,
        "observation_space": spec_to_json(observation_space.to_spec()),
        "action_space": spec_to_json(action_space.to_spec()),
        "distribution": distribution_for(action_space).name,
        "dist_inputs_size": action_dist_size(action_space),
        "flat_obs_size": observation_space.flat_size,
        "opset": OPSET,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
    }


def export_onnx(module: torch.nn.Module, contract: dict[str, Any]) -> bytes:
    """The module's inference path as ONNX bytes, contract in the metadata."""
    path = InferencePath(module).eval()
    example = torch.zeros(1, contract["flat_obs_size"], dtype=torch.float32)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            path, (example,), buffer, dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    model = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(model, {CONTRACT_KEY: json.dumps(contract)})
    return model.SerializeToString()
