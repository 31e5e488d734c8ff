"""``agentsdk serve``: the HTTP front in this process, the trainer in a child process.

Reads top to bottom as the stages of a server's life: ``resolve_spaces`` ->
``open_inbox`` -> ``open_recorder`` (with --record) -> ``start_trainer`` ->
``make_front`` -> ``connect`` (the link thread) -> run until stopped or
training ends -> ``drain`` -> summary.
This process is the front: it never imports Ray or torch, so it answers
within a second of starting and no learner update ever stalls a request.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

import uvicorn

from agentsdk_client.protocol.chunk import ExperienceChunk
from agentsdk_client.protocol.codec import encode
from agentsdk_client.protocol.constants import DEFAULT_POLICY_ID
from agentsdk_client.protocol.policy_form import check_trainable_action_space
from agentsdk_client.protocol.spaces import Space

from .algorithms import algorithm_spec, train_batch_size
from .config import ServerConfig
from .front.app import create_app
from .front.inbox import REMEMBER_BATCHES, Inbox, InboxClosed
from .front.inbox_store import InboxStore, InboxStoreError
from .front.inference import BatchedInference, load_policy
from .front.state import ServerState
from .link import FrontLink
from .policies import PolicySet
from .trainer.main import run_trainer

if TYPE_CHECKING:  # pyarrow is imported only with --record
    from .front.recorder import Recorder

log = logging.getLogger("agentsdk.server")


def say(text: str) -> None:
    print(f"[agentsdk {time.strftime('%H:%M:%S')}] {text}", flush=True)


def fail(message: str) -> SystemExit:
    return SystemExit(f"agentsdk serve: {message}")


# ---- stages ------------------------------------------------------------------------------


def resolve_spaces(cfg: ServerConfig) -> tuple[Space, Space]:
    """The announced spaces, from --env or the JSON specs; SystemExit with one line if they are wrong."""
    from .env_spaces import from_json_arg, spaces_of_env

    try:
        if cfg.env:
            obs_space, act_space = spaces_of_env(cfg.env)
        elif cfg.observation_space and cfg.action_space:
            obs_space = from_json_arg(cfg.observation_space, "observation_space")
            act_space = from_json_arg(cfg.action_space, "action_space")
        else:
            raise fail("give --env GYM_ID, or both --observation-space and --action-space")
        check_trainable_action_space(act_space)
        algorithm_spec(cfg.algo).check_action_space(act_space)
    except SystemExit:
        raise
    except Exception as exc:  # a SpaceError, an unknown gymnasium id: say it, no traceback
        raise fail(f"{type(exc).__name__}: {exc}") from exc
    return obs_space, act_space


def open_inbox(cfg: ServerConfig) -> Inbox:
    """The training inbox: on disk with --checkpoint-dir (front/inbox_store.py), else in memory."""
    spec = algorithm_spec(cfg.algo)
    lag = cfg.max_policy_lag if cfg.max_policy_lag is not None else spec.max_policy_lag
    capacity = max(int(cfg.inbox_batches * train_batch_size(cfg.algo, cfg.training)), 1)
    if not spec.replay:  # room for one chunk of the largest size (an empty inbox takes any batch anyway)
        capacity = max(capacity, cfg.max_chunk_steps)
    store = None
    if cfg.checkpoint_dir:
        try:
            store = InboxStore.open(cfg.checkpoint_dir, resume=cfg.resume, remember=REMEMBER_BATCHES)
        except InboxStoreError as exc:
            raise fail(str(exc)) from exc
    inbox = Inbox(capacity_steps=capacity, max_policy_lag=lag, store=store)
    if store is not None and cfg.resume:
        say(
            f"inbox resumed from {store.path}: {inbox.steps_queued:,} steps queued, "
            f"{inbox.counters.steps_ingested:,} ingested so far"
        )
    return inbox


def open_recorder(cfg: ServerConfig, obs_space: Space, act_space: Space) -> Recorder | None:
    """With --record DIR: the recorder the experience route hands accepted batches to (front/recorder.py)."""
    if not cfg.record:
        return None
    from .front.recorder import Recorder
    from .offline.recording import RecordingError

    try:
        recorder = Recorder(cfg.record, obs_space, act_space, cfg.algo)
    except RecordingError as exc:
        raise fail(f"--record: {exc}") from exc
    say(f"recording every accepted step to {recorder.path} (RLlib's offline format, Parquet)")
    return recorder


def start_trainer(cfg: ServerConfig, policies: PolicySet) -> tuple[BaseProcess, Connection]:
    """The trainer child process (spawned: no state of this process leaks into it) and our end of the link."""
    ctx = mp.get_context("spawn")
    front_conn, trainer_conn = ctx.Pipe()
    trainer = ctx.Process(
        target=run_trainer,
        name="agentsdk-trainer",
        args=(trainer_conn, cfg, encode(policies.to_wire())),
    )
    trainer.start()
    return trainer, front_conn


class _Uvicorn(uvicorn.Server):
    """uvicorn, plus a line saying where it listens once the socket is bound."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                say(f"listening on {'https' if self.config.is_ssl else 'http'}://{host}:{port}")


def make_front(cfg: ServerConfig, state: ServerState, recorder: Recorder | None = None) -> _Uvicorn:
    return _Uvicorn(
        uvicorn.Config(
            create_app(state, recorder),
            host=cfg.host,
            port=cfg.port,
            log_level="warning",
            access_log=False,
            ssl_certfile=cfg.ssl_certfile,
            ssl_keyfile=cfg.ssl_keyfile,
            timeout_keep_alive=60,
            lifespan="off",
        )
    )


class ProgressPrinter:
    """One progress line per ``every`` seconds (and the first one always)."""

    def __init__(self, state: ServerState, every: float) -> None:
        self.state = state
        self.every = every
        self.last = 0.0

    def __call__(self, p: dict[str, Any]) -> None:
        self.state.training = p
        now = time.monotonic()
        if now - self.last < self.every and p.get("iteration", 0) > 0:
            return
        self.last = now
        c = self.state.inbox.counters
        ret = p.get("return_mean")
        say(
            f"iter {p.get('iteration', 0):>4} | trained steps {p.get('steps', 0):>9,} | "
            f"return {'   -  ' if ret is None else f'{ret:6.1f}'} | {p.get('steps_per_s', 0):7,.0f} steps/s | "
            f"clients {self.state.active_clients():>3} | policy v{self.state.policy_version} | "
            f"ingested {c.steps_ingested:,} | stale {c.steps_stale:,} | inbox {self.state.inbox.steps_queued:,}"
        )


def connect(
    conn: Connection, state: ServerState, cfg: ServerConfig, finished: Callable[[str, bool], None]
) -> FrontLink:
    """The link thread: the trainer pulls from the inbox, publishes into the state."""
    inbox = state.inbox

    def take(max_steps: int) -> list[ExperienceChunk] | None:
        try:
            return inbox.take(max_steps)
        except InboxClosed:
            return None

    def publish(version: int, policies: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
        onnx, contract = policies[DEFAULT_POLICY_ID]  # TODO(issue 9): every policy
        state.publish(load_policy(version, onnx, contract, state.inference.rng, state.run_id))

    link = FrontLink(
        conn, take=take, publish=publish, progress=ProgressPrinter(state, cfg.log_every), finished=finished
    )
    link.start()
    return link


def drain(state: ServerState, link: FrontLink, trainer: BaseProcess) -> None:
    """Stop taking experience; let the trainer finish its iteration and checkpoint; close the inbox."""
    state.stopping = True
    state.inbox.close()
    link.thread.join(timeout=120)
    trainer.join(timeout=30)
    if trainer.is_alive():
        trainer.terminate()
        trainer.join(5)
    state.inbox.close_store()


# ---- the whole life ----------------------------------------------------------------------


def serve(cfg: ServerConfig) -> int:
    try:
        spec = algorithm_spec(cfg.algo)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    obs_space, act_space = resolve_spaces(cfg)
    inbox = open_inbox(cfg)
    state = ServerState(
        observation_space=obs_space,
        action_space=act_space,
        algorithm=cfg.algo,
        distribution=spec.distribution(act_space),
        limits=cfg.limits,
        inbox=inbox,
        inference=BatchedInference(seed=cfg.seed),
        token=cfg.token,
    )
    say(f"observation space {obs_space!r}, action space {act_space!r}, algorithm {cfg.algo}")
    recorder = open_recorder(cfg, obs_space, act_space)

    trainer, conn = start_trainer(cfg, PolicySet.single(obs_space, act_space))
    front = make_front(cfg, state, recorder)
    outcome: dict[str, Any] = {"failed": False}

    def finished(reason: str, failed: bool) -> None:
        outcome.update(reason=reason, failed=failed)
        say(
            ("training FAILED: " if failed else "training finished: ") + reason.splitlines()[0]
            if reason
            else "training finished"
        )
        if failed and "\n" in reason:
            print(reason, file=sys.stderr, flush=True)
        front.should_exit = True

    link = connect(conn, state, cfg, finished)
    # uvicorn re-raises SIGINT/SIGTERM once it has stopped; these no-op handlers
    # make that re-raise harmless, so the drain below always runs.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        front.run()
    finally:
        drain(state, link, trainer)
        if recorder is not None:  # the front takes no more experience: write the rest, close the file
            recorder.close()
    c, left = inbox.counters, inbox.steps_queued
    kept = (
        f" (kept in {inbox.store.path} for --resume)"
        if inbox.store is not None
        else " (lost: no --checkpoint-dir)"
        if left
        else ""
    )
    say(
        f"stopped: ingested {c.steps_ingested:,} steps, trained on {c.steps_delivered:,}, "
        f"stale {c.steps_stale:,}, left in inbox {left:,}{kept}"
    )
    if recorder is not None:
        say(
            f"recorded {recorder.steps_written:,} steps to {recorder.path} ({recorder.files_written} file(s))"
            + (f"; recording FAILED: {recorder.failed}" if recorder.failed else "")
        )
    return 1 if outcome["failed"] else 0
