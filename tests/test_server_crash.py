"""A server SIGKILLed mid-training resumes with nothing lost and nothing counted twice.

`agentsdk serve --checkpoint-dir D` trains CartPole from one local-mode client
process (with a spool). After a few iterations the server and everything it
started (trainer, Ray) are SIGKILLed, as a crashed container would be, and a
new server starts on the same port with `--resume`. The client plays on
throughout (local inference never waits for the server) and is then stopped
cleanly, which flushes what it holds.

Afterwards:
- the new server's first policy version is the last checkpoint's, and training
  goes on from there;
- every step the client played was acknowledged, and the new server's
  `agentsdk_steps_ingested_total`, which carries over in the durable inbox
  (server/inbox_store.py), equals the steps played: each step counted exactly
  once, across the crash, resends included (a batch the dead server committed
  but never answered is recognised as a duplicate by its remembered id).

Whether the client happens to resend such a batch depends on where the kill
lands, so the test also sends one batch of its own to the first server and the
same bytes again to the second: the second must answer it as a duplicate, and
its steps count once in the ingested total.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from agentsdk_client import decode, encode
from conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.learning]

pytest.importorskip("onnxruntime")

TRAINING = '{"train_batch_size_per_learner": 500, "minibatch_size": 128, "num_epochs": 2}'

CLIENT = """
import signal, sys, threading
import gymnasium as gym
from agentsdk_client import PolicyClient
address, spool_dir = sys.argv[1], sys.argv[2]
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
env = gym.make("CartPole-v1")
obs, _ = env.reset(seed=0)
played = 0
client = PolicyClient(address, inference_mode="local", update_interval=0.5, timeout=2.0,
                      max_queued_steps=2000, spool_dir=spool_dir)
while not stop.is_set():  # stops between episodes only: every played step is in a finished episode
    episode = client.start_episode()
    done = truncated = False
    while not (done or truncated):
        action = client.get_action(episode, obs)  # must never fail, server up or down
        assert action in (0, 1), action
        obs, reward, done, truncated, _ = env.step(action)
        client.log_returns(episode, reward)
        played += 1
        stop.wait(0.003)  # a frame loop's pace
    client.end_episode(episode, obs, truncated=truncated and not done)
    obs, _ = env.reset()
flushed = client.flush(timeout=150)
client.close(timeout=10)
s = client.stats
# one write: the client's log lines share this pipe, and print() writes its newline separately
sys.stdout.write(f"played={played} recorded={s.steps_recorded} acked={s.steps_acknowledged} "
                 f"spooled={s.steps_spooled} dropped={s.steps_dropped} rejected={s.steps_rejected} "
                 f"flushed={int(flushed)}\\n")
sys.stdout.flush()
"""


PROBE_STEPS = 5


def probe_batch() -> bytes:
    """One valid CartPole experience batch of PROBE_STEPS steps, under a fresh batch id."""
    t = PROBE_STEPS
    chunk = {
        "episode_id": "probe-" + uuid.uuid4().hex,
        "agent_id": "probe",
        "chunk_index": 0,
        "observations": np.zeros((t + 1, 4), np.float32),
        "policy_actions": np.zeros(t, np.int64),
        "rewards": np.ones(t, np.float32),
        "terminated": True,
        "truncated": False,
        "logp": np.full(t, -0.69, np.float32),
        "dist_inputs": np.zeros((t, 2), np.float32),
        "policy_versions": np.zeros(t, np.int64),
    }
    return encode({"batch_id": "probe-" + uuid.uuid4().hex, "client_id": "probe", "chunks": [chunk]})


def post_experience(server: ServerProcess, body: bytes, timeout: float = 60) -> dict[str, Any]:
    """POST /v1/experience, waiting out 429 (inbox full) answers; the decoded 200 answer."""
    deadline = time.monotonic() + timeout
    while True:
        resp = httpx.post(
            server.address + "/v1/experience",
            content=body,
            headers={"Content-Type": "application/msgpack"},
            timeout=10,
        )
        if resp.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(float(resp.headers.get("retry-after", "1")))
    assert resp.status_code == 200, (resp.status_code, resp.content)
    return decode(resp.content)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), children first."""
    parent_of: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent_of[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, parent in parent_of.items() if parent in frontier]
        found += kids
        frontier = kids
    return found


def kill_tree(server: ServerProcess) -> None:
    """SIGKILL the server and all it started, at once: no drain, no last checkpoint, no goodbye."""
    below = descendants(server.proc.pid)
    server.proc.send_signal(signal.SIGKILL)
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.proc.wait(30)


def wait_for_iteration(server: ServerProcess, at_least: int, client: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert client.poll() is None, f"the client died:\n{client.communicate()[0]}"
        assert server.proc.poll() is None, server.output()
        iteration = int(server.metric("agentsdk_training_iterations_total"))
        if iteration >= at_least:
            return iteration
        time.sleep(0.5)
    raise AssertionError(f"no training iteration {at_least} within {timeout} s:\n{server.output()}")


def test_sigkill_then_resume_loses_nothing_and_counts_once(start_server, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    args = (
        "--env",
        "CartPole-v1",
        "--checkpoint-dir",
        str(ckpt),
        "--checkpoint-every",
        "1",
        "--training",
        TRAINING,
    )
    first = start_server(*args)
    port = first.port
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, first.address, str(tmp_path / "spool")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for_iteration(first, 3, client, timeout=180)
        probe = probe_batch()  # committed by the first server: its id must outlive the crash
        answer = post_experience(first, probe)
        assert answer["accepted_steps"] == PROBE_STEPS and answer["duplicate"] is False, answer
        # best effort: crash with steps queued, so some must come back from disk
        until = time.monotonic() + 20
        while first.metric("agentsdk_inbox_steps") == 0 and time.monotonic() < until:
            time.sleep(0.05)
        kill_tree(first)
        checkpointed = json.loads((ckpt / "checkpoint" / "agentsdk.json").read_text())["policy_version"]
        assert checkpointed >= 2, checkpointed

        second = start_server(*args, "--resume", port=port, wait=False)
        second.port, second.address = port, f"http://127.0.0.1:{port}"
        second.wait_healthy()
        version = decode(httpx.get(second.address + "/v1/info", timeout=5).content)["policy_version"]
        assert version >= checkpointed
        log = second.output()
        assert "inbox resumed from" in log, log
        first_published = int(re.search(r"iter\s+(\d+) \|", log).group(1))
        assert first_published == checkpointed, log  # the version sequence continues from the checkpoint
        answer = post_experience(second, probe)  # the same bytes again: known by its remembered id
        assert answer["accepted_steps"] == 0 and answer["duplicate"] is True, answer

        wait_for_iteration(second, checkpointed + 2, client, timeout=180)  # trains on after the crash
        client.send_signal(signal.SIGTERM)
        out, _ = client.communicate(timeout=200)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()

    assert client.returncode == 0, out
    line = next(x for x in out.splitlines() if x.startswith("played="))
    stats = {k: int(v) for k, v in (part.split("=") for part in line.split())}
    played = stats["played"]
    assert played > 0 and stats["flushed"] == 1, stats
    assert stats["recorded"] == stats["acked"] == played, stats
    assert stats["spooled"] == stats["dropped"] == stats["rejected"] == 0, stats
    # exactly once, across the crash: every played step, and the probe's steps though sent twice
    assert second.metric("agentsdk_steps_ingested_total") == played + PROBE_STEPS
    assert second.metric("agentsdk_batches_duplicate_total") >= 1  # the probe's resend, at least
    assert second.stop() == 0
    assert re.search(
        r"stopped: .* left in inbox [\d,]+ \(kept in .*inbox.sqlite3 for --resume\)",
        second.log_path.read_text(),
    )
