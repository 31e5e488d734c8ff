"""The trainer process: RLlib learns from what clients uploaded.

Reads top to bottom: ``start_ray`` -> ``build_algorithm`` (its EnvRunner is the
input reader) -> optionally ``restore`` (or ``--init-from``: ``offline/warm_start.py``)
-> loop ``train_step`` -> ``export_policy`` -> publish -> checkpoint, until a stop criterion holds or
the front asks it to stop. ``agentsdk serve`` spawns it (``run_trainer``);
this module imports Ray and torch only inside that function, so the front
can name the entry point without importing them.
"""

from __future__ import annotations

import os
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from agentsdk_client.protocol.codec import decode

from ..config import ServerConfig
from ..link import TrainerLink, TrainingStopped
from ..policies import PolicySet


def stop_reason(
    cfg: ServerConfig, iteration: int, steps: int, ret: float | None, elapsed: float
) -> str | None:
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
    """(env steps trained on so far, mean episode return or None) from a train() result."""
    from ray.rllib.utils.metrics import (
        ENV_RUNNER_RESULTS,
        EPISODE_RETURN_MEAN,
        NUM_ENV_STEPS_SAMPLED_LIFETIME,
    )

    runner = result.get(ENV_RUNNER_RESULTS, {})
    ret = runner.get(EPISODE_RETURN_MEAN)
    return int(runner.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)), (None if ret is None else float(ret))


def replay_steps_added(result: dict[str, Any]) -> int:
    """Env steps added to the replay buffer so far (DQN, SAC; 0 for the others)."""
    from ray.rllib.utils.metrics import NUM_ENV_STEPS_ADDED_LIFETIME, REPLAY_BUFFER_RESULTS

    return int(result.get(REPLAY_BUFFER_RESULTS, {}).get(NUM_ENV_STEPS_ADDED_LIFETIME, 0))


def start_ray() -> None:
    """A private local Ray for this trainer: one CPU, quiet."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray
    import torch

    torch.set_num_threads(1)  # two threads beside a busy front: one update 0.5 s -> 1.9 s (DESIGN.md)
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
        configure_logging=False,
    )


def export_policies(algo, link: TrainerLink, cfg: ServerConfig, policies: PolicySet) -> None:
    """Export every policy's module to ONNX and publish them over the link (and to --checkpoint-dir)."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    from ..algorithms import algorithm_spec
    from .checkpoints import write_policy
    from .export import current_epsilon, export_onnx, make_contract

    spec = algorithm_spec(cfg.algo)
    steps = int(algo.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0))
    published: dict[str, tuple[bytes, dict[str, Any]]] = {}
    for policy in policies.policies.values():
        module = algo.get_module(policy.policy_id)
        distribution = spec.distribution(policy.action_space)
        # DQN: the exploration rate this version's clients act with.
        epsilon = current_epsilon(module, steps) if distribution == "EpsilonGreedy" else None
        contract = make_contract(
            policy.observation_space, policy.action_space, algo.iteration, cfg.algo, distribution,
            epsilon, policy.policy_id,
        )  # fmt: skip
        published[policy.policy_id] = (export_onnx(module, contract, spec.export_head), contract.to_json())
    link.publish(algo.iteration, published)
    if cfg.checkpoint_dir:
        for policy_id, (onnx_bytes, _) in published.items():
            write_policy(cfg.checkpoint_dir, onnx_bytes, None if policies.is_single else policy_id)


def train_loop(algo, link: TrainerLink, cfg: ServerConfig, policies: PolicySet) -> str:
    """train_step -> export_policy -> progress -> checkpoint, until a stop criterion; returns why it stopped."""
    from ..algorithms import algorithm_spec
    from .checkpoints import save_checkpoint

    every = cfg.checkpoint_every or algorithm_spec(cfg.algo).checkpoint_every
    start = last_time = time.monotonic()
    last_steps: int | None = None
    try:
        while True:
            result = algo.train()
            steps, ret = result_numbers(result)
            export_policies(algo, link, cfg, policies)
            now = time.monotonic()
            rate = 0.0 if last_steps is None else (steps - last_steps) / max(now - last_time, 1e-9)
            last_steps, last_time = steps, now
            link.progress(
                iteration=algo.iteration,
                steps=steps,
                return_mean=ret,
                steps_per_s=rate,
                elapsed=now - start,
                replay_steps_added=replay_steps_added(result),
            )
            if cfg.checkpoint_dir and algo.iteration % every == 0:
                save_checkpoint(algo, cfg.checkpoint_dir)
            why = stop_reason(cfg, algo.iteration, steps, ret, now - start)
            if why:
                return why
    except TrainingStopped:
        return "server shutting down"


def run_trainer(conn: Connection, cfg: ServerConfig, policies_msgpack: bytes) -> None:
    """Entry point of the trainer process: ``policies_msgpack`` is the msgpack of ``PolicySet.to_wire()``."""
    link = TrainerLink(conn)
    try:
        policies = PolicySet.from_wire(decode(policies_msgpack))
        start_ray()
        import ray

        from .algorithm import build_algorithm
        from .checkpoints import latest_checkpoint, save_checkpoint

        algo = build_algorithm(cfg, policies, link)
        resumed = latest_checkpoint(cfg.checkpoint_dir) if cfg.resume else None
        if resumed:
            algo.restore_from_path(str(resumed))
        elif cfg.init_from:  # a run's own checkpoint wins: --init-from is where a new run starts
            from ..offline.warm_start import WarmStartError, warm_start

            try:
                warm_start(algo, cfg.init_from)
            except WarmStartError as exc:  # one line, no traceback: the fix is in the message
                link.failed(f"--init-from {cfg.init_from}: {exc}")
                algo.stop()
                ray.shutdown()
                return
        export_policies(algo, link, cfg, policies)
        link.progress(
            iteration=algo.iteration,
            resumed=str(resumed or ""),
            steps=0,
            return_mean=None,
            steps_per_s=0.0,
            elapsed=0.0,
        )

        reason = train_loop(algo, link, cfg, policies)

        if cfg.checkpoint_dir:
            save_checkpoint(algo, cfg.checkpoint_dir)
        link.done(reason)
        algo.stop()
        ray.shutdown()
    except BaseException as exc:  # report, so the front can say why it stops
        try:
            link.failed("".join(traceback.format_exception_only(exc)).strip() + "\n" + traceback.format_exc())
        except OSError:
            pass
        raise
