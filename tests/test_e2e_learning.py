"""The core path end to end: a real server and two real client processes learn CartPole-v1."""

from __future__ import annotations

import re
import signal
import time

import pytest

from conftest import run_client

pytestmark = [pytest.mark.e2e, pytest.mark.learning]


def test_remote_and_local_clients_learn_cartpole(start_server):
    server = start_server("--env", "CartPole-v1", "--seed", "1")
    clients = [run_client(server.address, "remote", seed=1), run_client(server.address, "local", seed=2)]
    best, deadline = 0.0, time.monotonic() + 420
    try:
        while time.monotonic() < deadline and best < 150:
            time.sleep(2)
            assert all(c.poll() is None for c in clients), [
                c.stdout.read() for c in clients if c.poll() is not None
            ]
            best = max(best, server.metric("agentsdk_episode_return_mean"))
    finally:
        for c in clients:
            c.send_signal(signal.SIGTERM)
        outputs = [c.communicate(timeout=120)[0] for c in clients]
    assert best >= 150, f"mean return only reached {best}\n{server.output()[-3000:]}"

    # Every step the apps played reached the server exactly once.
    # (A client whose upload queue overflowed while the server pushed back drops its
    # oldest chunks; it counts them, and they are the only steps allowed to be missing.)
    played = acknowledged = dropped = 0
    for out in outputs:
        match = re.search(r"played (\d+) steps, server acknowledged (\d+), dropped by the client (\d+)", out)
        assert match, out
        played += int(match.group(1))
        acknowledged += int(match.group(2))
        dropped += int(match.group(3))
    ingested = server.metric("agentsdk_steps_ingested_total")
    assert acknowledged == ingested, (acknowledged, ingested, outputs)
    assert played == acknowledged + dropped, (played, acknowledged, dropped, outputs)
    delivered = server.metric("agentsdk_steps_delivered_total")
    stale = server.metric("agentsdk_steps_stale_total")
    queued = server.metric("agentsdk_inbox_steps")
    assert delivered + stale + queued == ingested
