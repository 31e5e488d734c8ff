"""``agentsdk serve``: the HTTP front in this process, the learner in a child process.

The front (uvicorn + starlette) validates, queues and answers; the trainer
process runs RLlib. They share nothing but the trainer link (a pipe carrying
msgpack). The front never imports Ray, so it starts in well under a second and
no learner update ever stalls a request.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import sys
import time
from typing import Any

import uvicorn

from agentsdk_client._codec import encode
from agentsdk_client._spaces import Space, check_trainable_action_space

from .config import DEFAULT_POLICY_LAG, SUPPORTED_ALGOS, ServerConfig

log = logging.getLogger("agentsdk.server")

# Train batch size RLlib uses when the config does not set one (PPO's default).
DEFAULT_TRAIN_BATCH = 4000


def resolve_spaces(cfg: ServerConfig) -> tuple[Space, Space]:
    from .spaces import from_json_arg, spaces_of_env

    if cfg.env:
        return spaces_of_env(cfg.env)
    if cfg.observation_space and cfg.action_space:
        return from_json_arg(cfg.observation_space), from_json_arg(cfg.action_space)
    raise SystemExit("agentsdk serve: give --env GYM_ID, or both --observation-space and --action-space")


def say(text: str) -> None:
    print(f"[agentsdk {time.strftime('%H:%M:%S')}] {text}", flush=True)


class ProgressPrinter:
    def __init__(self, state: Any, every: float) -> None:
        self.state = state
        self.every = every
        self.last = 0.0

    def __call__(self, p: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last < self.every and p.get("iteration", 0) > 0:
            return
        self.last = now
        c = self.state.inbox.counters
        ret = p.get("return_mean")
        say(f"iter {p.get('iteration', 0):>4} | trained steps {p.get('steps', 0):>9,} | "
            f"return {'   -  ' if ret is None else f'{ret:6.1f}'} | {p.get('steps_per_s', 0):7,.0f} steps/s | "
            f"clients {self.state.active_clients():>3} | policy v{self.state.policy_version} | "
            f"ingested {c.steps_ingested:,} | stale {c.steps_stale:,} | inbox {self.state.inbox.steps_queued:,}")


class _Server(uvicorn.Server):
    """uvicorn, plus a line saying where it listens once the socket is bound."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                scheme = "https" if self.config.is_ssl else "http"
                say(f"listening on {scheme}://{host}:{port}")


def serve(cfg: ServerConfig) -> int:
    from agentsdk_server.app import create_app
    from agentsdk_server.inbox import REMEMBER_BATCHES, Inbox
    from agentsdk_server.inbox_store import InboxStore, InboxStoreError
    from agentsdk_server.inference import BatchedInference
    from agentsdk_server.state import ServerState
    from agentsdk_server.trainer_link import ServerSide
    from agentsdk_server.validation import Limits

    from .training import run_trainer

    if cfg.algo not in SUPPORTED_ALGOS:
        raise SystemExit(f"agentsdk serve: --algo {cfg.algo} is not supported yet; use one of "
                         f"{', '.join(SUPPORTED_ALGOS)}")
    try:
        obs_space, act_space = resolve_spaces(cfg)
        check_trainable_action_space(act_space)
    except Exception as exc:  # a SpaceError, bad JSON, an unknown gymnasium id: say it, no traceback
        raise SystemExit(f"agentsdk serve: {type(exc).__name__}: {exc}") from exc
    batch = int(cfg.training.get("train_batch_size_per_learner",
                                 cfg.training.get("train_batch_size", DEFAULT_TRAIN_BATCH)))
    lag = cfg.max_policy_lag if cfg.max_policy_lag is not None else DEFAULT_POLICY_LAG.get(cfg.algo, -1)

    store = None
    if cfg.checkpoint_dir:  # the inbox on disk: acknowledged steps survive a crash (server/inbox_store.py)
        try:
            store = InboxStore.open(cfg.checkpoint_dir, resume=cfg.resume, remember=REMEMBER_BATCHES)
        except InboxStoreError as exc:
            raise SystemExit(f"agentsdk serve: {exc}") from exc
    inbox = Inbox(capacity_steps=max(int(cfg.inbox_batches * batch), cfg.max_chunk_steps), max_policy_lag=lag,
                  store=store)
    if store is not None and cfg.resume:
        say(f"inbox resumed from {store.path}: {inbox.steps_queued:,} steps queued, "
            f"{inbox.counters.steps_ingested:,} ingested so far")

    state = ServerState(
        observation_space=obs_space, action_space=act_space, algorithm=cfg.algo,
        limits=Limits(cfg.max_batch, cfg.max_chunks, cfg.max_chunk_steps),
        max_body_bytes=cfg.max_body_bytes,
        inbox=inbox,
        inference=BatchedInference(act_space, seed=cfg.seed), token=cfg.token,
    )
    say(f"observation space {obs_space!r}, action space {act_space!r}, algorithm {cfg.algo}")

    ctx = mp.get_context("spawn")
    server_conn, trainer_conn = ctx.Pipe()
    trainer = ctx.Process(target=run_trainer, name="agentsdk-trainer",
                          args=(trainer_conn, cfg, encode([obs_space.to_spec(), act_space.to_spec()])))
    trainer.start()

    uv = _Server(uvicorn.Config(
        create_app(state), host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
        ssl_certfile=cfg.ssl_certfile, ssl_keyfile=cfg.ssl_keyfile, timeout_keep_alive=60,
        lifespan="off",
    ))
    outcome: dict[str, Any] = {"failed": False}

    def finished(reason: str, failed: bool) -> None:
        outcome.update(reason=reason, failed=failed)
        say(("training FAILED: " if failed else "training finished: ") + reason.splitlines()[0]
            if reason else "training finished")
        if failed and "\n" in reason:
            print(reason, file=sys.stderr, flush=True)
        uv.should_exit = True

    link = ServerSide(server_conn, state, on_progress=ProgressPrinter(state, cfg.log_every), on_finish=finished)
    link.start()
    # uvicorn re-raises SIGINT/SIGTERM once it has stopped; these no-op handlers
    # make that re-raise harmless, so the drain below always runs.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        uv.run()
    finally:
        # Stop taking experience, let the trainer finish its iteration and checkpoint.
        state.stopping = True
        state.inbox.close()
        link.thread.join(timeout=120)
        trainer.join(timeout=30)
        if trainer.is_alive():
            trainer.terminate()
            trainer.join(5)
        inbox.close_store()
    c, left = inbox.counters, inbox.steps_queued
    kept = (f" (kept in {store.path} for --resume)" if store is not None
            else " (lost: no --checkpoint-dir)" if left else "")
    say(f"stopped: ingested {c.steps_ingested:,} steps, trained on {c.steps_delivered:,}, "
        f"stale {c.steps_stale:,}, left in inbox {left:,}{kept}")
    return 1 if outcome["failed"] else 0

