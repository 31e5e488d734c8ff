"""PolicyClient: the app-facing API (parity with RLlib's PolicyClient)."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from ._coerce import make_coercer
from ._errors import AuthenticationError, ProtocolError, UsageError, VersionMismatch
from ._local_policy import Decision, LocalPolicy
from ._spool import Spool
from ._trajectory import StepStream, check_logp, check_reward, new_episode_id
from ._transport import Transport
from ._uploader import DEFAULT_MAX_QUEUED_BYTES, DEFAULT_MAX_QUEUED_STEPS, Uploader
from .protocol.codec import encode
from .protocol.constants import DEFAULT_AGENT_ID, PROTOCOL_VERSION, major
from .protocol.info import ServerInfo
from .protocol.policy_form import check_trainable_action_space
from .protocol.spaces import Box, Discrete, Space, SpaceError

log = logging.getLogger("agentsdk_client")


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of what the client has recorded and delivered."""

    steps_recorded: int
    """Steps recorded for training (get_action / log_action in training-enabled episodes)."""
    steps_uploading: int
    """Steps in finished chunks handed to the uploader (running chunks are not included)."""
    steps_acknowledged: int
    """Steps the server confirmed as queued for training (duplicates of a retried batch count once;
    steps an earlier run left in the spool count here when this client delivers them)."""
    steps_rejected: int
    """Steps the server refused as wrong (4xx); logged, never retried."""
    steps_dropped: int
    """Steps dropped: memory full without a spool, or the spool over ``max_spool_bytes``."""
    chunks_pending: int
    """Finished chunks in memory not yet acknowledged (spooled ones are in ``steps_spooled``)."""
    batches_sent: int
    """Experience requests made, retries included."""
    retries: int
    """Experience requests that failed and were tried again."""
    time_blocked_s: float
    """Seconds the app's threads waited on the network (remote actions, flush)."""
    steps_queued: int
    """Steps waiting in memory (bounded by ``max_queued_steps``; plus at most one batch being sent)."""
    steps_spooled: int
    """Steps in the on-disk spool, waiting to be sent (0 without ``spool_dir``)."""


class _Episode:
    __slots__ = ("training", "streams", "ended")

    def __init__(self, training: bool) -> None:
        self.training = training
        self.streams: dict[str, StepStream] = {}
        self.ended: set[str] = set()


class PolicyClient:
    """Ask a policy for actions and send the experience back for training.

    The constructor talks to the server: it reads ``GET /v1/info`` (so a wrong
    address, a wrong token or an incompatible server fails here, with a clear
    error), in local mode downloads the policy, and starts the background
    threads that upload experience (and refresh the local policy). ``close()``
    (or leaving a ``with`` block) delivers what is queued and stops them.

    Args:
        address: the server, e.g. ``"http://127.0.0.1:9900"``.
        inference_mode: ``"remote"`` asks the server for each action
            (``POST /v1/act``); ``"local"`` runs the exported ONNX policy here
            (needs onnxruntime) and refreshes it in the background.
        update_interval: local mode: seconds between checks for a newer policy.
        token: the server's bearer token, if it was started with one.
        max_chunk_steps: steps per uploaded chunk of a running episode
            (capped by the server's ``limits.max_chunk_steps``).
        timeout: seconds to wait for the server on each request.
        seed: seeds local-mode action sampling.
        client_id: a name for this client in the server's logs and metrics.
        max_queued_steps: steps of finished chunks kept in memory while the
            server is unreachable or pushes back (429/5xx).
        max_queued_bytes: the same bound in bytes of chunk data (whichever is
            reached first). Beyond either bound the oldest chunks are dropped
            and counted in ``stats``, unless there is a spool.
        max_queued_chunks: optionally also bound the number of chunks.
        spool_dir: a directory for an on-disk spool (SQLite). Memory beyond
            the bounds above then goes to disk instead of being dropped, what
            ``close()`` cannot deliver stays there, and a client started later
            on the same directory sends it first. One client per directory.
        max_spool_bytes: bound the spool; beyond it its oldest batches are
            dropped (and counted). Default: no bound but the disk.
        transport: a custom ``httpx`` transport (tests, proxies); every request
            then goes through httpx.
    """

    def __init__(
        self,
        address: str,
        inference_mode: str = "remote",
        update_interval: float = 10.0,
        token: str | None = None,
        *,
        max_chunk_steps: int = 256,
        timeout: float = 10.0,
        seed: int | None = None,
        client_id: str | None = None,
        max_queued_steps: int = DEFAULT_MAX_QUEUED_STEPS,
        max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
        max_queued_chunks: int | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        max_spool_bytes: int | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if inference_mode not in ("remote", "local"):
            raise UsageError(f"inference_mode must be 'remote' or 'local', got {inference_mode!r}")
        if not update_interval > 0:
            raise UsageError(f"update_interval must be a positive number of seconds, got {update_interval!r}")
        if not (isinstance(max_chunk_steps, int) and max_chunk_steps >= 1):
            raise UsageError(f"max_chunk_steps must be an int >= 1, got {max_chunk_steps!r}")
        if not timeout > 0:
            raise UsageError(f"timeout must be a positive number of seconds, got {timeout!r}")
        for name, value in (
            ("max_queued_steps", max_queued_steps),
            ("max_queued_bytes", max_queued_bytes),
            ("max_queued_chunks", max_queued_chunks),
        ):
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise UsageError(f"{name} must be an int >= 1, got {value!r}")
        self.inference_mode = inference_mode
        self.client_id = client_id or f"py-{uuid.uuid4().hex[:12]}"
        self._transport = Transport(address, token=token, timeout=timeout, transport=transport)
        self._local: LocalPolicy | None = None
        self._uploader: Uploader | None = None
        spool = Spool(spool_dir, max_bytes=max_spool_bytes) if spool_dir is not None else None
        try:
            self.info: ServerInfo = self._handshake(token)
            self.observation_space: Space = self.info.observation_space
            self.action_space: Space = self.info.action_space
            limits = self.info.limits
            self.max_chunk_steps = min(max_chunk_steps, limits.max_chunk_steps)
            self._policy_version = self.info.policy_version
            if inference_mode == "local":
                self._local = LocalPolicy(
                    self._transport,
                    self.observation_space,
                    self.action_space,
                    update_interval=update_interval,
                    seed=seed,
                    on_new_version=self._on_new_version,
                )
            self._uploader = Uploader(
                self._send_experience,
                client_id=self.client_id,
                max_chunks=limits.max_chunks,
                max_body_bytes=limits.max_body_bytes,
                max_queued_steps=max_queued_steps,
                max_queued_bytes=max_queued_bytes,
                max_queued_chunks=max_queued_chunks,
                spool=spool,
                on_response=self._note_version,
            )
        except BaseException:
            if spool is not None and self._uploader is None:
                spool.close()
            if self._local is not None:
                self._local.close()
            self._transport.close()
            raise
        self._coerce_obs = make_coercer(self.observation_space, "observation")
        self._coerce_action = make_coercer(self.action_space, "action")
        self._lock = threading.Lock()
        self._episodes: dict[str, _Episode] = {}
        self._blocked = 0.0
        self._steps_recorded = 0
        self._closed = False
        self._box_obs = isinstance(self.observation_space, Box)

    # -- set-up ------------------------------------------------------------------------

    def _handshake(self, token: str | None) -> ServerInfo:
        """GET /v1/info: the server's spaces, limits and version, checked before anything else."""
        try:
            _, _, info = self._transport.request("GET", "/v1/info")
        except AuthenticationError as exc:
            hint = (
                "pass the server's token: PolicyClient(..., token=...)"
                if not token
                else "the token given was refused; check it"
            )
            raise AuthenticationError(
                f"{exc.message} ({hint})", status=exc.status, code=exc.code, request_id=exc.request_id
            ) from exc
        if not isinstance(info, dict) or not isinstance(info.get("protocol"), str):
            raise ProtocolError(
                f"GET /v1/info at {self._transport.address} did not answer with agentsdk "
                "server info; is this an agentsdk server?"
            )
        theirs = info["protocol"]
        if major(theirs) != major(PROTOCOL_VERSION):
            raise VersionMismatch(
                f"the server at {self._transport.address} speaks agentsdk protocol {theirs}, this client "
                f"speaks {PROTOCOL_VERSION}; install a client and server of the same major version"
            )
        try:
            parsed = ServerInfo.from_wire(info)
        except ValueError as exc:  # SpaceError included
            raise ProtocolError(f"GET /v1/info at {self._transport.address}: {exc}") from exc
        try:
            check_trainable_action_space(parsed.action_space)
        except SpaceError as exc:
            raise ProtocolError(
                f"the server announced an action space this client cannot act in: {exc}"
            ) from exc
        return parsed

    # -- properties --------------------------------------------------------------------

    @property
    def policy_version(self) -> int:
        """The newest policy version this client knows of (local mode: the one it runs)."""
        return self._local.version if self._local is not None else self._policy_version

    @property
    def stats(self) -> ClientStats:
        counts = self._uploader.counts()  # type: ignore[union-attr]
        return ClientStats(
            self._steps_recorded,
            counts.steps_submitted,
            counts.steps_acknowledged,
            counts.steps_rejected,
            counts.steps_dropped,
            counts.chunks_pending,
            counts.batches_sent,
            counts.retries,
            self._blocked,
            counts.steps_queued,
            counts.steps_spooled,
        )

    @property
    def server_accepting(self) -> bool:
        """False while the server pushes back (429: its training inbox is full)."""
        return self._uploader.accepting.is_set()  # type: ignore[union-attr]

    def wait_for_server(self, timeout: float | None = None) -> bool:
        """Block until the server takes experience again; True if it does within ``timeout``.

        For simulators that can run faster than the learner: pausing here
        instead of playing on saves the CPU the learner needs, and the data
        stays fresh for on-policy algorithms. ``get_action`` itself never waits.
        """
        started = time.monotonic()
        accepted = self._uploader.accepting.wait(timeout)  # type: ignore[union-attr]
        self._blocked += time.monotonic() - started
        return accepted

    # -- episodes ----------------------------------------------------------------------

    def start_episode(self, episode_id: str | None = None, training_enabled: bool = True) -> str:
        """Begin an episode and return its id (a new UUID unless one is given)."""
        self._check_open()
        episode_id = new_episode_id(episode_id)
        with self._lock:
            if episode_id in self._episodes:
                raise UsageError(f"episode {episode_id!r} is already running; end it first or pick a new id")
            self._episodes[episode_id] = _Episode(bool(training_enabled))
        return episode_id

    def get_action(
        self,
        episode_id: str,
        observation: Any,
        *,
        agent_id: str = DEFAULT_AGENT_ID,
        deterministic: bool = False,
    ) -> Any:
        """The action for ``observation`` (int for Discrete, an array for Box and the like).

        The step is recorded for training; rewards logged until the next
        ``get_action`` of this agent belong to it.
        """
        episode = self._episode(episode_id)
        obs = self._coerce_obs(observation)
        if self._local is not None:
            decision = self._local.act(obs, deterministic)
        else:
            decision = self._remote(obs, None, deterministic)
        if episode.training:
            self._record(episode, episode_id, agent_id, obs, decision)
        return decision[0]

    def log_action(
        self,
        episode_id: str,
        observation: Any,
        action: Any,
        *,
        agent_id: str = DEFAULT_AGENT_ID,
        logp: float | None = None,
    ) -> None:
        """Record an action the app chose itself (a human, a heuristic, a scripted bot).

        ``logp`` is the log-probability with which the app's own logic chose it,
        when known (a stochastic bot); it is recorded as the behaviour log-prob,
        which APPO and IMPALA correct for. Without it the current policy's
        log-prob of the action is recorded (the step counts as if the policy had
        chosen it). DQN and SAC learn from these steps as from any others; see
        the README ("The app's own actions") for each algorithm. Remote mode asks
        the server for the policy's outputs (one ``POST /v1/act``).
        """
        episode = self._episode(episode_id)
        obs = self._coerce_obs(observation)
        act = self._coerce_action(action)
        if logp is not None:
            logp = check_logp(logp)
        if self._local is not None:
            decision = self._local.evaluate(obs, act)
        else:
            decision = self._remote(obs, act, False)
        if logp is not None:
            decision = (decision[0], decision[1], logp, decision[3], decision[4])
        if episode.training:
            self._record(episode, episode_id, agent_id, obs, decision)

    def log_returns(
        self,
        episode_id: str,
        reward: float,
        info: dict[str, Any] | None = None,
        *,
        agent_id: str = DEFAULT_AGENT_ID,
    ) -> None:
        """Add ``reward`` to the agent's last step (several calls add up). ``info`` is not uploaded."""
        episode = self._episode(episode_id)
        value = check_reward(reward)
        if not episode.training:
            return
        with self._lock:
            stream = episode.streams.get(agent_id)
            if stream is None:
                raise UsageError(
                    f"log_returns for agent {agent_id!r} of episode {episode_id!r} came before "
                    "its first get_action/log_action"
                )
            stream.add_reward(value)

    def end_episode(
        self, episode_id: str, observation: Any, *, agent_id: str = DEFAULT_AGENT_ID, truncated: bool = False
    ) -> None:
        """End the agent's part of the episode at ``observation`` (terminated unless ``truncated``).

        The episode is forgotten once every agent that acted in it has ended.
        """
        episode = self._episode(episode_id)
        obs = self._coerce_obs(observation)
        with self._lock:
            stream = episode.streams.get(agent_id)
            chunk = stream.finish(obs, bool(truncated)) if stream is not None else None
            episode.ended.add(agent_id)
            if episode.ended.issuperset(episode.streams):
                self._episodes.pop(episode_id, None)
        if chunk is not None:
            self._uploader.submit(chunk)  # type: ignore[union-attr]

    # -- policy and delivery -----------------------------------------------------------

    def update_policy_weights(self) -> None:
        """Local mode: fetch the newest policy now (remote mode always acts with the newest)."""
        self._check_open()
        if self._local is not None:
            self._local.refresh()

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every finished chunk so far is resolved by the server; False on timeout.

        Steps of running episodes are sent when their chunk fills or the episode ends.
        """
        self._check_open()
        start = time.perf_counter()
        done = self._uploader.flush(timeout)  # type: ignore[union-attr]
        self._blocked += time.perf_counter() - start
        return done

    def close(self, timeout: float | None = 10.0) -> None:
        """Deliver queued experience (waiting at most ``timeout`` s), then stop threads and connections."""
        if self._closed:
            return
        self._closed = True
        if self._local is not None:
            self._local.close()
        self._uploader.close(timeout)  # type: ignore[union-attr]
        self._transport.close()
        running = sum(len(s) for e in self._episodes.values() for s in e.streams.values())
        if running:
            log.info("agentsdk: %d steps of unfinished episodes were not uploaded", running)

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"PolicyClient({self._transport.address!r}, inference_mode={self.inference_mode!r}, "
            f"policy_version={self.policy_version})"
        )

    # -- internals ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("this PolicyClient is closed")

    def _episode(self, episode_id: str) -> _Episode:
        if self._closed:
            raise UsageError("this PolicyClient is closed")
        episode = self._episodes.get(episode_id)
        if episode is None:
            raise UsageError(
                f"unknown episode {episode_id!r}: call start_episode() first (or it has already ended)"
            )
        return episode

    def _record(
        self, episode: _Episode, episode_id: str, agent_id: str, obs: Any, decision: Decision
    ) -> None:
        with self._lock:
            stream = episode.streams.get(agent_id)
            if stream is None:
                if agent_id in episode.ended:
                    raise UsageError(f"agent {agent_id!r} already ended episode {episode_id!r}")
                if not isinstance(agent_id, str) or not agent_id:
                    raise UsageError(f"agent_id must be a non-empty str, got {agent_id!r}")
                stream = episode.streams[agent_id] = StepStream(
                    episode_id, agent_id, self.max_chunk_steps, self.observation_space, self.action_space
                )
            chunk = stream.add_step(obs, decision[1], decision[2], decision[3], decision[4])
            self._steps_recorded += 1
        if chunk is not None:
            self._uploader.submit(chunk)  # type: ignore[union-attr]

    def _remote(self, obs: Any, action: Any, deterministic: bool) -> Decision:
        batch = obs[None] if self._box_obs else self.observation_space.stack([obs])
        message: dict[str, Any] = {"observations": batch}
        if action is not None:
            message["actions"] = self.action_space.stack([action])
        elif deterministic:
            message["deterministic"] = True
        start = time.perf_counter()
        try:
            answer = self._transport.act(encode(message))
        finally:
            self._blocked += time.perf_counter() - start
        try:
            actions = answer["actions"]
            policy = answer["policy_actions"][0]
            logp = float(answer["logp"][0])
            dist_inputs = answer["dist_inputs"][0]
            version = int(answer["policy_version"])
            env = self.action_space.unstack(actions, 1)[0]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ProtocolError(f"POST /v1/act answer is missing or has a malformed field: {exc!r}") from exc
        if isinstance(self.action_space, Discrete):
            policy = int(np.ravel(policy)[0])
        self._policy_version = version
        return (action if action is not None else env), policy, logp, dist_inputs, version

    def _send_experience(self, body: bytes) -> Any:
        return self._transport.request("POST", "/v1/experience", body)[2]

    def _on_new_version(self, version: int) -> None:
        # A new version means the learner took a batch: the inbox has room again.
        if self._uploader is not None:
            self._uploader.nudge()

    def _note_version(self, response: Any) -> None:
        if isinstance(response, dict) and isinstance(response.get("policy_version"), int):
            self._policy_version = max(self._policy_version, response["policy_version"])
