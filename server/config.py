"""ServerConfig: the one source of truth for every server option and its default.

Options come from four places, later ones winning: the defaults below, a
``--config`` JSON file, ``AGENTSDK_*`` environment variables, the command
line. One parser (``parse_value``) reads all of them, so a malformed value
is an error naming where it came from and what is accepted, never a silent
default (``AGENTSDK_RESUME=ture`` stops the server with that message).
Field docstrings (``metadata["help"]``) double as the CLI's help text.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsdk_client.protocol.limits import Limits


def opt(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class ServerConfig:
    env: str | None = opt(
        None, "Registered gymnasium env id whose spaces the server announces, e.g. CartPole-v1."
    )
    observation_space: str | None = opt(
        None, "Observation space as a JSON spec (PROTOCOL.md), instead of --env."
    )
    action_space: str | None = opt(None, "Action space as a JSON spec (PROTOCOL.md), instead of --env.")
    algo: str = opt("PPO", "RLlib algorithm to train.")
    host: str = opt("127.0.0.1", "Address to bind; 0.0.0.0 exposes the server to the network.")
    port: int = opt(9900, "TCP port to listen on.")
    token: str | None = opt(None, "Bearer token every request but /healthz must carry.")
    ssl_certfile: str | None = opt(None, "TLS certificate (PEM); with --ssl-keyfile the server speaks HTTPS.")
    ssl_keyfile: str | None = opt(None, "TLS private key (PEM).")
    checkpoint_dir: str | None = opt(None, "Directory for checkpoints and the exported policy.onnx.")
    checkpoint_every: int | None = opt(
        None, "Checkpoint every N training iterations, and at shutdown (default: per algorithm)."
    )
    resume: bool = opt(False, "Continue from the checkpoint in --checkpoint-dir, policy version included.")
    record: str | None = opt(None, "Directory to write every accepted step to, in RLlib's offline format.")
    init_from: str | None = opt(
        None, "Start online training from this checkpoint (e.g. one written by agentsdk train --offline)."
    )
    stop_iters: int | None = opt(None, "Stop after this many training iterations.")
    stop_timesteps: int | None = opt(None, "Stop after training on this many env steps.")
    stop_return: float | None = opt(None, "Stop when the mean episode return reaches this value.")
    stop_seconds: float | None = opt(None, "Stop after this many seconds of training.")
    max_body_bytes: int = opt(Limits.max_body_bytes, "Largest request body accepted (413 beyond).")
    max_batch: int = opt(Limits.max_batch, "Most observations in one /v1/act request.")
    max_chunks: int = opt(Limits.max_chunks, "Most chunks in one /v1/experience request.")
    max_chunk_steps: int = opt(Limits.max_chunk_steps, "Most steps in one experience chunk.")
    inbox_batches: float = opt(2.0, "Inbox capacity in train batches; a full inbox answers 429.")
    max_policy_lag: int | None = opt(
        None, "Versions behind the newest still trained on (default: per algorithm)."
    )
    training: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "AlgorithmConfig fields as JSON, e.g. '{\"lr\": 0.0003}'."}
    )
    seed: int | None = opt(None, "Random seed for the learner.")
    log_every: float = opt(5.0, "Seconds between progress lines.")

    @property
    def limits(self) -> Limits:
        return Limits(self.max_body_bytes, self.max_batch, self.max_chunks, self.max_chunk_steps)


class ConfigError(ValueError):
    """An option's value is malformed; the message names its source and what is accepted."""


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
# Options whose value must be at least this (the rest take any value of their type).
MINIMUM = {
    "port": 0,
    "checkpoint_every": 1,
    "stop_iters": 1,
    "stop_timesteps": 1,
    "max_body_bytes": 1,
    "max_batch": 1,
    "max_chunks": 1,
    "max_chunk_steps": 1,
    "inbox_batches": 0.01,
    "max_policy_lag": -1,
    "log_every": 0,
}


def fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(ServerConfig))


def env_var(name: str) -> str:
    return "AGENTSDK_" + name.upper()


def cli_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def kind_of(f: dataclasses.Field) -> str:
    """'str', 'int', 'float', 'bool' or 'dict' (annotations are strings here)."""
    return str(f.type).split("|")[0].split("[")[0].strip()


def _optional(f: dataclasses.Field) -> bool:
    return "None" in str(f.type)


def parse_value(f: dataclasses.Field, value: Any, source: str, *, text: bool = True) -> Any:
    """One option's value, from text (CLI, environment) or, with ``text=False``, typed JSON (config file).

    ConfigError names the source and what is accepted when the value is malformed.
    """
    kind = kind_of(f)
    if value is None and _optional(f):
        return None
    if text and isinstance(value, str) and kind != "str":
        text = value.strip()
        try:
            if kind == "bool":
                if text.lower() in TRUE_WORDS + FALSE_WORDS:
                    return text.lower() in TRUE_WORDS
                raise ValueError
            if kind == "int":
                value = int(text)
            elif kind == "float":
                value = float(text)
            elif kind == "dict":
                value = json.loads(text)
        except ValueError:
            raise ConfigError(f"{source}={value!r}: expected {_accepted(kind)}") from None
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "dict": isinstance(value, dict),
    }[kind]
    if not ok:
        raise ConfigError(f"{source}={value!r}: expected {_accepted(kind)}")
    if kind == "float":
        value = float(value)
    low = MINIMUM.get(f.name)
    if low is not None and value < low:
        raise ConfigError(f"{source}={value!r}: must be at least {low}")
    if f.name == "port" and value > 65535:
        raise ConfigError(f"{source}={value!r}: a TCP port is at most 65535")
    return value


def _accepted(kind: str) -> str:
    return {
        "bool": f"one of {', '.join(TRUE_WORDS + FALSE_WORDS)}",
        "int": "an integer",
        "float": "a number",
        "dict": 'a JSON object, e.g. {"lr": 0.0003}',
        "str": "a string",
    }[kind]


def load_config(file: str | None = None, cli: dict[str, Any] | None = None) -> ServerConfig:
    """Defaults < config file (JSON) < AGENTSDK_* environment < command line (values as typed there).

    ``cli`` maps option names to what the command line gave (None: not given).
    """
    known = {f.name: f for f in fields()}
    values: dict[str, Any] = {}
    if file:
        try:
            data = json.loads(Path(file).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--config {file}: cannot read it as JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"--config {file}: expected a JSON object of options")
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"--config {file}: unknown option(s) {unknown}; known: {sorted(known)}")
        values.update({k: parse_value(known[k], v, f"{file}: {k}", text=False) for k, v in data.items()})
    for name, f in known.items():
        raw = os.environ.get(env_var(name))
        if raw is not None:
            values[name] = parse_value(f, raw, env_var(name))
    for name, raw in (cli or {}).items():
        if raw is not None:
            values[name] = parse_value(known[name], raw, cli_flag(name))
    return ServerConfig(**values)
