"""Checkpoints and --resume: the policy version sequence continues where it stopped."""

from __future__ import annotations

import re

import httpx
import pytest

from agentsdk_client import decode
from agentsdk_server.offline import recording
from conftest import run_client

pytestmark = pytest.mark.e2e


def info(server) -> dict:
    return decode(httpx.get(server.address + "/v1/info", timeout=5).content)


def recorded_steps(output: str) -> int:
    match = re.search(r"recorded ([\d,]+) steps", output)
    assert match, output[-3000:]
    return int(match.group(1).replace(",", ""))


def test_resume_continues_policy_version(start_server, tmp_path):
    """... and --record appends to the same recording: every accepted step of both runs, once."""
    ckpt, rec = tmp_path / "ckpt", tmp_path / "rec"
    args = (
        "--record",
        str(rec),
        "--env",
        "CartPole-v1",
        "--checkpoint-dir",
        str(ckpt),
        "--checkpoint-every",
        "1",
        "--training",
        '{"train_batch_size_per_learner": 500, "minibatch_size": 128, "num_epochs": 2}',
    )
    first = start_server(*args, "--stop-iters", "3")
    client = run_client(first.address, "remote", "--max-steps", "20000")
    assert first.proc.wait(timeout=180) == 0, first.output()
    client.terminate()
    client.wait(timeout=60)
    assert "training finished: reached 3 iterations" in first.output()
    assert (ckpt / "checkpoint" / "rllib_checkpoint.json").exists() and (ckpt / "policy.onnx").exists()

    second = start_server(*args, "--resume")
    # The first policy the resumed server publishes is the checkpoint's; it may train on
    # at once from experience left in the durable inbox, so later reads may be newer.
    first_iter = re.search(r"iter\s+(\d+) \|", second.output())
    assert first_iter and int(first_iter.group(1)) == 3, second.output()
    assert info(second)["policy_version"] >= 3
    answer = decode(httpx.get(second.address + "/v1/policy", timeout=5).content)
    assert answer["policy_version"] >= 3 and answer["contract"]["policy_version"] == answer["policy_version"]
    run_client(second.address, "remote", "--max-steps", "300").wait(timeout=120)
    assert second.stop() == 0, second.output()[-3000:]
    first_steps, second_steps = recorded_steps(first.output()), recorded_steps(second.output())
    assert first_steps > 0 and second_steps >= 300
    table = recording.read_table(recording.open_recording(rec))
    assert table.num_rows == first_steps + second_steps
    assert len(set(table.column("client_id").to_pylist())) == 2  # one client per run
