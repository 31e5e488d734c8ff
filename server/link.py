"""The link between the HTTP front and the trainer: one pipe carrying msgpack, never pickle.

The learner runs in its own process (the GIL would otherwise stall HTTP
handlers during an update, and the other way round). Messages::

    trainer -> front  {"op": "pull", "max_steps"}              (blocks for experience)
    front -> trainer  {"op": "chunks", "chunks"} | {"op": "stop"}
    trainer -> front  {"op": "policy", "version", "policies": {policy_id: {"onnx", "contract"}}}
    trainer -> front  {"op": "progress", ...numbers...}
    trainer -> front  {"op": "done", "reason"} | {"op": "failed", "error"}

Each end takes callables for what it does with a message, so this module
imports neither the front's state nor the trainer's RLlib.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from agentsdk_client.protocol.chunk import ExperienceChunk
from agentsdk_client.protocol.codec import decode, encode


class TrainingStopped(Exception):
    """The front asked the trainer to stop (shutdown)."""


class TrainerLink:
    """The trainer's end: pull experience, publish policies, report progress."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.version = 0  # the policy version last published

    def _send(self, op: str, **fields: Any) -> None:
        self.conn.send_bytes(encode({"op": op, **fields}))

    def pull(self, max_steps: int) -> list[ExperienceChunk]:
        """Wait for experience: up to ``max_steps`` steps (at least one chunk). Raises TrainingStopped."""
        self._send("pull", max_steps=max_steps)
        reply = decode(self.conn.recv_bytes())
        if reply["op"] == "stop":
            raise TrainingStopped
        return [ExperienceChunk.from_wire(c) for c in reply["chunks"]]

    def publish(self, version: int, policies: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
        """Every policy's ONNX and contract at ``version``, in one message (the front swaps them together)."""
        self.version = version
        wire = {pid: {"onnx": onnx, "contract": contract} for pid, (onnx, contract) in policies.items()}
        self._send("policy", version=version, policies=wire)

    def progress(self, **numbers: Any) -> None:
        self._send("progress", **numbers)

    def done(self, reason: str) -> None:
        self._send("done", reason=reason)

    def failed(self, error: str) -> None:
        self._send("failed", error=error)


class FrontLink:
    """The front's end, on its own thread: feeds the trainer, hands on what it sends back.

    ``take(max_steps)`` blocks for experience and returns None once the front is stopping.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        take: Callable[[int], list[ExperienceChunk] | None],
        publish: Callable[[int, dict[str, tuple[bytes, dict[str, Any]]]], None],
        progress: Callable[[dict[str, Any]], None],
        finished: Callable[[str, bool], None],
    ) -> None:
        self.conn = conn
        self._take = take
        self._publish = publish
        self._progress = progress
        self._finished = finished
        self.thread = threading.Thread(target=self._serve, name="trainer-link", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                msg = decode(self.conn.recv_bytes())
                op = msg["op"]
                if op == "pull":
                    chunks = self._take(msg["max_steps"])
                    reply = (
                        {"op": "stop"}
                        if chunks is None
                        else {"op": "chunks", "chunks": [c.to_wire() for c in chunks]}
                    )
                    self.conn.send_bytes(encode(reply))
                elif op == "policy":
                    policies = {pid: (p["onnx"], p["contract"]) for pid, p in msg["policies"].items()}
                    self._publish(msg["version"], policies)
                elif op == "progress":
                    self._progress(msg)
                elif op in ("done", "failed"):
                    self._finished(msg.get("reason") or msg.get("error", ""), op == "failed")
                    return
        except (EOFError, OSError):
            self._finished("the trainer process exited", True)
