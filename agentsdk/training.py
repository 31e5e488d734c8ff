"""The trainer process: RLlib learns from what clients uploaded.

Reads top to bottom: build the algorithm (its EnvRunner is our input reader),
optionally resume, then loop: train_step -> export_policy -> publish ->
checkpoint, until a stop criterion holds or the server shuts down.
It runs in its own process, started by ``agentsdk serve``; the HTTP process
never imports Ray.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from agentsdk_client._codec import decode

from .config import DEFAULT_TRAINING, ServerConfig

CHECKPOINT_SUBDIR = "checkpoint"
CHECKPOINT_INFO = "agentsdk.json"


def build_algorithm(cfg: ServerConfig, obs_space, act_space):
    """An RLlib Algorithm whose only EnvRunner is the input reader."""
    from ray.rllib.algorithms.registry import ALGORITHMS
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from agentsdk_server.input_reader import ExternalInputEnvRunner

    from .spaces import policy_action_space, policy_observation_space

    if cfg.algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {cfg.algo!r}; RLlib has {', '.join(sorted(ALGORITHMS))}")
    algo_cls, _ = ALGORITHMS[cfg.algo]()
    config = (
        algo_cls.get_default_config()
        .environment(observation_space=policy_observation_space(obs_space),
                     action_space=policy_action_space(act_space))
        .env_runners(env_runner_cls=ExternalInputEnvRunner, num_env_runners=0)
        .rl_module(model_config=DefaultModelConfig(vf_share_layers=True))
        .debugging(seed=cfg.seed)
    )
    training = {**DEFAULT_TRAINING.get(cfg.algo, {}), **cfg.training}
    model_config = training.pop("model_config", None)
    if model_config:
        config.rl_module(model_config=DefaultModelConfig(**model_config))
    # Any AlgorithmConfig field may be given; update_from_dict routes it.
    config.update_from_dict(training)
    return config.build_algo()


def latest_checkpoint(checkpoint_dir: str | None) -> Path | None:
    if not checkpoint_dir:
        return None
    path = Path(checkpoint_dir).resolve() / CHECKPOINT_SUBDIR
    return path if (path / "rllib_checkpoint.json").exists() else None


def save_checkpoint(algo, checkpoint_dir: str) -> Path:
    """Write to a fresh folder, then swap it in: a kill mid-save keeps the old one."""
    root = Path(checkpoint_dir).resolve()  # RLlib (pyarrow) wants absolute paths
    root.mkdir(parents=True, exist_ok=True)
    tmp, final, old = root / (CHECKPOINT_SUBDIR + ".tmp"), root / CHECKPOINT_SUBDIR, root / (CHECKPOINT_SUBDIR + ".old")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp))
    # The policy version this checkpoint resumes at, readable without Ray.
    (tmp / CHECKPOINT_INFO).write_text(json.dumps({"policy_version": algo.iteration}) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def stop_reason(cfg: ServerConfig, iteration: int, steps: int, ret: float | None, elapsed: float) -> str | None:
    if cfg.stop_iters is not None and iteration >= cfg.stop_iters:
        return f"reached {cfg.stop_iters} iterations"
    if cfg.stop_timesteps is not None and steps >= cfg.stop_timesteps:
        return f"trained on {steps} env steps"
    if cfg.stop_return is not None and ret is not None and ret >= cfg.stop_return:
        return f"mean return {ret:.1f} reached {cfg.stop_return:g}"
    if cfg.stop_seconds is not None and elapsed >= cfg.stop_seconds:
        return f"ran {elapsed:.0f} s"
    return None


def result_numbers(result: dict[str, Any]) -> tuple[int, float | None]:
    from ray.rllib.utils.metrics import (
        ENV_RUNNER_RESULTS,
        EPISODE_RETURN_MEAN,
        NUM_ENV_STEPS_SAMPLED_LIFETIME,
    )

    runner = result.get(ENV_RUNNER_RESULTS, {})
    ret = runner.get(EPISODE_RETURN_MEAN)
    return int(runner.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)), (None if ret is None else float(ret))


def run_trainer(conn: Connection, cfg: ServerConfig, spaces_msgpack: bytes) -> None:
    """Entry point of the trainer process."""
    # ---- plumbing: one thread for torch, the link to the HTTP process -------------------
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import torch

    torch.set_num_threads(1)
    import agentsdk_server.input_reader as input_reader
    from agentsdk_client._spaces import space_from_spec
    from agentsdk_server.trainer_link import TrainerSide, TrainingStopped

    from .export import export_onnx, make_contract

    link = TrainerSide(conn)
    input_reader.LINK = link
    try:
        specs = decode(spaces_msgpack)
        obs_space, act_space = space_from_spec(specs[0]), space_from_spec(specs[1])
        import ray

        ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 configure_logging=False)

        # ---- the algorithm --------------------------------------------------------------
        algo = build_algorithm(cfg, obs_space, act_space)
        resumed = latest_checkpoint(cfg.checkpoint_dir) if cfg.resume else None
        if resumed:
            algo.restore_from_path(str(resumed))

        def export_policy() -> None:
            version = algo.iteration
            contract = make_contract(obs_space, act_space, version, cfg.algo)
            onnx_bytes = export_onnx(algo.get_module(), contract)
            link.version = version
            link.send("policy", version=version, onnx=onnx_bytes, contract=contract)
            if cfg.checkpoint_dir:
                Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
                tmp = Path(cfg.checkpoint_dir) / "policy.onnx.tmp"
                tmp.write_bytes(onnx_bytes)
                tmp.replace(Path(cfg.checkpoint_dir) / "policy.onnx")

        export_policy()
        link.send("progress", iteration=algo.iteration, resumed=str(resumed or ""), steps=0,
                  return_mean=None, steps_per_s=0.0, elapsed=0.0)

        # ---- the loop: train_step -> export_policy -> checkpoint ---------------------------
        start = time.monotonic()
        reason = "stopped"
        last_steps, last_time = None, start
        try:
            while True:
                result = algo.train()
                steps, ret = result_numbers(result)
                export_policy()
                now = time.monotonic()
                rate = 0.0 if last_steps is None else (steps - last_steps) / max(now - last_time, 1e-9)
                last_steps, last_time = steps, now
                link.send("progress", iteration=algo.iteration, steps=steps, return_mean=ret,
                          steps_per_s=rate, elapsed=now - start)
                if cfg.checkpoint_dir and algo.iteration % max(cfg.checkpoint_every, 1) == 0:
                    save_checkpoint(algo, cfg.checkpoint_dir)
                why = stop_reason(cfg, algo.iteration, steps, ret, now - start)
                if why:
                    reason = why
                    break
        except TrainingStopped:
            reason = "server shutting down"
        if cfg.checkpoint_dir:
            save_checkpoint(algo, cfg.checkpoint_dir)
        link.send("done", reason=reason)
        algo.stop()
        ray.shutdown()
    except BaseException as exc:  # report, so the server can say why it stops
        try:
            link.send("failed", error="".join(traceback.format_exception_only(exc)).strip()
                      + "\n" + traceback.format_exc())
        except OSError:
            pass
        raise
