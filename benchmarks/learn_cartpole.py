"""CartPole-v1 PPO to mean return 450: the agentsdk external path beside RLlib in-process.

One invocation runs, ``--runs`` times each (default 3), and prints medians:

(i)  external: ``agentsdk serve --env CartPole-v1 --stop-return 450`` plus client
     processes (``python -m agentsdk.demo_app``, default one remote-mode and one
     local-mode). Wall time runs from starting the server process to its line
     ``training finished: mean return ... reached 450``; trained env steps are
     those of its last progress line; the steps the clients played come from
     their exit lines after SIGTERM. A local client whose server has already
     gone retries its last uploads for ~70 s first, and a remote client then
     often exits without the line, so ``--client-grace`` caps the wait and the
     server's own count of ingested steps is printed beside.
(ii) RLlib in-process PPO with the same hyperparameters (``num_epochs=10``,
     ``vf_loss_coeff=0.01``, ``vf_share_layers=True``, default env runners,
     ``ray.init(num_cpus=2)``), each run in a fresh process; wall time from
     starting that process (imports, ray.init and build included) to the first
     iteration with ``env_runners/episode_return_mean >= 450``; env steps are
     ``num_env_steps_sampled_lifetime`` there.

    python benchmarks/learn_cartpole.py [--runs 3] [--max-seconds 240] [--only external|rllib]
                                        [--clients remote,local]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, load_average, machine_line  # noqa: E402

from agentsdk.launcher import ServerProcess  # noqa: E402

TARGET = 450.0
PROGRESS = re.compile(r"iter\s+(\d+) \| trained steps\s+([\d,]+) \| return\s+([\d.]+|-)")
FINISHED = r"training finished: mean return ([\d.]+) reached"
PLAYED = re.compile(r"client \((\w+)\) played (\d+) steps, server acknowledged (\d+)")


def run_external(max_seconds: float, modes: list[str], grace: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="agentsdk-bench-") as tmp:
        server = ServerProcess(
            "--env",
            "CartPole-v1",
            "--stop-return",
            f"{TARGET:g}",
            "--checkpoint-dir",
            tmp,
            "--log-every",
            "0",
            capture=True,
            cwd=ROOT,
        )
        clients: list[subprocess.Popen] = []
        result: dict[str, Any] = {"ok": False, "load_start": load_average()}
        try:
            server.wait_healthy()
            result["healthy_s"] = time.perf_counter() - server.started
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
                            "--seed",
                            str(i),
                        ],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                        cwd=ROOT,
                    )
                )
            left = max_seconds - (time.perf_counter() - server.started)
            hit = server.wait_for(FINISHED, max(left, 1.0))
            if hit is None:
                result["error"] = f"no '{FINISHED}' within {max_seconds:g} s"
            else:
                stamp, match = hit
                result.update(ok=True, wall_s=stamp - server.started, final_return=float(match.group(1)))
                progress = [PROGRESS.search(line) for t, line in server.lines if t <= stamp]
                last = [m for m in progress if m][-1]
                result.update(
                    iterations=int(last.group(1)), trained_steps=int(last.group(2).replace(",", ""))
                )
            result["load_end"] = load_average()
        finally:
            for proc in clients:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            played: dict[str, int] = {}
            acknowledged = 0
            for i, proc in enumerate(clients):
                try:
                    out, _ = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, _ = proc.communicate()
                match = PLAYED.search(out or "")
                if match:
                    played[f"{i}:{match.group(1)}"] = int(match.group(2))
                    acknowledged += int(match.group(3))
            server.stop()
            stopped = re.search(r"stopped: ingested ([\d,]+) steps", server.output())
        result["client_steps"] = played
        result["played_steps"] = sum(played.values()) if len(played) == len(clients) else None
        result["acknowledged_steps"] = acknowledged
        result["server_ingested"] = int(stopped.group(1).replace(",", "")) if stopped else None
        if not result["ok"]:
            print(server.output()[-3000:], file=sys.stderr)
        return result


RLLIB_WORKER = """
import time, json, sys
t0 = time.perf_counter()
import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
config = (PPOConfig().environment("CartPole-v1")
          .training(num_epochs=10, vf_loss_coeff=0.01)
          .rl_module(model_config=DefaultModelConfig(vf_share_layers=True)))
algo = config.build_algo()
built = time.perf_counter() - t0
print(json.dumps({"built_s": built, "num_env_runners": config.num_env_runners}), flush=True)
while True:
    r = algo.train()
    runners = r.get("env_runners", {})
    ret = runners.get("episode_return_mean")
    steps = r.get("num_env_steps_sampled_lifetime", runners.get("num_env_steps_sampled_lifetime"))
    print(json.dumps({"iteration": algo.iteration, "return": ret, "steps": steps,
                      "t": time.perf_counter() - t0}), flush=True)
    if ret is not None and ret >= TARGET:
        print("REACHED", flush=True)
        break
algo.stop()
ray.shutdown()
"""


def run_rllib(max_seconds: float) -> dict[str, Any]:
    code = RLLIB_WORKER.replace("TARGET", repr(TARGET))
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env={**os.environ, "RAY_DEDUP_LOGS": "0"},
    )
    result: dict[str, Any] = {"ok": False, "load_start": load_average()}
    last: dict[str, Any] = {}
    assert proc.stdout is not None
    try:
        timer = threading.Timer(max_seconds, proc.kill)
        timer.start()
        for line in proc.stdout:
            if line.startswith("REACHED"):
                result.update(
                    ok=True,
                    wall_s=time.perf_counter() - start,
                    iterations=last["iteration"],
                    trained_steps=int(last["steps"]),
                    final_return=float(last["return"]),
                    inner_s=last["t"],
                )
                break
            if line.startswith("{"):
                data = json.loads(line)
                if "built_s" in data:
                    result.update(built_s=data["built_s"], num_env_runners=data["num_env_runners"])
                else:
                    last = data
        timer.cancel()
        result["load_end"] = load_average()
        if not result["ok"]:
            result["error"] = f"not reached within {max_seconds:g} s (last: {last})"
    finally:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return result


def median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each path; medians are reported [3]")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="time cap per run [240]")
    parser.add_argument("--only", choices=["external", "rllib"], default=None, help="run one path only")
    parser.add_argument(
        "--clients",
        default="remote,local",
        help="client modes of the external path, comma-separated [remote,local]",
    )
    parser.add_argument(
        "--client-grace",
        type=float,
        default=20.0,
        help="seconds the clients get to report after SIGTERM [20]",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.clients.split(",") if m.strip()]

    print(machine_line(), flush=True)
    results: dict[str, list[dict[str, Any]]] = {"external": [], "rllib": []}
    for run in range(args.runs):
        if args.only in (None, "external"):
            r = run_external(args.max_seconds, modes, args.client_grace)
            results["external"].append(r)
            print(f"external run {run + 1}: {json.dumps(r)}", flush=True)
        if args.only in (None, "rllib"):
            r = run_rllib(args.max_seconds)
            results["rllib"].append(r)
            print(f"rllib    run {run + 1}: {json.dumps(r)}", flush=True)

    print(f"\nCartPole-v1 PPO to mean return {TARGET:g}; clients of the external path: {', '.join(modes)}")
    print(f"{'path':<34} {'ok':>5} {'median wall s':>14} {'median env steps':>17}   runs (wall s / steps)")
    summary: dict[str, tuple[float | None, float | None]] = {}
    labels = {"external": "agentsdk external (serve + clients)", "rllib": "RLlib in-process PPO"}
    for key, runs in results.items():
        if not runs:
            continue
        ok = [r for r in runs if r["ok"]]
        wall = median([r["wall_s"] for r in ok])
        steps = median([r["trained_steps"] for r in ok])
        summary[key] = (wall, steps)
        each = ", ".join(f"{r['wall_s']:.1f}/{r['trained_steps']:,}" if r["ok"] else "FAILED" for r in runs)
        print(
            f"{labels[key]:<34} {len(ok)}/{len(runs):<3} {fmt(wall, '14.1f')} {fmt(steps, '17,.0f')}   {each}"
        )
    if results["external"]:
        played = [r["played_steps"] for r in results["external"] if r["ok"]]
        print(
            f"external: steps the clients played per run {played} (median {fmt(median(played), ',.0f')}); "
            f"server ingested {[r['server_ingested'] for r in results['external']]}"
        )
    if "external" in summary and "rllib" in summary:
        (ew, es), (rw, rs) = summary["external"], summary["rllib"]
        if ew and rw:
            print(
                f"ratios external / in-process: wall {ew / rw:.2f}x (target <= 0.5x), "
                f"trained env steps {es / rs:.2f}x (target <= 1.1x)"
            )
        if ew:
            print(
                f"external wall vs RLlib's external example (issue: median 40.7 s): {ew / 40.7:.2f}x "
                "(target <= 0.6x)"
            )
    print(f"load average at the end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
