"""Hot-path timings of the Python client (prints p50/p90 in microseconds).

- local: ``PolicyClient.get_action`` (inference_mode="local", recording on) against
  a raw ``InferenceSession.run`` of the same CartPole-sized MLP (4-64-64-2, tanh).
- remote: ``PolicyClient.get_action`` (inference_mode="remote") against a raw
  httpx msgpack POST of the same act body to the same stub server, which runs in
  a separate process and answers /v1/act with a fixed, pre-encoded response.

    python clients/python/benchmarks/bench_hot_path.py [--n 20000]

Needs onnx (to build the model) and onnxruntime; no agentsdk server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from agentsdk_client import Box, Discrete, PolicyClient, decode, encode
from agentsdk_client._spaces import spec_to_json

OBS_SPACE = Box(np.array([-4.8, -np.inf, -0.42, -np.inf], np.float32),
                np.array([4.8, np.inf, 0.42, np.inf], np.float32), (4,), np.float32)
ACT_SPACE = Discrete(2)


def cartpole_mlp(seed: int = 0) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    sizes = [4, 64, 64, 2]
    nodes, inits, x = [], [], "obs"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        inits += [numpy_helper.from_array((rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32), f"W{i}"),
                  numpy_helper.from_array(np.zeros(b, np.float32), f"b{i}")]
        out = "dist_inputs" if i == len(sizes) - 2 else f"a{i}"
        nodes += [helper.make_node("MatMul", [x, f"W{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [out if out == "dist_inputs" else f"z{i}"])]
        if out != "dist_inputs":
            nodes.append(helper.make_node("Tanh", [f"z{i}"], [out]))
        x = out
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("dist_inputs", TensorProto.FLOAT, ["batch", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"agentsdk_contract": json.dumps({
        "protocol": "1.0", "policy_version": 1, "algorithm": "PPO",
        "observation_space": spec_to_json(OBS_SPACE.to_spec()), "action_space": spec_to_json(ACT_SPACE.to_spec()),
        "distribution": "Categorical", "dist_inputs_size": 2, "flat_obs_size": 4, "opset": 17,
        "input_name": "obs", "output_name": "dist_inputs"})})
    return model.SerializeToString()


def info() -> dict[str, Any]:
    return {"protocol": "1.0", "server_version": "bench", "observation_space": OBS_SPACE.to_spec(),
            "action_space": ACT_SPACE.to_spec(), "policy_version": 1, "algorithm": "PPO", "max_policy_lag": 1,
            "token_required": False, "dist_inputs_size": 2, "distribution": "Categorical",
            "limits": {"max_body_bytes": 8 << 20, "max_batch": 64, "max_chunk_steps": 1000, "max_chunks": 64}}


def act_response() -> bytes:
    return encode({"actions": np.array([1], np.int64), "policy_actions": np.array([1], np.int64),
                   "logp": np.array([-0.69], np.float32), "dist_inputs": np.array([[0.1, 0.1]], np.float32),
                   "policy_version": 1})


def timed(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    for _ in range(min(n, 2000)):
        fn()
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        start = clock()
        fn()
        samples.append(clock() - start)
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(0.9 * len(samples))] * 1e6


def bench_local(n: int) -> None:
    import onnxruntime as ort

    onnx_bytes = cartpole_mlp()
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    x = np.zeros((1, 4), np.float32)
    raw = timed(lambda: session.run(None, {"obs": x}), n)

    routes = {"/v1/info": encode(info()), "/v1/policy": encode({"policy_version": 1, "onnx": onnx_bytes,
                                                                "contract": {}}),
              "/v1/experience": encode({"accepted_steps": 1, "duplicate": False, "policy_version": 1})}
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=routes[r.url.path]))
    obs = np.array([0.01, 0.02, 0.03, 0.04], np.float32)
    with PolicyClient("http://bench", inference_mode="local", transport=transport, seed=0,
                      update_interval=3600) as client:
        episode = client.start_episode()
        recorded = timed(lambda: client.get_action(episode, obs), n)
        client.end_episode(episode, obs)
        off = client.start_episode(training_enabled=False)
        unrecorded = timed(lambda: client.get_action(off, obs), n)
    print(f"local  raw session.run(None, {{obs: x}}): p50 {raw[0]:6.2f} us  p90 {raw[1]:6.2f} us")
    print(f"local  get_action (recording):       p50 {recorded[0]:6.2f} us  p90 {recorded[1]:6.2f} us  "
          f"({recorded[0] / raw[0]:.2f}x raw)")
    print(f"local  get_action (training off):    p50 {unrecorded[0]:6.2f} us  p90 {unrecorded[1]:6.2f} us  "
          f"({unrecorded[0] / raw[0]:.2f}x raw)")


def _stub_server(port: int) -> None:
    routes = {b"/v1/info": encode(info()), b"/v1/act": act_response(),
              b"/v1/experience": encode({"accepted_steps": 1, "duplicate": False, "policy_version": 1})}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                body = routes.get(head.split(b" ", 2)[1], b"")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/msgpack\r\nContent-Length: %d\r\n\r\n"
                             % len(body) + body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def bench_remote(n: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = multiprocessing.Process(target=_stub_server, args=(port,), daemon=True)
    proc.start()
    address = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        obs = np.array([0.01, 0.02, 0.03, 0.04], np.float32)
        body = encode({"observations": obs[None]})
        raw_client = httpx.Client()
        url = f"{address}/v1/act"
        headers = {"Content-Type": "application/msgpack", "Agentsdk-Protocol": "1.0"}
        raw = timed(lambda: decode(raw_client.post(url, content=body, headers=headers).content), n)
        with PolicyClient(address) as client:
            episode = client.start_episode()
            ours = timed(lambda: client.get_action(episode, obs), n)
        print(f"remote raw httpx msgpack POST /v1/act:  p50 {raw[0]:6.1f} us  p90 {raw[1]:6.1f} us")
        print(f"remote get_action (recording):       p50 {ours[0]:6.1f} us  p90 {ours[1]:6.1f} us  "
              f"({ours[0] / raw[0]:.2f}x raw httpx)")
    finally:
        proc.terminate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="timed calls per measurement (default 20000)")
    args = parser.parse_args()
    bench_local(args.n)
    bench_remote(max(2000, args.n // 5))
