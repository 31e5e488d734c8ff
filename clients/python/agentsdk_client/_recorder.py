"""Recorder: log what the app's own logic did, for offline training, with no server at all.

    with Recorder("runs/bot", observation_space, action_space) as rec:
        episode = rec.start_episode()
        rec.log_action(episode, obs, action, logp=-0.1)   # logp: how likely the bot was to do it
        rec.log_returns(episode, reward)
        rec.end_episode(episode, last_obs)

then ``agentsdk train --offline runs/bot --algo BC --out runs/bc``.

It writes the recording format of ``agentsdk serve --record`` (the server's
``server/offline/recording.py`` is its home: RLlib's column names, one row per
step, and ``agentsdk_recording.json`` naming the spaces) as JSON lines files,
which RLlib reads with ``input_read_method="read_json"``: the light client has
no pyarrow. Observations are flattened and actions put in policy form with the
protocol core, exactly as the server records them. A step's row is written
once the next step (or the episode's end) gives its next observation and
final reward.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

from ._coerce import make_coercer
from ._errors import UsageError
from ._trajectory import check_logp, check_reward, new_episode_id
from .protocol.constants import DEFAULT_AGENT_ID, PROTOCOL_VERSION, major
from .protocol.policy_form import check_trainable_action_space, to_policy_actions
from .protocol.spaces import Space, SpaceError
from .protocol.spec import space_from_json, space_to_json

# The recording format (home: server/offline/recording.py; tests/test_offline.py checks they agree).
METADATA_FILE = "agentsdk_recording.json"
FORMAT = "agentsdk-recording"
FORMAT_VERSION = 1
COLUMNS = (
    "eps_id",
    "agent_id",
    "t",
    "obs",
    "actions",
    "rewards",
    "new_obs",
    "terminateds",
    "truncateds",
    "action_logp",
    "policy_version",
    "client_id",
)
NO_POLICY = -1  # policy_version of a step the app's own logic chose


class _Step:
    __slots__ = ("obs", "action", "logp", "reward")

    def __init__(self, obs: list[float], action: Any, logp: float | None) -> None:
        self.obs, self.action, self.logp, self.reward = obs, action, logp, 0.0


class _Episode:
    __slots__ = ("eps_id", "t", "pending")

    def __init__(self, eps_id: str) -> None:
        self.eps_id, self.t, self.pending = eps_id, 0, None


class Recorder:
    """Write an app's own decisions to ``directory`` as an offline recording (JSON lines).

    Args:
        directory: created if missing; a directory already holding a recording
            of the same spaces is continued (new files), one of other spaces refused.
        observation_space, action_space: the spaces of what is logged (the same
            ones a server for this app would announce).
        client_id: a name for this recorder in the ``client_id`` column.
        max_file_steps: start a new file after this many steps.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        observation_space: Space,
        action_space: Space,
        *,
        client_id: str | None = None,
        max_file_steps: int = 100_000,
    ) -> None:
        if not isinstance(observation_space, Space) or not isinstance(action_space, Space):
            raise UsageError(
                "observation_space and action_space must be agentsdk_client spaces (Box, Discrete, ...)"
            )
        try:
            check_trainable_action_space(action_space)
        except SpaceError as exc:
            raise UsageError(str(exc)) from exc
        if not (isinstance(max_file_steps, int) and max_file_steps >= 1):
            raise UsageError(f"max_file_steps must be an int >= 1, got {max_file_steps!r}")
        self.path = Path(directory)
        self.observation_space = observation_space
        self.action_space = action_space
        self.client_id = client_id or f"recorder-{uuid.uuid4().hex[:12]}"
        self.max_file_steps = max_file_steps
        self.steps_written = 0
        self._coerce_obs = make_coercer(observation_space, "observation")
        self._coerce_action = make_coercer(action_space, "action")
        self._episodes: dict[str, _Episode] = {}
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._file_steps = 0
        self._files = 0
        self._prefix = f"rec-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._closed = False
        self._start()

    def _start(self) -> None:
        meta = self.path / METADATA_FILE
        if meta.exists():
            self._check_existing(meta)
            return
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{METADATA_FILE}.tmp"
        tmp.write_text(
            json.dumps(
                {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "protocol": PROTOCOL_VERSION,
                    "storage": "json",
                    "algorithm": None,
                    "writer": "agentsdk_client.Recorder",
                    "observation_space": space_to_json(self.observation_space),
                    "action_space": space_to_json(self.action_space),
                    "flat_obs_size": self.observation_space.flat_size,
                    "columns": list(COLUMNS),
                }
            )
        )
        tmp.replace(meta)

    def _check_existing(self, meta: Path) -> None:
        try:
            old = json.loads(meta.read_text())
            obs = space_from_json(old.get("observation_space"), "observation_space")
            act = space_from_json(old.get("action_space"), "action_space")
            storage, protocol = old.get("storage"), str(old.get("protocol", ""))
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"{meta} exists but is not a recording description ({exc}); use another directory"
            ) from exc
        if (obs, act, storage) != (self.observation_space, self.action_space, "json") or major(
            protocol
        ) != major(PROTOCOL_VERSION):
            raise UsageError(
                f"{self.path} already holds a {storage} recording (protocol {protocol}) of observations "
                f"{obs!r}, actions {act!r}; record observations {self.observation_space!r}, actions "
                f"{self.action_space!r} into another directory"
            )

    # -- episodes ----------------------------------------------------------------------

    def start_episode(self, episode_id: str | None = None) -> str:
        """Begin an episode and return its id (a new UUID unless one is given)."""
        self._check_open()
        episode_id = new_episode_id(episode_id)
        with self._lock:
            if episode_id in self._episodes:
                raise UsageError(f"episode {episode_id!r} is already running; end it first or pick a new id")
            self._episodes[episode_id] = _Episode(f"{self.client_id}/{episode_id}/{DEFAULT_AGENT_ID}")
        return episode_id

    def log_action(self, episode_id: str, observation: Any, action: Any, logp: float | None = None) -> None:
        """Record that the app chose ``action`` at ``observation``.

        ``logp``: the log-probability with which the app's logic chose it (a
        stochastic bot); ``agentsdk evaluate`` needs it. Leave it out when unknown.
        """
        episode = self._episode(episode_id)
        obs = self._flat(observation)
        act = self._policy_action(action)
        logp = check_logp(logp) if logp is not None else None
        with self._lock:
            if episode.pending is not None:
                self._write(episode, obs, False, False)
            episode.pending = _Step(obs, act, logp)

    def log_returns(self, episode_id: str, reward: float) -> None:
        """Add ``reward`` to the last logged step (several calls add up)."""
        episode = self._episode(episode_id)
        value = check_reward(reward)
        with self._lock:
            if episode.pending is None:
                raise UsageError(
                    f"log_returns for episode {episode_id!r} came before its first log_action; "
                    "a reward belongs to the step that preceded it"
                )
            episode.pending.reward += value

    def end_episode(self, episode_id: str, observation: Any, truncated: bool = False) -> None:
        """End the episode at ``observation`` (terminated unless ``truncated``)."""
        episode = self._episode(episode_id)
        obs = self._flat(observation)
        with self._lock:
            if episode.pending is not None:
                self._write(episode, obs, not truncated, bool(truncated))
            self._episodes.pop(episode_id, None)
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        """Close the file. Steps of running episodes lack their next observation and are not written."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
            self._episodes.clear()
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Recorder({str(self.path)!r}, steps_written={self.steps_written})"

    # -- internals ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("this Recorder is closed")

    def _episode(self, episode_id: str) -> _Episode:
        self._check_open()
        episode = self._episodes.get(episode_id)
        if episode is None:
            raise UsageError(
                f"unknown episode {episode_id!r}: call start_episode() first (or it has already ended)"
            )
        return episode

    def _flat(self, observation: Any) -> list[float]:
        space = self.observation_space
        return space.flatten_batch(space.stack([self._coerce_obs(observation)]), 1)[0].tolist()

    def _policy_action(self, action: Any) -> Any:
        space = self.action_space
        return to_policy_actions(space, space.stack([self._coerce_action(action)]), 1)[0].tolist()

    def _write(self, episode: _Episode, new_obs: list[float], terminated: bool, truncated: bool) -> None:
        step = episode.pending
        assert step is not None
        row = {
            "eps_id": episode.eps_id,
            "agent_id": DEFAULT_AGENT_ID,
            "t": episode.t,
            "obs": step.obs,
            "actions": step.action,
            "rewards": step.reward,
            "new_obs": new_obs,
            "terminateds": terminated,
            "truncateds": truncated,
            "action_logp": step.logp,
            "policy_version": NO_POLICY,
            "client_id": self.client_id,
        }
        if self._file is None or self._file_steps >= self.max_file_steps:
            self._next_file()
        try:
            line = json.dumps(row, allow_nan=False)
        except ValueError as exc:
            raise UsageError(
                f"step {episode.t} of {episode.eps_id!r} holds an infinite value, which a JSON recording "
                "cannot keep; give finite observations"
            ) from exc
        assert self._file is not None
        self._file.write(line + "\n")
        self._file_steps += 1
        self.steps_written += 1
        episode.t += 1
        episode.pending = None

    def _next_file(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = open(self.path / f"{self._prefix}-{self._files:05d}.jsonl", "w")  # noqa: SIM115
        self._files += 1
        self._file_steps = 0
