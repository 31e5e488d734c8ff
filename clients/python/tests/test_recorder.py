"""Unit tests of the log-only Recorder: the rows it writes, its checks, its files. No server, no Ray.

That RLlib and ``agentsdk train --offline`` read what it writes is
``tests/test_offline.py``'s job.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from agentsdk_client import Box, Discrete, MultiDiscrete, Recorder, UsageError
from agentsdk_client._recorder import COLUMNS, METADATA_FILE

OBS_SPACE = Box(-1.0, 1.0, (3,))
ACT_SPACE = Discrete(3, start=1)


def rows(directory: Path) -> list[dict]:
    out: list[dict] = []
    for f in sorted(directory.glob("*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines()]
    return out


def obs(x: float) -> np.ndarray:
    return np.full(3, x, np.float32)


def test_rows_chain_observations_sum_rewards_and_mark_the_end(tmp_path: Path) -> None:
    with Recorder(tmp_path, OBS_SPACE, ACT_SPACE, client_id="bot") as rec:
        ep = rec.start_episode("e1")
        rec.log_action(ep, obs(0.1), 1, logp=math.log(0.5))
        rec.log_returns(ep, 1.0)
        rec.log_returns(ep, 0.5)
        rec.log_action(ep, obs(0.2), 3)
        rec.log_returns(ep, 2.0)
        rec.end_episode(ep, obs(0.3))
        assert rec.steps_written == 2
    first, second = rows(tmp_path)
    assert list(first) == list(COLUMNS)
    assert first["eps_id"] == second["eps_id"] == "bot/e1/agent0"
    assert (first["t"], second["t"]) == (0, 1)
    assert first["actions"] == 0 and second["actions"] == 2  # policy form: v - start
    assert first["rewards"] == 1.5 and second["rewards"] == 2.0
    np.testing.assert_allclose(first["new_obs"], second["obs"])
    np.testing.assert_allclose(second["new_obs"], obs(0.3))
    assert (first["terminateds"], second["terminateds"], second["truncateds"]) == (False, True, False)
    assert first["action_logp"] == pytest.approx(math.log(0.5)) and second["action_logp"] is None
    assert first["policy_version"] == -1 and first["client_id"] == "bot"
    meta = json.loads((tmp_path / METADATA_FILE).read_text())
    assert meta["storage"] == "json" and meta["columns"] == list(COLUMNS)


def test_truncated_episode_and_policy_form_of_other_spaces(tmp_path: Path) -> None:
    obs_space, act_space = MultiDiscrete([2, 3]), Box(-2.0, 2.0, (1,))
    with Recorder(tmp_path, obs_space, act_space) as rec:
        ep = rec.start_episode()
        rec.log_action(ep, np.array([1, 2]), np.array([1.0], np.float32))
        rec.end_episode(ep, np.array([0, 0]), truncated=True)
    (row,) = rows(tmp_path)
    assert row["obs"] == [0.0, 1.0, 0.0, 0.0, 1.0]  # one-hot, as the policy sees it
    assert row["actions"] == [0.5]  # squashed into [-1, 1]
    assert (row["terminateds"], row["truncateds"]) == (False, True)


def test_files_rotate_and_a_second_recorder_continues(tmp_path: Path) -> None:
    for _ in range(2):
        with Recorder(tmp_path, OBS_SPACE, ACT_SPACE, max_file_steps=2) as rec:
            ep = rec.start_episode()
            for _ in range(5):
                rec.log_action(ep, obs(0.0), 2)
            rec.end_episode(ep, obs(0.0))
    assert len(rows(tmp_path)) == 10
    assert len(list(tmp_path.glob("*.jsonl"))) == 6


def test_running_episodes_are_not_written_at_close(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, OBS_SPACE, ACT_SPACE)
    ep = rec.start_episode()
    rec.log_action(ep, obs(0.0), 1)
    rec.log_action(ep, obs(0.1), 1)
    rec.close()
    assert len(rows(tmp_path)) == 1  # the second step has no next observation yet
    with pytest.raises(UsageError, match="closed"):
        rec.start_episode()


def test_misuse_is_named(tmp_path: Path) -> None:
    with Recorder(tmp_path, OBS_SPACE, ACT_SPACE) as rec:
        with pytest.raises(UsageError, match="unknown episode"):
            rec.log_action("nope", obs(0.0), 1)
        ep = rec.start_episode()
        with pytest.raises(UsageError, match="before its first log_action"):
            rec.log_returns(ep, 1.0)
        with pytest.raises(UsageError, match="not in Discrete"):
            rec.log_action(ep, obs(0.0), 0)
        with pytest.raises(UsageError, match="outside the bounds"):
            rec.log_action(ep, obs(5.0), 1)
        with pytest.raises(UsageError, match="log-probability"):
            rec.log_action(ep, obs(0.0), 1, logp=0.5)
    with pytest.raises(UsageError, match="another directory"):
        Recorder(tmp_path, Box(-1.0, 1.0, (4,)), ACT_SPACE)
