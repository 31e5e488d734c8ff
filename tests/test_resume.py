"""Checkpoints and --resume: the policy version sequence continues where it stopped."""

from __future__ import annotations

import re

import httpx
import pytest

from agentsdk_client import decode
from conftest import run_client

pytestmark = pytest.mark.e2e


def info(server) -> dict:
    return decode(httpx.get(server.address + "/v1/info", timeout=5).content)


def test_resume_continues_policy_version(start_server, tmp_path):
    ckpt = tmp_path / "ckpt"
    args = (
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
