"""``agentsdk demo``: a server and several CartPole apps, training until return 450.

Each app is a separate process running ``agentsdk.demo_app`` (gymnasium +
PolicyClient, no Ray). One uses remote inference, the rest run the exported
ONNX policy locally. The final policy stays at ``<out>/policy.onnx``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx


def wait_healthy(address: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("agentsdk demo: the server exited during start-up (see its output above)")
        try:
            if httpx.get(address + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"agentsdk demo: the server did not become healthy within {timeout:.0f} s")


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    address = f"http://127.0.0.1:{args.port}"
    n_local = args.clients - 1 if args.local is None else min(args.local, args.clients)
    print(f"agentsdk demo: server on {address}, {args.clients} CartPole apps "
          f"({n_local} local-ONNX, {args.clients - n_local} remote), target mean return {args.target:g}",
          flush=True)
    server = subprocess.Popen([
        sys.executable, "-m", "agentsdk.cli", "serve", "--env", "CartPole-v1", "--port", str(args.port),
        "--checkpoint-dir", str(out), "--stop-return", str(args.target), "--stop-seconds", str(args.max_seconds),
        "--log-every", "2",
    ])
    clients: list[subprocess.Popen] = []
    start = time.monotonic()
    try:
        wait_healthy(address, server)
        for i in range(args.clients):
            mode = "local" if i < n_local else "remote"
            clients.append(subprocess.Popen([sys.executable, "-m", "agentsdk.demo_app", "--address", address,
                                             "--mode", mode, "--seed", str(i)], env={**os.environ}))
        code = server.wait(timeout=args.max_seconds + 180)
    except KeyboardInterrupt:
        code = 130
    finally:
        for proc in clients:
            proc.terminate()
        for proc in clients:
            try:
                proc.wait(timeout=30)  # clients flush for up to 15 s when the server is gone
            except subprocess.TimeoutExpired:
                proc.kill()
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=60)
    policy = out / "policy.onnx"
    print(f"agentsdk demo: finished in {time.monotonic() - start:.0f} s; final policy: "
          f"{policy if policy.exists() else 'none written'}", flush=True)
    return code
