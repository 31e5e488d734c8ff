"""Client durability against real `agentsdk serve` processes: outages and crashes lose nothing.

(a) The server is SIGKILLed and comes back on the same port a minute later. A
    local-mode client keeps playing throughout, its memory stays under its bound
    (the rest goes to its spool), and afterwards every step it played is
    acknowledged, with the new server counting exactly the steps the old one had
    not acknowledged.
(b) A client process is SIGKILLed with batches in its spool. A new client on the
    same spool directory delivers them, and the server counts each batch once,
    even one it had already received.

Accounting: a server's counters die with it, so (a) compares the second
server's `agentsdk_steps_ingested_total` with what the client had *not* had
acknowledged by the first one (snapshotted after the first one is dead and
before the second one starts, when no answer can still be on its way).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import pytest

from agentsdk_client import PolicyClient, decode

pytestmark = pytest.mark.e2e

pytest.importorskip("onnxruntime")

EPISODE_STEPS = 25
OUTAGE_S = float(os.environ.get("AGENTSDK_OUTAGE_S", "60"))  # issue 3: "server down for a minute"


def play_episode(client: PolicyClient, rng: np.random.Generator) -> int:
    """One episode of a stand-in game: CartPole-shaped observations; every action must come back."""
    episode = client.start_episode()
    for _ in range(EPISODE_STEPS):
        obs = rng.uniform([-2.0, -1.0, -0.2, -1.0], [2.0, 1.0, 0.2, 1.0]).astype(np.float32)
        action = client.get_action(episode, obs)
        assert action in (0, 1), action
        client.log_returns(episode, 1.0)
    client.end_episode(episode, np.zeros(4, np.float32))
    return EPISODE_STEPS


class SpoolRow(NamedTuple):
    batch_id: str
    body: bytes
    steps: int


def stored(directory: Path) -> list[SpoolRow]:
    """The client spool's rows, oldest first, read straight from its SQLite file.

    The spool is one SQLite file, ``spool.sqlite3`` in the spool directory, with one row per pending
    request: ``batches(seq, batch_id, body, steps, created)``, ``seq`` in insertion order. Called only
    when no client holds the file (its lock dies with its process or its ``close``).
    """
    path = directory / "spool.sqlite3"
    assert path.exists(), f"no spool file at {path}"
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT batch_id, body, steps FROM batches ORDER BY seq").fetchall()
    return [SpoolRow(str(batch_id), bytes(body), int(steps)) for batch_id, body, steps in rows]


@pytest.mark.long  # a minute-long outage: picked out with the long runs, still run in CI
def test_server_down_a_minute_then_back_nothing_lost_nothing_twice(start_server, tmp_path: Path) -> None:
    bound = 1000
    first = start_server("--env", "CartPole-v1", "--inbox-batches", "50")
    port = first.port
    rng = np.random.default_rng(0)
    pace = threading.Event()  # never set: wait() only paces the app like a frame loop
    client = PolicyClient(
        first.address,
        inference_mode="local",
        update_interval=0.5,
        timeout=2.0,
        max_queued_steps=bound,
        spool_dir=tmp_path / "spool",
    )
    played, most_queued, most_spooled = 0, 0, 0
    try:
        while played < 2000:
            played += play_episode(client, rng)
            pace.wait(0.002)
        assert client.flush(60)
        assert client.stats.steps_acknowledged == played

        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(30)
        down_until = time.monotonic() + OUTAGE_S
        while time.monotonic() < down_until:
            played += play_episode(client, rng)
            stats = client.stats
            most_queued = max(most_queued, stats.steps_queued)
            most_spooled = max(most_spooled, stats.steps_spooled)
            pace.wait(0.01)
        acked_by_first = client.stats.steps_acknowledged

        second = start_server("--env", "CartPole-v1", "--inbox-batches", "50", port=port, wait=False)
        second.port, second.address = port, f"http://127.0.0.1:{port}"
        second.wait_healthy()
        for _ in range(40):
            played += play_episode(client, rng)
            most_queued = max(most_queued, client.stats.steps_queued)
        assert client.flush(120), client.stats
        stats = client.stats
    finally:
        client.close(timeout=5)

    assert most_queued <= bound, most_queued  # memory stayed bounded ...
    assert most_spooled > bound  # ... because the outage went to disk
    assert stats.steps_recorded == stats.steps_uploading == played
    assert stats.steps_acknowledged == played
    assert stats.steps_dropped == 0 and stats.steps_rejected == 0 and stats.steps_spooled == 0
    assert 0 < acked_by_first < played
    assert second.metric("agentsdk_steps_ingested_total") == played - acked_by_first
    assert stored(tmp_path / "spool") == []


CHILD = """
import sys, numpy as np
from agentsdk_client import PolicyClient
address, spool_dir = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(1)
client = PolicyClient(address, inference_mode="local", update_interval=0.5, timeout=2.0,
                      max_queued_steps=300, spool_dir=spool_dir)
while True:
    episode = client.start_episode()
    for _ in range(20):
        obs = rng.uniform([-2, -1, -0.2, -1], [2, 1, 0.2, 1]).astype(np.float32)
        client.get_action(episode, obs)
        client.log_returns(episode, 1.0)
    client.end_episode(episode, np.zeros(4, np.float32))
    s = client.stats
    # one write per line: the client's log lines share this pipe, and print() writes its newline separately
    sys.stdout.write(f"acked={s.steps_acknowledged} spooled={s.steps_spooled} queued={s.steps_queued}\\n")
"""


def read_stats(proc: subprocess.Popen, until: Any) -> dict[str, int]:
    """Follow the child's stats lines until ``until(stats)`` holds."""
    assert proc.stdout is not None
    other: list[str] = []  # the child's log lines and traceback, for the failure message
    for line in proc.stdout:
        if line.startswith("acked="):
            stats = {k: int(v) for k, v in (part.split("=") for part in line.split())}
            if until(stats):
                return stats
        else:
            other.append(line)
    raise AssertionError(
        f"client exited with {proc.wait()} before the condition held:\n{''.join(other[-40:])}"
    )


def test_killed_client_spool_is_delivered_once_by_the_next_client(start_server, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    first = start_server("--env", "CartPole-v1")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, first.address, str(spool_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        read_stats(child, lambda s: s["acked"] > 0)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(30)
        read_stats(child, lambda s: s["spooled"] >= 1500)
    finally:
        child.send_signal(signal.SIGKILL)  # wherever it is: maybe inside a spool write
        child.wait(30)

    rows = stored(spool_dir)
    assert rows, "the killed client left nothing in its spool"
    total = 0
    for row in rows:  # every committed row is whole: its body decodes and carries its own batch id
        message = decode(row.body)
        assert message["batch_id"] == row.batch_id
        assert row.steps == sum(len(c["rewards"]) for c in message["chunks"])
        total += row.steps

    second = start_server("--env", "CartPole-v1")
    # The server got the oldest batch, but the client died before deleting the row.
    resp = httpx.post(
        second.address + "/v1/experience",
        content=rows[0].body,
        headers={"Content-Type": "application/msgpack"},
        timeout=10,
    )
    assert resp.status_code == 200 and decode(resp.content)["accepted_steps"] == rows[0].steps

    with PolicyClient(second.address, spool_dir=spool_dir) as client:
        assert client.flush(60), client.stats
        stats = client.stats
    assert stats.steps_acknowledged == total and stats.steps_spooled == 0 and stats.steps_dropped == 0
    assert second.metric("agentsdk_steps_ingested_total") == total
    assert second.metric("agentsdk_batches_accepted_total") == len(rows)
    assert second.metric("agentsdk_batches_duplicate_total") == 1
    assert stored(spool_dir) == []
