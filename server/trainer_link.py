"""The link between the HTTP process and the trainer process.

The learner runs in its own process (the GIL would otherwise stall HTTP
handlers during an update, and the other way round). They talk over one
``multiprocessing`` pipe carrying our own msgpack codec, never pickle:

    trainer -> server  {"op": "pull", "max_steps"}              (blocks for experience)
    server  -> trainer {"op": "chunks", "chunks"} | {"op": "stop"}
    trainer -> server  {"op": "policy", "version", "onnx", "contract"}
    trainer -> server  {"op": "progress", ...numbers...}
    trainer -> server  {"op": "done", "reason"} | {"op": "failed", "error"}
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from agentsdk_client._codec import decode, encode

from .inbox import InboxClosed
from .inference import load_policy
from .state import ServerState

log = logging.getLogger("agentsdk.server")


class TrainingStopped(Exception):
    """The server asked the trainer to stop (shutdown)."""


class TrainerSide:
    """Used inside the trainer process by the input reader and the training loop."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.version = 0

    def send(self, op: str, **fields: Any) -> None:
        self.conn.send_bytes(encode({"op": op, **fields}))

    def pull(self, max_steps: int) -> list[dict[str, Any]]:
        self.send("pull", max_steps=max_steps)
        reply = decode(self.conn.recv_bytes())
        if reply["op"] == "stop":
            raise TrainingStopped
        return reply["chunks"]


class ServerSide:
    """Runs in the HTTP process on its own thread: feeds the trainer, publishes policies."""

    def __init__(self, conn: Connection, state: ServerState,
                 on_progress: Callable[[dict[str, Any]], None],
                 on_finish: Callable[[str, bool], None]) -> None:
        self.conn = conn
        self.state = state
        self.on_progress = on_progress
        self.on_finish = on_finish
        self.thread = threading.Thread(target=self._serve, name="trainer-link", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                msg = decode(self.conn.recv_bytes())
                op = msg["op"]
                if op == "pull":
                    try:
                        chunks = self.state.inbox.take(msg["max_steps"])
                    except InboxClosed:
                        self.conn.send_bytes(encode({"op": "stop"}))
                        continue
                    self.conn.send_bytes(encode({"op": "chunks", "chunks": chunks}))
                elif op == "policy":
                    self.state.publish(load_policy(msg["version"], msg["onnx"], msg["contract"],
                                                   self.state.run_id))
                elif op == "progress":
                    self.state.training = msg
                    self.on_progress(msg)
                elif op in ("done", "failed"):
                    self.on_finish(msg.get("reason") or msg.get("error", ""), op == "failed")
                    return
        except (EOFError, OSError):
            self.on_finish("the trainer process exited", True)
