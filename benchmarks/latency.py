"""Hot-path latency of the Python client against its baselines (prints p50/p90/p99 in µs).

One invocation starts a real ``agentsdk serve --env CartPole-v1`` and a msgpack
echo app on the same stack (uvicorn + starlette, ``benchmarks/_echo_server.py``),
each in its own process, then measures, in interleaved rounds:

(a) remote ``PolicyClient.get_action`` (POST /v1/act over the client's
    ``http.client`` fast path; the server runs the ONNX policy);
(b) the baselines: the same act-request body POSTed to the echo route through
    ``httpx.Client``, ``httpcore`` and ``http.client`` (each decoding the answer),
    and through ``http.client`` to the real /v1/act;
(c) local ``get_action`` (inference_mode="local") against raw onnxruntime on the
    model bytes the server serves (GET /v1/policy), ``intra_op_num_threads=1``;
(d) time blocked: a local-mode client drives gymnasium CartPole for a few seconds
    while the server trains on what it uploads and publishes new policies:
    ``stats.time_blocked_s / wall`` plus the slowest ``get_action`` calls.

The server in (a)-(c) receives no experience, so it stays at policy v0 and its
learner idles: "recording" episodes are never ended and rotate before a chunk
fills (4,000 < the 4,096-step chunk limit), so nothing is uploaded; the cost of
building a chunk every 256 steps in normal use is therefore not in those rows.
(d) comes last because it makes the server train.

    python benchmarks/latency.py [--rounds 3] [--n-remote 4000] [--n-local 20000] [--blocked-seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, load_average, machine_line  # noqa: E402

from agentsdk.launcher import ServerProcess, free_port  # noqa: E402
from agentsdk_client import PolicyClient, decode, encode  # noqa: E402

OBS = np.array([0.01, -0.02, 0.03, -0.04], np.float32)
HEADERS = {
    "Content-Type": "application/msgpack",
    "Accept": "application/msgpack",
    "Agentsdk-Protocol": "1.0",
    "User-Agent": "agentsdk-bench",
}
ROTATE = 4000  # steps per recording episode: below the server's 4,096-step chunk limit, so nothing uploads


def timed(fn: Callable[[], Any], n: int, warmup: int) -> list[int]:
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
    samples = [0] * n
    for i in range(n):
        start = clock()
        fn()
        samples[i] = clock() - start
    return samples


def start_echo() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "_echo_server.py"), str(port)], cwd=ROOT
    )
    body = encode({"ping": 1})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("POST", "/echo", body, HEADERS)
            ok = conn.getresponse().status == 200
            conn.close()
            if ok:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the echo server did not start")


class Recorder:
    """get_action in a recording episode that is never ended (so never uploaded)."""

    def __init__(self, client: PolicyClient) -> None:
        self.client = client
        self.count = 0
        self.episode = client.start_episode()

    def __call__(self) -> Any:
        self.count += 1
        if self.count % ROTATE == 0:
            self.episode = self.client.start_episode()
        return self.client.get_action(self.episode, OBS)


def remote_benches(
    server: ServerProcess, echo_port: int
) -> tuple[dict[str, Callable[[], Any]], list[PolicyClient]]:
    import httpcore
    import httpx

    body = encode({"observations": OBS[None]})
    echo_url = f"http://127.0.0.1:{echo_port}/echo"
    hx = httpx.Client(headers=HEADERS)
    pool = httpcore.ConnectionPool()
    core_headers = list(HEADERS.items())
    conn = http.client.HTTPConnection("127.0.0.1", echo_port, timeout=10)
    act_conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)

    def via_httpx() -> Any:
        return decode(hx.post(echo_url, content=body).content)

    def via_httpcore() -> Any:
        return decode(pool.request("POST", echo_url, headers=core_headers, content=body).content)

    def via_http_client() -> Any:
        conn.request("POST", "/echo", body, HEADERS)
        return decode(conn.getresponse().read())

    def act_http_client() -> Any:
        act_conn.request("POST", "/v1/act", body, HEADERS)
        return decode(act_conn.getresponse().read())

    off_client = PolicyClient(server.address, inference_mode="remote")
    off_episode = off_client.start_episode(training_enabled=False)
    rec = Recorder(PolicyClient(server.address, inference_mode="remote", max_chunk_steps=ROTATE + 96))
    benches = {
        "echo  httpx.Client": via_httpx,
        "echo  httpcore": via_httpcore,
        "echo  http.client": via_http_client,
        "/v1/act  http.client (raw body)": act_http_client,
        "remote get_action (training off)": lambda: off_client.get_action(off_episode, OBS),
        "remote get_action (recording)": rec,
    }
    return benches, [off_client, rec.client]


def local_benches(server: ServerProcess) -> tuple[dict[str, Callable[[], Any]], list[PolicyClient]]:
    import onnxruntime as ort

    status, body = http_get(server.port, "/v1/policy")
    assert status == 200, status
    policy = decode(body)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(policy["onnx"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    feed = {name: OBS[None]}
    outputs = [session.get_outputs()[0].name]
    inner = session._sess  # the bound C session the client calls (skips run()'s argument checks)

    off_client = PolicyClient(server.address, inference_mode="local", seed=0)
    off_episode = off_client.start_episode(training_enabled=False)
    rec_client = PolicyClient(server.address, inference_mode="local", seed=0, max_chunk_steps=ROTATE + 96)
    rec = Recorder(rec_client)
    benches = {
        "onnxruntime session.run(None, feed)": lambda: session.run(None, feed),
        "onnxruntime session._sess.run (bound C)": lambda: inner.run(outputs, feed, None),
        "local get_action (training off)": lambda: off_client.get_action(off_episode, OBS),
        "local get_action (recording)": rec,
    }
    return benches, [off_client, rec_client]


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Agentsdk-Protocol": "1.0"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def time_blocked(server: ServerProcess, seconds: float, training: bool) -> dict[str, float]:
    """A local-mode CartPole app for ``seconds``; with ``training`` the server trains on its uploads."""
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    clock = time.perf_counter_ns
    calls = 0
    slow_ns = 0  # time inside get_action calls slower than 1 ms
    worst = 0
    with PolicyClient(server.address, inference_mode="local", update_interval=0.5, seed=0) as client:
        first_version = client.policy_version
        obs, _ = env.reset(seed=0)
        start = time.perf_counter()
        cpu_start = time.thread_time()
        while time.perf_counter() - start < seconds:
            episode = client.start_episode(training_enabled=training)
            done = truncated = False
            while not (done or truncated):
                t0 = clock()
                action = client.get_action(episode, obs)
                dt = clock() - t0
                calls += 1
                worst = max(worst, dt)
                if dt > 1_000_000:
                    slow_ns += dt
                obs, reward, done, truncated, _ = env.step(action)
                client.log_returns(episode, reward)
            client.end_episode(episode, obs, truncated=truncated and not done)
            obs, _ = env.reset()
        wall = time.perf_counter() - start
        cpu = time.thread_time() - cpu_start
        stats = client.stats  # before close(): close() waits for the last uploads
        last_version = client.policy_version
    return {
        "wall_s": wall,
        "blocked_s": stats.time_blocked_s,
        "steps": calls,
        "acknowledged": stats.steps_acknowledged,
        "versions": last_version - first_version,
        "slow_s": slow_ns / 1e9,
        "worst_ms": worst / 1e6,
        "cpu_s": cpu,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per measurement [3]")
    parser.add_argument(
        "--n-remote", type=int, default=4000, help="timed calls per remote row per round [4000]"
    )
    parser.add_argument(
        "--n-local", type=int, default=20000, help="timed calls per local row per round [20000]"
    )
    parser.add_argument(
        "--blocked-seconds",
        type=float,
        default=10.0,
        help="seconds of the time-blocked run (d); 0 skips it [10]",
    )
    args = parser.parse_args()

    print(machine_line(), flush=True)
    server = ServerProcess("--env", "CartPole-v1", "--log-every", "3600", capture=True, cwd=ROOT)
    echo, echo_port = start_echo()
    clients: list[PolicyClient] = []
    try:
        server.wait_healthy()
        remote, clients = remote_benches(server, echo_port)
        local, more = local_benches(server)
        clients += more
        samples: dict[str, list[list[int]]] = {name: [] for name in [*remote, *local]}
        for r in range(args.rounds):
            for name, fn in remote.items():
                samples[name].append(timed(fn, args.n_remote, warmup=500))
            for name, fn in local.items():
                samples[name].append(timed(fn, args.n_local, warmup=2000))
            print(f"round {r + 1}/{args.rounds} done, load average {load_average()}", flush=True)
        status, body = http_get(server.port, "/v1/info")
        version = decode(body)["policy_version"]

        print(f"\nserver policy version after (a)-(c): v{version} (v0 = never trained, as intended)")
        print(f"{'µs':<42} {'p50':>8} {'p90':>8} {'p99':>8}   p50 per round")
        p50: dict[str, float] = {}
        for name, rounds in samples.items():
            pooled = np.concatenate([np.asarray(s, np.float64) for s in rounds]) / 1e3
            q = np.percentile(pooled, [50, 90, 99])
            p50[name] = float(q[0])
            per_round = " ".join(f"{np.median(np.asarray(s)) / 1e3:.1f}" for s in rounds)
            print(f"{name:<42} {q[0]:8.1f} {q[1]:8.1f} {q[2]:8.1f}   {per_round}")
            if name == "remote get_action (recording)":
                print()

        echo_hc = p50["echo  http.client"]
        print("\nratios (p50):")
        for name in ("remote get_action (training off)", "remote get_action (recording)"):
            print(f"  {name} / echo http.client       {p50[name] / echo_hc:5.2f}x   (target <= 1.3x)")
        print(
            f"  remote get_action (recording) / echo httpx.Client {p50['remote get_action (recording)'] / p50['echo  httpx.Client']:5.2f}x"
        )
        print(
            f"  /v1/act raw http.client / echo http.client     {p50['/v1/act  http.client (raw body)'] / echo_hc:5.2f}x"
            "   (server-side act cost over the echo)"
        )
        print(
            f"  remote get_action (recording) p50 {p50['remote get_action (recording)']:.0f} µs   (stretch: <= 250 µs)"
        )
        raw = p50["onnxruntime session.run(None, feed)"]
        bound = p50["onnxruntime session._sess.run (bound C)"]
        for name in ("local get_action (training off)", "local get_action (recording)"):
            print(
                f"  {name} / session.run             {p50[name] / raw:5.2f}x   (target <= 2x; "
                f"{p50[name] / bound:.2f}x the bound C run)"
            )

        if args.blocked_seconds > 0:
            for training in (False, True):
                what = (
                    "recording; the server trains on the uploads and publishes new policies"
                    if training
                    else "training off: no uploads, the server idles"
                )
                print(
                    f"\n(d) local-mode CartPole app for {args.blocked_seconds:g} s, {what} "
                    f"(load average {load_average()}):",
                    flush=True,
                )
                d = time_blocked(server, args.blocked_seconds, training)
                print(
                    f"  steps {d['steps']:,} ({d['steps'] / d['wall_s']:,.0f}/s), acknowledged "
                    f"{d['acknowledged']:,}, new policy versions picked up {d['versions']}, "
                    f"app thread on CPU {100 * d['cpu_s'] / d['wall_s']:.0f} % of wall"
                )
                print(
                    f"  time_blocked_s / wall = {d['blocked_s']:.4f} / {d['wall_s']:.2f} s = "
                    f"{100 * d['blocked_s'] / d['wall_s']:.3f} %   (target < 2 %)"
                )
                print(
                    f"  get_action calls > 1 ms: {d['slow_s']:.3f} s in total "
                    f"({100 * d['slow_s'] / d['wall_s']:.2f} % of wall); slowest call {d['worst_ms']:.2f} ms"
                )
        print(f"\nload average at the end {load_average()}")
    finally:
        for client in clients:
            client.close(timeout=1)
        echo.terminate()
        server.stop()
        echo.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
