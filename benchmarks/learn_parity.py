"""Learning parity across algorithms: the agentsdk external path beside RLlib in-process, same settings.

For each case (default all four):

    PPO  on CartPole-v1 to mean return 450
    APPO on CartPole-v1 to mean return 450
    DQN  on CartPole-v1 to mean return 150
    SAC  on Pendulum-v1 to mean return -250

one invocation runs both paths ``--runs`` times (default 3, alternating) and
prints medians of env steps and wall time to the target, each external figure
beside its in-process baseline with the ratio (targets: env steps <= 1.1x,
wall time <= 1.0x), then one markdown table.

Both paths get the SAME hyperparameters, built the way
``server/trainer/algorithm.py`` builds them: RLlib's default config for the
algorithm, ``num_env_runners=0`` (one runner samples), ``DefaultModelConfig
(vf_share_layers=True)``, ``debugging(seed=S)``, then one training dict via
``update_from_dict``: agentsdk's per-algorithm defaults (``ALGORITHMS`` in
``server/algorithms.py``), then the case's overrides (``CASES`` below), then
``--training``; a ``model_config`` key in it replaces the model config
(``DefaultModelConfig(**model_config)``) on both sides, as the server does.

(i)  external: ``agentsdk serve --env ENV --algo ALGO --stop-return T --training
     JSON --seed S --log-every 0`` (the server adds its own per-algorithm
     defaults; JSON carries the case's overrides and ``--training``) plus client
     processes ``python -m agentsdk.demo_app --mode local|remote --env ENV``
     (``--clients``, default two local-mode ones: fast games act locally). Wall
     time runs from starting the server process to its line ``training
     finished: mean return X reached T`` (start-up included); env steps are the
     trained steps (the input reader's ``num_env_steps_sampled_lifetime``) of
     the last progress line before it.
(ii) RLlib in-process: the same config with ``.environment(ENV)`` (a real
     gymnasium env on the local env runner), ``ray.init(num_cpus=2)``, in a fresh
     process per run; ``algo.train()`` until ``env_runners/episode_return_mean >=
     T``. Wall time runs from starting that process (imports, ``ray.init`` and
     build included) to that iteration; env steps are
     ``num_env_steps_sampled_lifetime`` there.

A target not reached within ``--max-seconds`` is reported as "not reached in
N s" with the best mean return seen, never as a crash.

    python benchmarks/learn_parity.py [--cases PPO,APPO,DQN,SAC] [--runs 3] [--max-seconds 300]
        [--targets PPO=450,APPO=450,DQN=150,SAC=-250] [--clients local,local] [--training JSON]
        [--seed 0] [--only external|rllib]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, load_average, machine_line  # noqa: E402

from agentsdk.launcher import ServerProcess  # noqa: E402
from agentsdk_server.algorithms import ALGORITHMS  # noqa: E402


@dataclass(frozen=True)
class Case:
    algo: str
    env: str
    target: float
    overrides: dict[str, Any] = field(default_factory=dict)
    """Training fields on top of agentsdk's per-algorithm defaults, given to both paths."""


CASES: dict[str, Case] = {
    "PPO": Case("PPO", "CartPole-v1", 450.0),
    "APPO": Case("APPO", "CartPole-v1", 450.0),
    "DQN": Case("DQN", "CartPole-v1", 150.0),
    # RLlib's SAC defaults (actor_lr 3e-5, returns smoothed over 100 episodes = 20k
    # Pendulum steps) take far longer than a benchmark run; these are the scalar
    # settings of RLlib's tuned example tuned_examples/sac/pendulum_sac.py (its
    # n_step=(2, 5) and prioritized buffer are left out: a tuple does not survive JSON).
    "SAC": Case(
        "SAC",
        "Pendulum-v1",
        -250.0,
        {
            "initial_alpha": 1.001,
            "actor_lr": 2e-4,
            "critic_lr": 8e-4,
            "alpha_lr": 9e-4,
            "target_network_update_freq": 1,
            "num_steps_sampled_before_learning_starts": 256,
            "metrics_num_episodes_for_smoothing": 5,
        },
    ),
}

NUMBER = r"-?\d[\d,]*(?:\.\d+)?"
PROGRESS = re.compile(rf"iter\s+(\d+) \| trained steps\s+([\d,]+) \| return\s+({NUMBER}|-)")
FINISHED = rf"training finished: mean return ({NUMBER}) reached"
FAILED = r"training FAILED: (.*)"


def external_training(case: Case, user: dict[str, Any]) -> dict[str, Any]:
    """What ``--training`` carries: the server applies its per-algorithm defaults under it."""
    return {**case.overrides, **user}


def full_training(case: Case, user: dict[str, Any]) -> dict[str, Any]:
    """The training dict the server ends up with (server/trainer/algorithm.py), for the in-process side."""
    return {**ALGORITHMS[case.algo].training, **external_training(case, user)}


# ---- (i) external: agentsdk serve + client processes ---------------------------------------------


def stop_clients(clients: list[subprocess.Popen], grace: float) -> None:
    for proc in clients:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in clients:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_external(
    case: Case, seed: int, max_seconds: float, modes: list[str], user: dict[str, Any], grace: float
) -> dict[str, Any]:
    server = ServerProcess(
        "--env",
        case.env,
        "--algo",
        case.algo,
        "--stop-return",
        f"{case.target:g}",
        "--training",
        json.dumps(external_training(case, user)),
        "--seed",
        str(seed),
        "--log-every",
        "0",
        capture=True,
        cwd=ROOT,
    )
    clients: list[subprocess.Popen] = []
    result: dict[str, Any] = {"ok": False, "load_start": load_average()}
    try:
        try:
            server.wait_healthy(timeout=max_seconds)
        except RuntimeError as exc:
            result["error"] = str(exc).splitlines()[0]
            return result
        result["healthy_s"] = round(time.perf_counter() - server.started, 2)
        for i, mode in enumerate(modes):
            clients.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "agentsdk.demo_app",
                        "--address",
                        server.address,
                        "--mode",
                        mode,
                        "--env",
                        case.env,
                        "--seed",
                        str(seed * 1000 + i),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    cwd=ROOT,
                )
            )
        left = max_seconds - (time.perf_counter() - server.started)
        hit = server.wait_for(rf"{FINISHED}|{FAILED}", max(left, 1.0))
        stamp = hit[0] if hit else time.perf_counter()
        progress = [m for t, line in server.lines if t <= stamp and (m := PROGRESS.search(line))]
        returns = [float(m.group(3).replace(",", "")) for m in progress if m.group(3) != "-"]
        if progress:
            result.update(
                iterations=int(progress[-1].group(1)),
                trained_steps=int(progress[-1].group(2).replace(",", "")),
            )
        result["best_return"] = max(returns) if returns else None
        if hit and hit[1].group(0).startswith("training finished"):
            result.update(ok=True, wall_s=stamp - server.started, final_return=float(hit[1].group(1)))
        elif hit:
            result["error"] = f"training FAILED: {hit[1].group(2)}"
        else:
            result["error"] = f"not reached in {max_seconds:g} s"
        result["load_end"] = load_average()
    finally:
        stop_clients(clients, grace)
        server.stop()
        stopped = re.search(r"stopped: ingested ([\d,]+) steps", server.output())
        result["server_ingested"] = int(stopped.group(1).replace(",", "")) if stopped else None
        if "error" in result and not result["error"].startswith("not reached"):
            print(server.output()[-3000:], file=sys.stderr)
    return result


# ---- (ii) RLlib in-process, the same config with a real env ---------------------------------------

RLLIB_WORKER = """
import json, signal, sys, time
t0 = time.perf_counter()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))  # exit through atexit: ray.shutdown
p = json.loads(sys.argv[1])
import ray
from ray.rllib.algorithms.registry import ALGORITHMS
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
algo_cls, _ = ALGORITHMS[p["algo"]]()
config = (algo_cls.get_default_config()
          .environment(p["env"])
          .env_runners(num_env_runners=0)
          .rl_module(model_config=DefaultModelConfig(vf_share_layers=True))
          .debugging(seed=p["seed"]))
training = dict(p["training"])
model_config = training.pop("model_config", None)
if model_config:
    config.rl_module(model_config=DefaultModelConfig(**model_config))
config.update_from_dict(training)
algo = config.build_algo()
import torch
print(json.dumps({"built_s": time.perf_counter() - t0, "torch_threads": torch.get_num_threads()}), flush=True)
while True:
    r = algo.train()
    runners = r.get("env_runners", {})
    ret = runners.get("episode_return_mean")
    steps = runners.get("num_env_steps_sampled_lifetime", r.get("num_env_steps_sampled_lifetime"))
    print(json.dumps({"iteration": algo.iteration, "return": ret, "steps": steps,
                      "t": time.perf_counter() - t0}), flush=True)
    if ret is not None and ret >= p["target"]:
        print("REACHED", flush=True)
        break
algo.stop()
ray.shutdown()
"""


def run_rllib(case: Case, seed: int, max_seconds: float, user: dict[str, Any]) -> dict[str, Any]:
    params = {
        "algo": case.algo,
        "env": case.env,
        "target": case.target,
        "seed": seed,
        "training": full_training(case, user),
    }
    result: dict[str, Any] = {"ok": False, "load_start": load_average()}
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", RLLIB_WORKER, json.dumps(params)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=ROOT,
            env={**os.environ, "RAY_DEDUP_LOGS": "0", "PYTHONUNBUFFERED": "1"},
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        last: dict[str, Any] = {}
        best: float | None = None
        try:
            while True:
                left = max_seconds - (time.perf_counter() - start)
                try:
                    line = lines.get(timeout=max(left, 0.01))
                except queue.Empty:
                    result["error"] = f"not reached in {max_seconds:g} s"
                    break
                if line is None:
                    result["error"] = f"exited with {proc.wait()} before reaching the target"
                    break
                if line.startswith("REACHED"):
                    result.update(
                        ok=True,
                        wall_s=time.perf_counter() - start,
                        iterations=last["iteration"],
                        trained_steps=int(last["steps"]),
                        final_return=float(last["return"]),
                        inner_s=round(last["t"], 2),
                    )
                    break
                if not line.startswith("{"):
                    continue
                data = json.loads(line)
                if "built_s" in data:
                    result.update(built_s=round(data["built_s"], 2), torch_threads=data["torch_threads"])
                    continue
                last = data
                if data["return"] is not None:
                    best = data["return"] if best is None else max(best, data["return"])
            result["best_return"] = best
            if not result["ok"] and last:
                result.update(iterations=last["iteration"], trained_steps=last["steps"])
            result["load_end"] = load_average()
        finally:
            if proc.poll() is None and not result["ok"]:
                proc.send_signal(signal.SIGTERM)  # the worker exits through ray.shutdown
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not result["ok"] and not result.get("error", "").startswith("not reached"):
            err.seek(0)
            print(err.read()[-3000:], file=sys.stderr)
    return result


# ---- report ----------------------------------------------------------------------------------------


def median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]], max_seconds: float) -> dict[str, Any]:
    ok = [r for r in runs if r["ok"]]
    best = [r.get("best_return") for r in runs if r.get("best_return") is not None]
    return {
        "reached": len(ok),
        "runs": len(runs),
        "steps": median([r["trained_steps"] for r in ok]),
        "wall": median([r["wall_s"] for r in ok]),
        "best": max(best) if best else None,
        "max_seconds": max_seconds,
    }


def cell(s: dict[str, Any] | None, key: str, spec: str) -> str:
    if s is None:
        return "-"
    if not s["reached"]:
        best = "-" if s["best"] is None else f"{s['best']:.1f}"
        return f"not reached in {s['max_seconds']:g} s (best {best})"
    text = format(s[key], spec)
    return text if s["reached"] == s["runs"] else f"{text} ({s['reached']}/{s['runs']} reached)"


def ratio(ext: dict[str, Any] | None, base: dict[str, Any] | None, key: str, limit: float) -> str:
    if not ext or not base or ext[key] is None or not base[key]:
        return "-"
    r = ext[key] / base[key]
    return f"{r:.2f}x ({'ok' if r <= limit else 'over'} <= {limit:g}x)"


def parse_targets(text: str) -> dict[str, float]:
    targets = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = item.partition("=")
        if name.upper() not in CASES or not value:
            raise SystemExit(f"--targets: expected ALGO=VALUE with ALGO in {', '.join(CASES)}, got {item!r}")
        targets[name.upper()] = float(value)
    return targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)} [all]")
    parser.add_argument("--runs", type=int, default=3, help="runs of each path per case; medians [3]")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="time cap per run [300]")
    parser.add_argument(
        "--targets",
        default="",
        help="mean-return targets, e.g. APPO=100,SAC=-300 [PPO=450,APPO=450,DQN=150,SAC=-250]",
    )
    parser.add_argument(
        "--clients", default="local,local", help="client modes of the external path [local,local]"
    )
    parser.add_argument(
        "--training", default="{}", help="AlgorithmConfig fields as JSON, on top, for both paths [{}]"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of run 1; run k uses seed+k-1 [0]")
    parser.add_argument("--only", choices=["external", "rllib"], default=None, help="run one path only")
    parser.add_argument(
        "--client-grace", type=float, default=5.0, help="seconds clients get after SIGTERM [5]"
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.clients.split(",") if m.strip()]
    user = json.loads(args.training)
    if not isinstance(user, dict):
        raise SystemExit("--training must be a JSON object")
    targets = parse_targets(args.targets)
    names = [n.strip().upper() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise SystemExit(f"--cases: unknown {', '.join(unknown)}; use {', '.join(CASES)}")
    cases = [replace(CASES[n], target=targets.get(n, CASES[n].target)) for n in names]

    print(machine_line(), flush=True)
    print(
        f"clients of the external path: {', '.join(modes)}; runs {args.runs}; cap {args.max_seconds:g} s/run"
    )
    summaries: list[tuple[Case, dict[str, Any] | None, dict[str, Any] | None]] = []
    for case in cases:
        print(
            f"\n== {case.algo} on {case.env} to mean return {case.target:g}; training (both paths) "
            f"{json.dumps(full_training(case, user))}, model DefaultModelConfig(vf_share_layers=True), "
            "num_env_runners=0",
            flush=True,
        )
        results: dict[str, list[dict[str, Any]]] = {"external": [], "rllib": []}
        for run in range(args.runs):
            seed = args.seed + run
            if args.only in (None, "external"):
                r = run_external(case, seed, args.max_seconds, modes, user, args.client_grace)
                results["external"].append(r)
                print(f"external run {run + 1} (seed {seed}): {json.dumps(r)}", flush=True)
            if args.only in (None, "rllib"):
                r = run_rllib(case, seed, args.max_seconds, user)
                results["rllib"].append(r)
                print(f"rllib    run {run + 1} (seed {seed}): {json.dumps(r)}", flush=True)
        ext = summarize(results["external"], args.max_seconds) if results["external"] else None
        base = summarize(results["rllib"], args.max_seconds) if results["rllib"] else None
        summaries.append((case, ext, base))
        print(
            f"{case.algo}: env steps external {cell(ext, 'steps', ',.0f')} vs in-process "
            f"{cell(base, 'steps', ',.0f')} -> {ratio(ext, base, 'steps', 1.1)}; wall s external "
            f"{cell(ext, 'wall', '.1f')} vs in-process {cell(base, 'wall', '.1f')} -> "
            f"{ratio(ext, base, 'wall', 1.0)}",
            flush=True,
        )

    print(
        f"\nMedians over {args.runs} run(s) per path; external clients: {', '.join(modes)}; "
        f"load average at the end {load_average()}\n"
    )
    print(
        "| case | target | env steps, external | env steps, in-process | ratio (<= 1.1x) "
        "| wall s, external | wall s, in-process | ratio (<= 1.0x) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for case, ext, base in summaries:
        print(
            f"| {case.algo} {case.env} | {case.target:g} | {cell(ext, 'steps', ',.0f')} "
            f"| {cell(base, 'steps', ',.0f')} | {ratio(ext, base, 'steps', 1.1)} "
            f"| {cell(ext, 'wall', '.1f')} | {cell(base, 'wall', '.1f')} | {ratio(ext, base, 'wall', 1.0)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
