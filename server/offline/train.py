"""``agentsdk train --offline DIR --algo BC|MARWIL|CQL --out OUT``: RLlib's offline API on a recording.

Reads top to bottom: ``check`` (one line and no Ray when the recording or the
algorithm does not fit) -> ``start_ray`` (local, at most two CPUs) ->
``build_config`` (the recording's files through ``config.offline_data``, with
the least parallelism that works on two cores) -> ``train`` -> ``save`` (an
RLlib checkpoint, and ``policy.onnx`` with its contract through the trainer's
own ``export.py``).

The module is the one the online server would build (``DefaultModelConfig(vf_share_layers=True)``;
BC takes PPO's default module, as MARWIL already does), so ``agentsdk serve
--init-from OUT/checkpoint`` can start PPO, APPO or IMPALA from a BC or MARWIL
run, and SAC from a CQL run.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsdk_client.protocol.distributions import default_distribution
from agentsdk_client.protocol.policy_form import check_trainable_action_space
from agentsdk_client.protocol.spaces import Box, Space, SpaceError

from .recording import EXTRA_COLUMNS, Recording, RecordingError, arrow_schema, open_recording

CHECKPOINT = "checkpoint"
POLICY_FILE = "policy.onnx"


class OfflineError(ValueError):
    """The run cannot start or finish; the message is one line naming the problem and the fix."""


@dataclass(frozen=True)
class OfflineSpec:
    name: str
    bounded_box_only: bool = False
    """CQL's policy is SAC's: a squashed Gaussian, so actions must be a bounded Box."""
    training: dict[str, Any] = field(default_factory=dict)
    """What agentsdk changes from RLlib's defaults, and why, in the comment beside it."""

    def distribution(self, action_space: Space) -> str:
        """What the exported policy acts with: SAC's squashed Gaussian for CQL, else the space's default."""
        return "SquashedGaussian" if self.name == "CQL" else default_distribution(action_space)

    def check(self, action_space: Space) -> None:
        try:  # BC and MARWIL take any action space with a policy form
            check_trainable_action_space(action_space)
        except SpaceError as exc:
            raise OfflineError(f"the recording's {exc}") from exc
        if self.bounded_box_only and not (isinstance(action_space, Box) and action_space.bounded):
            raise OfflineError(
                f"--algo {self.name} needs a bounded Box action space, but the recording's actions are "
                f"{action_space!r}; use --algo BC or MARWIL for this recording"
            )


# One gradient step on one batch per iteration (RLlib's own BC CartPole example), so
# --iterations counts updates; the rate is that example's.
_ONE_BATCH = {"dataset_num_iters_per_learner": 1, "train_batch_size_per_learner": 1024}

OFFLINE_ALGORITHMS: dict[str, OfflineSpec] = {
    "BC": OfflineSpec("BC", training={**_ONE_BATCH, "lr": 0.0008}),
    "MARWIL": OfflineSpec("MARWIL", training={**_ONE_BATCH, "lr": 0.0008}),
    # SAC's learning rates are actor_lr, critic_lr and alpha_lr; RLlib refuses a plain lr.
    # CQL's training step reads the data as an iterator (RLlib 2.60 hands it one batch otherwise,
    # which its learner cannot take): ten updates of 256 steps per iteration.
    "CQL": OfflineSpec(
        "CQL",
        bounded_box_only=True,
        training={"dataset_num_iters_per_learner": 10, "train_batch_size_per_learner": 256, "lr": None},
    ),
}


# ---- stages ------------------------------------------------------------------------------


def check(directory: str, algo: str, env: str | None = None) -> tuple[Recording, OfflineSpec]:
    """The recording and the algorithm's spec, or OfflineError (one line) before anything heavy starts."""
    spec = OFFLINE_ALGORITHMS.get(algo)
    if spec is None:
        raise OfflineError(f"--algo {algo} cannot train offline; use one of {', '.join(OFFLINE_ALGORITHMS)}")
    try:
        recording = open_recording(directory)
    except RecordingError as exc:
        raise OfflineError(str(exc)) from exc
    if not recording.files():
        raise OfflineError(
            f"{directory} holds no steps yet; record some, or stop the server so its files close"
        )
    if env is not None:
        expect_env_spaces(recording, env)
    spec.check(recording.action_space)
    return recording, spec


def expect_env_spaces(recording: Recording, env: str) -> None:
    """OfflineError unless the recording was made for the spaces of gymnasium env ``env``."""
    from ..env_spaces import spaces_of_env

    try:
        obs_space, act_space = spaces_of_env(env)
    except Exception as exc:  # an unknown id: say it
        raise OfflineError(f"--env {env}: {type(exc).__name__}: {exc}") from exc
    if (obs_space, act_space) != (recording.observation_space, recording.action_space):
        raise OfflineError(
            f"{recording.path} was recorded for {recording.describe()}, but {env} has observations "
            f"{obs_space!r}, actions {act_space!r}; record {env} into its own directory, or drop --env"
        )


def start_ray() -> None:
    """A private local Ray: two CPUs at most, quiet, Ray Data without progress bars."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    import ray
    import torch

    cpus = min(2, os.cpu_count() or 1)
    torch.set_num_threads(cpus)  # the learner runs here; the data actor is idle once the data is mapped
    # RLlib's and Ray Data's deprecation notes and INFO lines are about their internals, not
    # about this run: keep the output to what agentsdk says (errors still show).
    warnings.filterwarnings("ignore", module=r"ray(\.|$)")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("ray.data", "ray.rllib", "ray._common.deprecation"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
        configure_logging=False,
    )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def build_config(recording: Recording, spec: OfflineSpec, training: dict[str, Any], seed: int | None):
    """The AlgorithmConfig: policy-form spaces, the recording's files, one data actor, no env."""
    import pyarrow.json as pa_json
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
    from ray.rllib.algorithms.registry import ALGORITHMS as RLLIB_ALGORITHMS
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from ..trainer.algorithm import policy_action_space, policy_observation_space

    algo_cls, _ = RLLIB_ALGORITHMS[spec.name]()
    if recording.storage == "parquet":  # the directory itself: read_parquet takes only *.parquet
        paths, read_method, read_kwargs = [str(recording.path)], "read_parquet", {}
    else:  # the files (read_json would also read the metadata); JSON has no float32: the explicit
        # schema makes the observations what the policy sees
        schema = arrow_schema(recording.observation_space, recording.action_space)
        paths, read_method = [str(f) for f in recording.files()], "read_json"
        read_kwargs = {"parse_options": pa_json.ParseOptions(explicit_schema=schema)}
    config = (
        algo_cls.get_default_config()
        .environment(
            observation_space=policy_observation_space(recording.observation_space),
            action_space=policy_action_space(recording.action_space),
        )
        .learners(num_learners=0)
        .offline_data(
            input_=paths,
            input_read_method=read_method,
            input_read_method_kwargs={"override_num_blocks": 1, **read_kwargs},
            # agentsdk's own columns are not model outputs: naming them in the schema keeps them
            # out of the learner's batch.
            input_read_schema={name: name for name in EXTRA_COLUMNS},
            # One pre-learner actor on one CPU, the other CPU for reading: works on two cores.
            map_batches_kwargs={"concurrency": 1, "num_cpus": 1, "max_restarts": 0},
            iter_batches_kwargs={"prefetch_batches": 1},
        )
        .rl_module(model_config=DefaultModelConfig(vf_share_layers=True))
        .debugging(seed=seed)
    )
    if spec.name == "BC":  # PPO's module (MARWIL's default): its weights load into PPO, APPO, IMPALA
        config.rl_module(rl_module_spec=RLModuleSpec(module_class=DefaultPPOTorchRLModule))
    # No env and no env runner: the recording is the only data. RLlib's BC and MARWIL configs say
    # so with this flag; CQL's (SAC's) does not (RLlib 2.60) and would build an env runner without env.
    config._is_online = False
    merged = {**spec.training, **training}
    model_config = merged.pop("model_config", None)
    if model_config:
        config.rl_module(model_config=DefaultModelConfig(**model_config))
    config.update_from_dict(merged)
    return config


def train(algo, iterations: int, say) -> dict[str, Any]:
    """``iterations`` calls of ``algo.train()``; the last learner results."""
    from ray.rllib.utils.metrics import LEARNER_RESULTS

    learner: dict[str, Any] = {}
    every = max(iterations // 10, 1)
    for i in range(1, iterations + 1):
        result = algo.train()
        learner = result.get(LEARNER_RESULTS, {}).get("default_policy", {})
        if i % every == 0 or i == iterations:
            say(f"iter {i:>5} | {_losses(learner)}")
    return learner


def save(algo, recording: Recording, spec: OfflineSpec, out: Path) -> tuple[Path, Path]:
    """OUT/checkpoint (RLlib) and OUT/policy.onnx (contract embedded, as the server exports it)."""
    from ..trainer.export import export_onnx, make_contract

    out.mkdir(parents=True, exist_ok=True)
    checkpoint = Path(algo.save_to_path(str((out / CHECKPOINT).resolve())))
    contract = make_contract(
        recording.observation_space,
        recording.action_space,
        algo.iteration,
        spec.name,
        spec.distribution(recording.action_space),
    )
    policy = out / POLICY_FILE
    policy.write_bytes(export_onnx(load_module(checkpoint), contract, "pi"))
    return checkpoint, policy


def module_path(checkpoint: Path) -> Path:
    """Where an algorithm checkpoint keeps its (single) RLModule."""
    from ray.rllib.core import (
        COMPONENT_LEARNER,
        COMPONENT_LEARNER_GROUP,
        COMPONENT_RL_MODULE,
        DEFAULT_MODULE_ID,
    )

    return checkpoint / COMPONENT_LEARNER_GROUP / COMPONENT_LEARNER / COMPONENT_RL_MODULE / DEFAULT_MODULE_ID


def load_module(checkpoint: Path):
    """The trained RLModule, read back from the checkpoint (an offline run has no env runner to ask)."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    return RLModule.from_checkpoint(str(module_path(checkpoint)))


# ---- the whole run -----------------------------------------------------------------------


def run_offline_training(
    directory: str,
    algo: str,
    out: str,
    iterations: int = 200,
    training: dict[str, Any] | None = None,
    env: str | None = None,
    seed: int | None = None,
) -> int:
    def say(text: str) -> None:
        print(f"[agentsdk train {time.strftime('%H:%M:%S')}] {text}", flush=True)

    if iterations < 1:
        raise OfflineError(f"--iterations {iterations}: train at least one iteration")
    recording, spec = check(directory, algo, env)
    rows = _count_rows(recording)
    say(f"{recording.path}: {rows:,} steps of {recording.describe()} in {len(recording.files())} file(s)")
    started = time.monotonic()
    start_ray()
    import ray

    algo_obj = None
    try:
        config = build_config(recording, spec, training or {}, seed)
        algo_obj = config.build_algo()
        say(
            f"training {spec.name} for {iterations} iterations of {config.train_batch_size_per_learner} steps"
        )
        learner = train(algo_obj, iterations, say)
        checkpoint, policy = save(algo_obj, recording, spec, Path(out))
    finally:
        if algo_obj is not None:
            algo_obj.stop()
        # The dataset iterator must close while Ray is still up.
        del algo_obj
        gc.collect()
        ray.shutdown()
    say(
        f"done in {time.monotonic() - started:.0f} s ({_losses(learner)}): checkpoint {checkpoint}, "
        f"policy {policy} (acts with {spec.distribution(recording.action_space)})"
    )
    return 0


def parse_training(text: str | None) -> dict[str, Any]:
    """--training JSON -> a dict; OfflineError naming the problem otherwise."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise OfflineError(
            f"--training {text!r}: not JSON ({exc}); e.g. --training '{{\"lr\": 0.0003}}'"
        ) from exc
    if not isinstance(value, dict):
        raise OfflineError(f'--training {text!r}: expected a JSON object, e.g. {{"lr": 0.0003}}')
    return value


def _count_rows(recording: Recording) -> int:
    if recording.storage == "parquet":
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in recording.files())
    return sum(sum(1 for line in f.open() if line.strip()) for f in recording.files())


def _losses(learner: dict[str, Any]) -> str:
    keys = ("total_loss", "policy_loss", "vf_loss", "cql_loss", "qf_loss")
    parts = [f"{k} {float(learner[k]):.4f}" for k in keys if k in learner]
    return ", ".join(parts) or "no loss reported"
