"""``agentsdk demo``: a server and several CartPole apps, training until return 450.

Each app is a separate process running ``agentsdk.demo_app`` (gymnasium +
PolicyClient, no Ray). One uses remote inference, the rest run the exported
ONNX policy locally. The final policy stays at ``<out>/policy.onnx``.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from .launcher import ServerProcess, start_app


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    address = f"http://127.0.0.1:{args.port}"
    n_local = args.clients - 1 if args.local is None else min(args.local, args.clients)
    print(
        f"agentsdk demo: server on {address}, {args.clients} CartPole apps "
        f"({n_local} local-ONNX, {args.clients - n_local} remote), target mean return {args.target:g}",
        flush=True,
    )
    server = ServerProcess(
        "--env",
        "CartPole-v1",
        "--checkpoint-dir",
        str(out),
        "--stop-return",
        str(args.target),
        "--stop-seconds",
        str(args.max_seconds),
        "--log-every",
        "2",
        port=args.port,
    )
    clients: list[subprocess.Popen] = []
    start = time.monotonic()
    try:
        try:
            server.wait_healthy(timeout=120)
        except RuntimeError as exc:
            raise SystemExit(f"agentsdk demo: the server did not start: {exc}") from exc
        for i in range(args.clients):
            mode = "local" if i < n_local else "remote"
            clients.append(start_app(address, mode, seed=i))
        code = server.proc.wait(timeout=args.max_seconds + 180)
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
        server.stop(timeout=60)
    policy = out / "policy.onnx"
    print(
        f"agentsdk demo: finished in {time.monotonic() - start:.0f} s; final policy: "
        f"{policy if policy.exists() else 'none written'}",
        flush=True,
    )
    return code
