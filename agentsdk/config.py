"""ServerConfig: the one source of truth for every server option and its default.

The CLI, a ``--config`` file and ``AGENTSDK_*`` environment variables all feed
this dataclass; nothing else holds a default. Field docstrings double as the
CLI's help text.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def opt(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass
class ServerConfig:
    env: str | None = opt(None, "Registered gymnasium env id whose spaces the server announces, e.g. CartPole-v1.")
    observation_space: str | None = opt(None, "Observation space as a JSON spec (PROTOCOL.md), instead of --env.")
    action_space: str | None = opt(None, "Action space as a JSON spec (PROTOCOL.md), instead of --env.")
    algo: str = opt("PPO", "RLlib algorithm to train.")
    host: str = opt("127.0.0.1", "Address to bind; 0.0.0.0 exposes the server to the network.")
    port: int = opt(9900, "TCP port to listen on.")
    token: str | None = opt(None, "Bearer token every request but /healthz must carry.")
    ssl_certfile: str | None = opt(None, "TLS certificate (PEM); with --ssl-keyfile the server speaks HTTPS.")
    ssl_keyfile: str | None = opt(None, "TLS private key (PEM).")
    checkpoint_dir: str | None = opt(None, "Directory for checkpoints and the exported policy.onnx.")
    checkpoint_every: int = opt(10, "Checkpoint every N training iterations (and at shutdown).")
    resume: bool = opt(False, "Continue from the checkpoint in --checkpoint-dir, policy version included.")
    stop_iters: int | None = opt(None, "Stop after this many training iterations.")
    stop_timesteps: int | None = opt(None, "Stop after training on this many env steps.")
    stop_return: float | None = opt(None, "Stop when the mean episode return reaches this value.")
    stop_seconds: float | None = opt(None, "Stop after this many seconds of training.")
    max_body_bytes: int = opt(16 * 1024 * 1024, "Largest request body accepted (413 beyond).")
    max_batch: int = opt(1024, "Most observations in one /v1/act request.")
    max_chunks: int = opt(256, "Most chunks in one /v1/experience request.")
    max_chunk_steps: int = opt(4096, "Most steps in one experience chunk.")
    inbox_batches: float = opt(2.0, "Inbox capacity in train batches; a full inbox answers 429.")
    max_policy_lag: int | None = opt(None, "Versions behind the newest still trained on (default: per algorithm).")
    training: dict[str, Any] = field(default_factory=dict, metadata={
        "help": 'AlgorithmConfig fields as JSON, e.g. \'{"lr": 0.0003}\'.'})
    seed: int | None = opt(None, "Random seed for the learner.")
    log_every: float = opt(5.0, "Seconds between progress lines.")


# Algorithms whose path from external clients is built and tested.
SUPPORTED_ALGOS = ("PPO",)

# Per-algorithm policy-lag limits: on-policy PPO tolerates the previous version.
DEFAULT_POLICY_LAG = {"PPO": 1}

# What agentsdk changes from RLlib's own defaults, and why: these match the
# hyperparameters of RLlib's external-env example, so figures compare.
DEFAULT_TRAINING: dict[str, dict[str, Any]] = {
    "PPO": {"num_epochs": 10, "vf_loss_coeff": 0.01},
}


def fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(ServerConfig))


def env_var(name: str) -> str:
    return "AGENTSDK_" + name.upper()


def _parse(f: dataclasses.Field, raw: str) -> Any:
    kind = str(f.type)
    if "bool" in kind:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if "dict" in kind:
        return json.loads(raw)
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    return raw


def load_config(file: str | None = None, overrides: dict[str, Any] | None = None) -> ServerConfig:
    """Defaults < config file (JSON) < AGENTSDK_* environment < explicit overrides."""
    values: dict[str, Any] = {}
    known = {f.name: f for f in fields()}
    if file:
        data = json.loads(Path(file).read_text())
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"{file}: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        values.update(data)
    for name, f in known.items():
        raw = os.environ.get(env_var(name))
        if raw is not None:
            values[name] = _parse(f, raw)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return ServerConfig(**values)
