"""Offline RL end to end: record (server and client), train BC offline, evaluate, start PPO from it.

The e2e tests share one recording (``recorded``): a real ``agentsdk serve
--record`` and an app that plays CartPole with its own logic through
``log_action`` (a scripted controller that pushes toward the pole's lean,
5 % random, and every third episode fully random, with the behaviour's
log-probs), and one BC run on it (``bc``). The other tests need no server.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import gymnasium as gym
import httpx
import numpy as np
import onnx
import pyarrow.parquet as pq
import pytest
from onnx import TensorProto, helper

from agentsdk_client import Box, Discrete, PolicyClient, Recorder
from agentsdk_client import _recorder as client_format
from agentsdk_client.protocol.chunk import ExperienceChunk
from agentsdk_client.protocol.codec import decode, encode
from agentsdk_client.protocol.constants import CONTRACT_KEY, PROTOCOL_VERSION
from agentsdk_client.protocol.distributions import Sampler
from agentsdk_client.protocol.onnx_policy import PolicyContract, open_session, read_contract
from agentsdk_server.front.recorder import Recorder as FrontRecorder
from agentsdk_server.offline import recording as server_format
from agentsdk_server.offline.recording import RecordingError
from conftest import ROOT, logged_server

_CARTPOLE = gym.make("CartPole-v1").observation_space
CARTPOLE_OBS = Box(_CARTPOLE.low, _CARTPOLE.high)  # what `agentsdk serve --env CartPole-v1` announces
HORIZON = 200  # the app ends its episodes here (truncated): CartPole-v0's limit


def agentsdk(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentsdk.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


def scripted(obs: np.ndarray) -> int:
    """Push toward the pole's lean: about 500 on CartPole-v1 (random play scores about 22)."""
    return int(obs[2] + 0.5 * obs[3] > 0)


def play_logged(address: str, episodes: int, seed: int = 0) -> None:
    """The app's own logic acts; the client records it with the behaviour's log-prob."""
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    with PolicyClient(address, inference_mode="local", seed=seed) as client:
        for e in range(episodes):
            epsilon = 1.0 if e % 3 == 0 else 0.05
            obs, _ = env.reset(seed=seed * 1000 + e)
            episode = client.start_episode()
            done = False
            for _ in range(HORIZON):
                script = scripted(obs)
                action = int(rng.integers(2)) if rng.random() < epsilon else script
                prob = (1 - epsilon) * (action == script) + epsilon / 2
                client.log_action(episode, obs, action, logp=math.log(prob))
                obs, reward, done, truncated, _ = env.step(action)
                client.log_returns(episode, reward)
                if done or truncated:
                    break
            client.end_episode(episode, obs, truncated=not done)
        assert client.flush(timeout=60)


def mean_return(onnx_bytes: bytes, episodes: int = 10, seed: int = 100) -> float:
    """The policy in a gymnasium loop, sampled as a client samples it (protocol core)."""
    session = open_session(onnx_bytes)
    contract = read_contract(session)
    sampler = Sampler(contract.action_space, np.random.default_rng(seed), contract.action_distribution())
    env = gym.make("CartPole-v1")
    returns = []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        total, done, truncated = 0.0, False, False
        while not (done or truncated):
            dist_inputs = session.run([contract.output_name], {contract.input_name: obs[None]})[0]
            action, _, _ = sampler.sample_one(dist_inputs, deterministic=False)
            obs, reward, done, truncated, _ = env.step(action)
            total += reward
        returns.append(total)
    return float(np.mean(returns))


def uniform_policy(path: Path) -> Path:
    """An exported-policy look-alike that gives both CartPole actions the same logit (a random policy)."""
    contract = PolicyContract.for_policy(CARTPOLE_OBS, Discrete(2), 0, "random", 15, "Categorical")
    zeros = helper.make_tensor("W", TensorProto.FLOAT, [4, 2], np.zeros(8, np.float32))
    graph = helper.make_graph(
        [helper.make_node("MatMul", [contract.input_name, "W"], [contract.output_name])],
        "uniform",
        [helper.make_tensor_value_info(contract.input_name, TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info(contract.output_name, TensorProto.FLOAT, ["batch", 2])],
        [zeros],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    helper.set_model_props(model, {CONTRACT_KEY: json.dumps(contract.to_json())})
    path.write_bytes(model.SerializeToString())
    return path


def recorded_rows(directory: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in directory.glob("*.parquet"))


def one_line_failure(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# ---- no server ---------------------------------------------------------------------------


def test_client_and_server_write_the_same_format() -> None:
    assert client_format.COLUMNS == server_format.COLUMNS
    assert client_format.METADATA_FILE == server_format.METADATA_FILE
    assert (client_format.FORMAT, client_format.FORMAT_VERSION) == (
        server_format.FORMAT,
        server_format.FORMAT_VERSION,
    )


def chunk(episode: str, index: int, start: float, steps: int, terminated: bool) -> ExperienceChunk:
    obs = np.stack([np.full(4, start + i, np.float32) for i in range(steps + 1)])
    return ExperienceChunk(
        episode, "agent0", index, obs, np.arange(steps, dtype=np.int64) % 2,
        np.ones(steps, np.float32), terminated, False, np.full(steps, -0.7, np.float32),
        np.zeros((steps, 2), np.float32), np.full(steps, 3, np.int64),
    )  # fmt: skip


def test_front_recorder_writes_rllib_rows_and_rotates(tmp_path: Path) -> None:
    recorder = FrontRecorder(tmp_path, CARTPOLE_OBS, Discrete(2), "PPO", max_file_steps=3, flush_every_s=0.01)
    recorder.record([chunk("e1", 0, 0.0, 2, False)], "c1")
    deadline = time.monotonic() + 10
    while recorder.steps_written < 2 and time.monotonic() < deadline:  # written apart: two files
        time.sleep(0.01)
    recorder.record([chunk("e1", 1, 2.0, 3, True), chunk("e2", 0, 10.0, 1, True)], "c1")
    recorder.close()
    assert recorder.failed is None and recorder.steps_written == 6
    assert not list(tmp_path.glob(".*tmp")), "a file was left half written"
    table = server_format.read_table(server_format.open_recording(tmp_path))
    assert table.column_names == list(server_format.COLUMNS)
    rows = table.to_pylist()
    assert [r["eps_id"] for r in rows] == ["c1/e1/agent0"] * 5 + ["c1/e2/agent0"]
    assert [r["t"] for r in rows] == [0, 1, 2, 3, 4, 0]
    assert [r["obs"][0] for r in rows[:5]] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [r["new_obs"][0] for r in rows[:5]] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [r["terminateds"] for r in rows] == [False, False, False, False, True, True]
    assert {(round(r["action_logp"], 4), r["policy_version"], r["client_id"]) for r in rows} == {
        (-0.7, 3, "c1")
    }
    assert len(list(tmp_path.glob("*.parquet"))) == 2  # rotated after 3 steps
    with pytest.raises(RecordingError, match="another directory"):
        FrontRecorder(tmp_path, Box(-1.0, 1.0, (3,)), Discrete(2), "PPO")


def test_front_recorder_holds_the_route_back_while_its_disk_is_slow(tmp_path: Path) -> None:
    """A writer behind by max_pending_steps says so (the route answers 429), and catches up."""
    recorder = FrontRecorder(
        tmp_path, CARTPOLE_OBS, Discrete(2), "PPO", flush_every_s=0.01, max_pending_steps=5
    )
    release = threading.Event()
    write = recorder._write
    recorder._write = lambda table: (release.wait(30), write(table))  # a disk that stalls
    recorder.record([chunk("e1", 0, 0.0, 3, False)], "c1")
    assert not recorder.backlogged
    recorder.record([chunk("e1", 1, 3.0, 3, True)], "c1")
    assert recorder.backlogged
    release.set()
    deadline = time.monotonic() + 10
    while recorder.backlogged and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not recorder.backlogged
    recorder.close()
    assert recorder.failed is None and recorder.steps_written == 6


def test_train_refuses_at_once_what_does_not_fit(tmp_path: Path) -> None:
    pendulum, cartpole = tmp_path / "pendulum", tmp_path / "cartpole"
    with Recorder(
        pendulum, Box(np.array([-1, -1, -8.0]), np.array([1, 1, 8.0])), Box(-2.0, 2.0, (1,))
    ) as rec:
        episode = rec.start_episode()
        rec.log_action(episode, np.zeros(3), np.array([0.5]))
        rec.end_episode(episode, np.zeros(3))
    with Recorder(cartpole, CARTPOLE_OBS, Discrete(2)) as rec:
        episode = rec.start_episode()
        rec.log_action(episode, np.zeros(4), 1)
        rec.end_episode(episode, np.zeros(4))
    out = str(tmp_path / "out")
    started = time.monotonic()
    one_line_failure(
        agentsdk("train", "--offline", str(pendulum), "--env", "CartPole-v1", "--out", out),
        "recorded for observations Box(-8, 8, (3,)",
        "CartPole-v1 has observations",
        "record CartPole-v1 into its own directory",
    )
    one_line_failure(
        agentsdk("train", "--offline", str(cartpole), "--algo", "CQL", "--out", out),
        "CQL needs a bounded Box action space",
        "Discrete(2)",
        "use --algo BC or MARWIL",
    )
    one_line_failure(
        agentsdk("train", "--offline", str(tmp_path), "--out", out),
        "is not an agentsdk recording",
        "agentsdk serve --record",
    )
    assert time.monotonic() - started < 60
    assert not Path(out).exists()
    # "At once": the checks run before Ray (or torch) is imported.
    probe = (
        "import sys\nfrom agentsdk_server.offline.train import OfflineError, check\n"
        f"try:\n    check({str(cartpole)!r}, 'CQL')\nexcept OfflineError:\n    pass\n"
        "print([m for m in ('ray', 'torch') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.stdout.strip() == "[]", result


# ---- a real server, a real app, real RLlib -----------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict:
    """A CartPole recording by `agentsdk serve --record`, with what the server counted."""
    tmp = tmp_path_factory.mktemp("recorded")
    directory = tmp / "rec"
    training = '{"train_batch_size_per_learner": 1000, "num_epochs": 1, "minibatch_size": 250}'
    server = logged_server(
        tmp, "--env", "CartPole-v1", "--seed", "1", "--record", str(directory), "--training", training
    ).wait_healthy()
    try:
        play_logged(server.address, episodes=48)
        # A batch sent twice is recorded once; a stale one is recorded (and counted) too.
        deadline = time.monotonic() + 120
        while server.metric("agentsdk_policy_version") < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        stale = ExperienceChunk(
            uuid.uuid4().hex, "agent0", 0, np.zeros((4, 4), np.float32), np.zeros(3, np.int64),
            np.ones(3, np.float32), True, False, np.full(3, math.log(0.5), np.float32),
            np.zeros((3, 2), np.float32), np.zeros(3, np.int64),
        )  # fmt: skip
        body = encode({"batch_id": uuid.uuid4().hex, "client_id": "test", "chunks": [stale.to_wire()]})
        headers = {"Content-Type": "application/msgpack"}
        answers = [
            decode(httpx.post(server.address + "/v1/experience", content=body, headers=headers).content)
            for _ in range(2)
        ]
        assert [a["duplicate"] for a in answers] == [False, True]
        counts = {
            name: server.metric(f"agentsdk_{name}")
            for name in ("steps_ingested_total", "steps_stale_total", "batches_duplicate_total")
        }
    finally:
        code = server.stop()
    log = server.log_path.read_text()
    assert code == 0, log[-3000:]
    assert f"recorded {int(counts['steps_ingested_total']):,} steps" in log
    return {"dir": directory, "tmp": tmp, **counts}


@pytest.fixture(scope="module")
def bc(recorded) -> Path:
    out = recorded["tmp"] / "bc"
    result = agentsdk(
        "train", "--offline", str(recorded["dir"]), "--algo", "BC", "--out", str(out),
        "--iterations", "300", "--seed", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "done in" in result.stdout
    return out


@pytest.mark.e2e
@pytest.mark.learning
def test_record_holds_every_ingested_step_and_bc_on_it_beats_random(recorded, bc) -> None:
    assert recorded["steps_stale_total"] >= 3 and recorded["batches_duplicate_total"] >= 1
    assert recorded_rows(recorded["dir"]) == recorded["steps_ingested_total"]
    meta = json.loads((recorded["dir"] / server_format.METADATA_FILE).read_text())
    assert (meta["storage"], meta["algorithm"], meta["protocol"]) == ("parquet", "PPO", PROTOCOL_VERSION)
    # `bc` read the directory with config.offline_data(input_=[DIR]); its policy acts well.
    policy = (bc / "policy.onnx").read_bytes()
    contract = read_contract(open_session(policy))
    assert (contract.algorithm, contract.distribution) == ("BC", "Categorical")
    assert (bc / "checkpoint" / "learner_group").is_dir()
    assert mean_return(policy) > 60  # random play: about 22


@pytest.mark.e2e
@pytest.mark.learning
def test_evaluate_ranks_bc_above_a_random_policy(recorded, bc, tmp_path: Path) -> None:
    estimates = {}
    for name, policy in (("bc", bc / "policy.onnx"), ("random", uniform_policy(tmp_path / "uniform.onnx"))):
        result = agentsdk("evaluate", "--offline", str(recorded["dir"]), "--policy", str(policy), "--json")
        assert result.returncode == 0, result.stderr[-3000:]
        estimates[name] = json.loads(result.stdout.strip().splitlines()[-1])
    table = server_format.read_table(server_format.open_recording(recorded["dir"]))
    episodes = len(set(table.column("eps_id").to_pylist()))
    behaviour = sum(table.column("rewards").to_pylist()) / episodes
    for result in estimates.values():
        assert result["episodes"] == episodes
        assert result["behaviour"]["v_behavior"] == pytest.approx(behaviour, rel=1e-6)
    for estimator in ("ImportanceSampling", "WeightedImportanceSampling"):
        good = estimates["bc"]["estimates"][estimator]
        poor = estimates["random"]["estimates"][estimator]
        assert good["v_target"] > poor["v_target"], (estimator, good, poor)
        assert good["std"] > 0 and good["ci95"][0] < good["v_target"] < good["ci95"][1]


@pytest.mark.e2e
@pytest.mark.learning
def test_init_from_the_bc_checkpoint_serves_the_bc_policy(bc, recorded) -> None:
    server = logged_server(recorded["tmp"], "--env", "CartPole-v1", "--init-from", str(bc / "checkpoint"))
    try:
        server.wait_healthy()
        status, body = server.get("/v1/policy")
        assert status == 200
        served = decode(body)
    finally:
        server.stop()
    assert served["policy_version"] == 0  # the first published policy, before any online update
    sessions = [open_session(served["onnx"]), open_session((bc / "policy.onnx").read_bytes())]
    observations = np.random.default_rng(0).uniform(-0.3, 0.3, (256, 4)).astype(np.float32)
    outputs = [s.run(None, {read_contract(s).input_name: observations})[0] for s in sessions]
    np.testing.assert_array_equal(outputs[0].argmax(axis=1), outputs[1].argmax(axis=1))
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)

    # A module that does not fit the algorithm: one line naming both, and the fix.
    wrong = logged_server(
        recorded["tmp"], "--env", "CartPole-v1", "--algo", "DQN", "--init-from", str(bc / "checkpoint")
    )
    assert wrong.proc.wait(timeout=180) == 1
    failed = [line for line in wrong.output().splitlines() if "training FAILED" in line]
    assert len(failed) == 1 and "does not fit this server's DQN policy" in failed[0], wrong.output()
    assert "train offline on a recording of the same spaces" in failed[0]
    wrong.stop()


@pytest.mark.e2e
@pytest.mark.long
def test_a_client_recorder_recording_trains_with_bc(tmp_path: Path) -> None:
    env = gym.make("CartPole-v1")
    with Recorder(tmp_path / "rec", CARTPOLE_OBS, Discrete(2)) as rec:
        for e in range(5):
            obs, _ = env.reset(seed=e)
            episode = rec.start_episode()
            done = truncated = False
            while not (done or truncated):
                action = scripted(obs)
                rec.log_action(episode, obs, action, logp=0.0)
                obs, reward, done, truncated, _ = env.step(action)
                rec.log_returns(episode, reward)
            rec.end_episode(episode, obs, truncated=truncated and not done)
    out = tmp_path / "bc"
    result = agentsdk(
        "train", "--offline", str(tmp_path / "rec"), "--algo", "BC", "--out", str(out), "--iterations", "5"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "in 1 file(s)" in result.stdout and "2,500 steps" in result.stdout
    contract = read_contract(open_session((out / "policy.onnx").read_bytes()))
    assert contract.fits(CARTPOLE_OBS, Discrete(2)) and contract.policy_version == 5
    onnx.checker.check_model(onnx.load(str(out / "policy.onnx")))
