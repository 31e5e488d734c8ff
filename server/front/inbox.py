"""The training inbox: accepted experience waiting for the learner.

Bounded (a full inbox answers 429), idempotent (a batch id is counted once),
and honest: every step is counted as ingested when accepted, then as either
delivered to the learner or stale (beyond the algorithm's policy-lag limit).

With a store (``inbox_store.InboxStore``, used when the server has a
``--checkpoint-dir``) it is also durable: ``put`` returns only after the batch
is committed to disk, ``take`` deletes what it hands over, and a restarted
server reloads the queue, the seen batch ids and the counters. Without one it
lives in memory only.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, fields, replace

from agentsdk_client.protocol.chunk import ExperienceChunk
from agentsdk_client.protocol.codec import decode, encode

from .inbox_store import InboxStore

log = logging.getLogger("agentsdk.server")

# Batch ids remembered for idempotency (in memory and in the store): the newest million.
REMEMBER_BATCHES = 1_000_000


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
    def __init__(
        self,
        capacity_steps: int,
        max_policy_lag: int,
        remember_batches: int = REMEMBER_BATCHES,
        store: InboxStore | None = None,
    ) -> None:
        self.capacity_steps = capacity_steps
        self.max_policy_lag = max_policy_lag
        self.counters = InboxCounters()
        self.store = store
        self._remember = remember_batches
        self._chunks: deque[tuple[int, ExperienceChunk]] = deque()  # (seq, chunk); seq keys the store's rows
        self._next_seq = 1
        self._steps = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._cond = threading.Condition()
        self._closed = False
        self.newest_version = 0
        if store is not None:
            self._reload(store)

    def _reload(self, store: InboxStore) -> None:
        """What the previous run left: counters, seen batch ids, undelivered chunks."""
        counters, seen, rows = store.load()
        known = {f.name for f in fields(InboxCounters)}
        self.counters = InboxCounters(**{k: v for k, v in counters.items() if k in known})
        self._seen = OrderedDict.fromkeys(seen[-self._remember :])
        for seq, body in rows:
            chunk = ExperienceChunk.from_wire(decode(body))
            self._chunks.append((seq, chunk))
            self._steps += chunk.steps
        self._next_seq = rows[-1][0] + 1 if rows else 1

    @property
    def durable(self) -> bool:
        return self.store is not None

    def _is_stale(self, chunk: ExperienceChunk, newest: int) -> bool:
        return self.max_policy_lag >= 0 and int(chunk.policy_versions.min()) < newest - self.max_policy_lag

    def set_newest_version(self, version: int) -> None:
        with self._cond:
            self.newest_version = version

    @property
    def steps_queued(self) -> int:
        return self._steps

    def seen(self, batch_id: str) -> bool:
        with self._cond:
            return batch_id in self._seen

    def put(self, batch_id: str, chunks: list[ExperienceChunk], steps: int) -> tuple[int, bool]:
        """Queue a whole batch, or nothing. Returns (accepted_steps, duplicate).

        With a store this returns only once the batch is committed to disk (one
        fsync; call it off the event loop).
        """
        with self._cond:
            if batch_id in self._seen:
                self.counters.batches_duplicate += 1
                return 0, True
            # Already-stale chunks are counted, never queued: they must not crowd out fresh ones.
            fresh = [c for c in chunks if not self._is_stale(c, self.newest_version)]
            fresh_steps = sum(c.steps for c in fresh)
            # An empty inbox takes any batch, so one large batch cannot starve.
            if fresh_steps and self._steps and self._steps + fresh_steps > self.capacity_steps:
                self.counters.batches_rejected_full += 1
                raise InboxFull(retry_after=1.0)
            c = self.counters
            counters = replace(
                c,
                steps_stale=c.steps_stale + steps - fresh_steps,
                steps_ingested=c.steps_ingested + steps,
                chunks_ingested=c.chunks_ingested + len(chunks),
                batches_accepted=c.batches_accepted + 1,
            )
            seqs = range(self._next_seq, self._next_seq + len(fresh))
            if self.store is not None:  # on disk first: a failed write changes nothing here
                self.store.add_batch(
                    batch_id,
                    [
                        (seq, chunk.steps, encode(chunk.to_wire()))
                        for seq, chunk in zip(seqs, fresh, strict=True)
                    ],
                    counters,
                )
            self._seen[batch_id] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            self._chunks.extend(zip(seqs, fresh, strict=True))
            self._next_seq += len(fresh)
            self._steps += fresh_steps
            self.counters = counters
            self._cond.notify_all()
            return steps, False

    def take(self, max_steps: int, timeout: float | None = None) -> list[ExperienceChunk]:
        """Wait for experience, then hand over up to ``max_steps`` fresh steps (at least one chunk).

        A durable inbox stops handing over once closed: what is left stays on
        disk for the next run instead of going into a batch the stopping
        trainer would never finish.
        """
        out: list[ExperienceChunk] = []
        taken = stale = last_seq = 0
        closed = False
        with self._cond:
            while not out:
                if self._closed and (self.store is not None or not self._chunks):
                    closed = True
                    break
                if not self._chunks:
                    if not self._cond.wait(timeout) and not self._chunks:
                        break
                    continue
                while self._chunks and (not out or taken + self._chunks[0][1].steps <= max_steps):
                    last_seq, chunk = self._chunks.popleft()
                    steps = chunk.steps
                    self._steps -= steps
                    if self._is_stale(chunk, self.newest_version):
                        stale += steps
                        continue
                    out.append(chunk)
                    taken += steps
            if last_seq:
                self._handed_over(last_seq, taken, stale)
        if closed:
            raise InboxClosed
        return out

    def _handed_over(self, last_seq: int, delivered: int, stale: int) -> None:
        c = self.counters
        self.counters = replace(
            c, steps_delivered=c.steps_delivered + delivered, steps_stale=c.steps_stale + stale
        )
        # Deleted on hand-over, not at the trainer's next checkpoint: a crash in between loses
        # these steps' training effect (weights roll back), never their count (inbox_store.py).
        if self.store is not None:
            try:
                self.store.remove_upto(last_seq, self.counters)
            except Exception:  # the hand-over goes on: at worst a restart trains on these chunks again
                log.exception("could not record the hand-over to the trainer in %s", self.store.path)

    def close(self) -> None:
        """Stop: ``take`` raises InboxClosed (at once when durable, else once the queue is empty)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def close_store(self) -> None:
        """Save the counters and release the inbox file (after ``close``, once the trainer link is done)."""
        with self._cond:
            if self.store is not None:
                self.store.close(self.counters)
