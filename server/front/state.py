"""Everything the front knows, in one object the routes read."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from agentsdk_client.protocol.limits import Limits
from agentsdk_client.protocol.policy_form import action_dist_size
from agentsdk_client.protocol.spaces import Space

from .inbox import Inbox
from .inference import BatchedInference, Policy


@dataclass
class ServerState:
    observation_space: Space
    action_space: Space
    algorithm: str
    distribution: str  # what clients sample with (the algorithm's, PROTOCOL.md section 3)
    limits: Limits
    inbox: Inbox
    inference: BatchedInference
    token: str | None = None
    training: dict[str, Any] = field(default_factory=dict)  # latest progress from the trainer
    act_requests: int = 0
    rejected: int = 0
    stopping: bool = False
    _clients: dict[str, float] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])  # this server process
    # Long-polling GET /v1/policy requests wait on this; publish() wakes them from the link thread.
    loop: asyncio.AbstractEventLoop | None = None
    _published: asyncio.Event | None = None

    def policy_published(self) -> asyncio.Event:
        """The event the next publish sets (call on the event loop)."""
        if self._published is None:
            self.loop = asyncio.get_running_loop()
            self._published = asyncio.Event()
        return self._published

    def _wake_waiters(self) -> None:
        event, self._published = self._published, None
        if event is not None:
            event.set()

    @property
    def dist_size(self) -> int:
        return action_dist_size(self.action_space)

    @property
    def policy(self) -> Policy | None:
        return self.inference.policy

    @property
    def policy_version(self) -> int:
        policy = self.inference.policy
        return policy.version if policy else -1

    def publish(self, policy: Policy) -> None:
        self.inference.policy = policy
        self.inbox.set_newest_version(policy.version)
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._wake_waiters)

    def saw_client(self, client_id: str) -> None:
        if client_id:
            self._clients[client_id] = time.monotonic()
            if len(self._clients) > 10_000:
                self.active_clients()

    def active_clients(self, window_s: float = 60.0) -> int:
        cutoff = time.monotonic() - window_s
        for key in [k for k, t in self._clients.items() if t < cutoff]:
            del self._clients[key]
        return len(self._clients)
