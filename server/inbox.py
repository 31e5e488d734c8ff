"""The training inbox: accepted experience waiting for the learner.

Bounded (a full inbox answers 429), idempotent (a batch id is counted once),
and honest: every step is counted as ingested when accepted, then as either
delivered to the learner or stale (beyond the algorithm's policy-lag limit).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any


class InboxFull(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__("training inbox is full")
        self.retry_after = retry_after


class InboxClosed(Exception):
    pass


@dataclass
class InboxCounters:
    steps_ingested: int = 0
    chunks_ingested: int = 0
    batches_accepted: int = 0
    batches_duplicate: int = 0
    batches_rejected_full: int = 0
    steps_delivered: int = 0
    steps_stale: int = 0


class Inbox:
    def __init__(self, capacity_steps: int, max_policy_lag: int, remember_batches: int = 1_000_000) -> None:
        self.capacity_steps = capacity_steps
        self.max_policy_lag = max_policy_lag
        self.counters = InboxCounters()
        self._remember = remember_batches
        self._chunks: deque[dict[str, Any]] = deque()
        self._steps = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._cond = threading.Condition()
        self._closed = False
        self.newest_version = 0

    def _is_stale(self, chunk: dict[str, Any], newest: int) -> bool:
        return self.max_policy_lag >= 0 and int(chunk["policy_versions"].min()) < newest - self.max_policy_lag

    def set_newest_version(self, version: int) -> None:
        with self._cond:
            self.newest_version = version

    @property
    def steps_queued(self) -> int:
        return self._steps

    def seen(self, batch_id: str) -> bool:
        with self._cond:
            return batch_id in self._seen

    def put(self, batch_id: str, chunks: list[dict[str, Any]], steps: int) -> tuple[int, bool]:
        """Queue a whole batch, or nothing. Returns (accepted_steps, duplicate)."""
        with self._cond:
            if batch_id in self._seen:
                self.counters.batches_duplicate += 1
                return 0, True
            # Already-stale chunks are counted, never queued: they must not crowd out fresh ones.
            fresh = [c for c in chunks if not self._is_stale(c, self.newest_version)]
            fresh_steps = sum(len(c["rewards"]) for c in fresh)
            # An empty inbox takes any batch, so one large batch cannot starve.
            if fresh_steps and self._steps and self._steps + fresh_steps > self.capacity_steps:
                self.counters.batches_rejected_full += 1
                raise InboxFull(retry_after=1.0)
            self._seen[batch_id] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            self._chunks.extend(fresh)
            self._steps += fresh_steps
            c = self.counters
            c.steps_stale += steps - fresh_steps
            c.steps_ingested += steps
            c.chunks_ingested += len(chunks)
            c.batches_accepted += 1
            self._cond.notify_all()
            return steps, False

    def take(self, max_steps: int, timeout: float | None = None) -> list[dict[str, Any]]:
        """Wait for experience, then hand over up to ``max_steps`` fresh steps (at least one chunk)."""
        out: list[dict[str, Any]] = []
        taken = 0
        with self._cond:
            while not out:
                if not self._chunks:
                    if self._closed:
                        raise InboxClosed
                    if not self._cond.wait(timeout) and not self._chunks:
                        return out
                    continue
                while self._chunks and (not out or taken + len(self._chunks[0]["rewards"]) <= max_steps):
                    chunk = self._chunks.popleft()
                    steps = len(chunk["rewards"])
                    self._steps -= steps
                    if self._is_stale(chunk, self.newest_version):
                        self.counters.steps_stale += steps
                        continue
                    out.append(chunk)
                    taken += steps
            self.counters.steps_delivered += taken
        return out

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
