"""The background uploader: finished chunks -> ``POST /v1/experience`` batches.

The app's thread only appends to a bounded in-memory queue (``submit``) and
never waits on the network. One daemon thread takes whatever is queued,
encodes it, groups it into batches within the server's limits (``max_chunks``,
``max_body_bytes``) and sends each batch under a ``batch_id`` fixed when the
batch is made: every resend of that batch, in this run or after a restart
from the spool, is the same body, so the server counts it once.

Retries: transport failures, 5xx and 429 are retried with exponential backoff
and jitter (429 waits ``Retry-After``). A batch the server rejects as wrong
(400/422/413) is split in halves, whose ids derive from the parent's
(``<id>-0``, ``<id>-1``) so a resent parent splits into the same halves; a
single bad chunk is logged and counted as rejected.

Memory is bounded in steps and in bytes (``max_queued_steps``,
``max_queued_bytes``; optionally in chunks). What happens at the bound:

- without a spool, the oldest chunk is dropped (and counted): stale data is
  worth least;
- with a spool (``_spool.Spool``), nothing is dropped: from 90 % of the bound
  the uploader thread moves the oldest chunks to disk, already encoded under
  their batch id, down to 50 %. Should the app still reach the bound (the
  uploader thread is stuck in a request), ``submit`` spills in the app's
  thread. Spooled batches are sent oldest first, before anything in memory;
  ``close`` moves whatever it could not deliver to the spool, and a new
  uploader on the same spool sends it. Only ``max_spool_bytes`` (when set)
  drops, the oldest batches first, counted.

Hand-offs use one condition variable and one abort event; nothing polls.
"""

from __future__ import annotations

import collections
import logging
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from ._errors import AgentsdkError, BadRequest, PayloadTooLarge, RateLimited
from ._spool import Spool
from .protocol.chunk import ExperienceChunk
from .protocol.codec import CodecError, decode, encode

log = logging.getLogger("agentsdk_client")

# Room for the request's own map around the chunks (keys, batch_id, client_id).
_ENVELOPE_BYTES = 512
# With a spool: the uploader starts moving chunks to disk above HIGH of the
# memory bound and stops below LOW (one large write rather than many small ones).
_SPILL_HIGH = 0.9
_SPILL_LOW = 0.5

DEFAULT_MAX_QUEUED_STEPS = 1_000_000
DEFAULT_MAX_QUEUED_BYTES = 256 << 20


@dataclass(frozen=True)
class UploadCounts:
    steps_submitted: int
    steps_acknowledged: int
    steps_rejected: int
    steps_dropped: int
    chunks_pending: int
    batches_sent: int
    retries: int
    steps_queued: int
    steps_spooled: int


def _nbytes(value: Any) -> int:
    """Roughly what a chunk holds in memory: array payloads plus a word per scalar."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values()) + 64
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value) + 64
    if isinstance(value, (bytes, str)):
        return len(value) + 48
    return 16


class _Item:
    """One finished chunk in memory; ``data`` holds its encoding once made."""

    __slots__ = ("seq", "steps", "chunk", "data", "nbytes")

    def __init__(self, seq: int, steps: int, chunk: ExperienceChunk | None, nbytes: int = 0) -> None:
        self.seq = seq
        self.steps = steps
        self.chunk = chunk
        self.data = b""
        self.nbytes = nbytes


class _Batch:
    """One experience request, body final. ``items`` are kept (memory batches only) to requeue."""

    __slots__ = ("batch_id", "body", "steps", "items", "spooled")

    def __init__(self, batch_id: str, body: bytes, steps: int, items: list[_Item], spooled: bool) -> None:
        self.batch_id = batch_id
        self.body = body
        self.steps = steps
        self.items = items
        self.spooled = spooled


class Uploader:
    """Owns the queue of finished chunks, the optional spool, and the thread that delivers them."""

    def __init__(
        self,
        send: Callable[[bytes], Any],
        *,
        client_id: str,
        max_chunks: int,
        max_body_bytes: int,
        max_queued_steps: int = DEFAULT_MAX_QUEUED_STEPS,
        max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
        max_queued_chunks: int | None = None,
        spool: Spool | None = None,
        on_response: Callable[[Any], None] | None = None,
        backoff_base: float = 0.25,
        backoff_cap: float = 10.0,
    ) -> None:
        self._send = send
        self._client_id = client_id
        self._max_chunks = max(1, int(max_chunks))
        self._max_body = max(1, int(max_body_bytes))
        self._max_steps = max(1, int(max_queued_steps))
        self._max_bytes = max(1, int(max_queued_bytes))
        self._max_queued = None if max_queued_chunks is None else max(1, int(max_queued_chunks))
        self._spool = spool
        self._on_response = on_response
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._jitter = random.Random()
        self._cond = threading.Condition()
        self._spill_lock = threading.Lock()  # one spill at a time keeps the spool in submission order
        self._queue: collections.deque[_Item] = collections.deque()
        self._queued_steps = self._queued_bytes = 0
        self._inflight_seq: int | None = None  # oldest seq taken off the queue for sending, not resolved
        self._inflight_chunks = 0
        self._spilling_seq: int | None = None  # oldest seq taken off the queue for the spool, not yet written
        self._next_seq = 0
        self._stopping = False
        self._abort = threading.Event()
        self._submitted = self._acked = self._rejected = self._dropped = 0
        self._batches = self._retries = 0
        self._warned_full = False
        self._current: _Batch | None = None  # the batch the uploader thread is sending
        self._spool_retry_at = 0.0  # after a failed spool write, no new spill before this (monotonic)
        if spool is not None and spool.rows:
            log.info(
                "agentsdk: %d experience steps (%d batches) left in the spool at %s by an earlier run; "
                "sending them first",
                spool.steps,
                spool.rows,
                spool.directory,
            )
        # Set while the server takes experience; cleared by a 429 (see PolicyClient.wait_for_server).
        self.accepting = threading.Event()
        self.accepting.set()
        self._nudged = False
        self._thread = threading.Thread(target=self._run, name="agentsdk-uploader", daemon=True)
        self._thread.start()

    # -- app side ----------------------------------------------------------------------

    def submit(self, chunk: ExperienceChunk) -> None:
        steps = chunk.steps
        item_bytes = _nbytes(chunk.to_wire())
        with self._cond:
            if self._stopping:
                raise RuntimeError("uploader is closed")
            self._queue.append(_Item(self._next_seq, steps, chunk, item_bytes))
            self._queued_steps += steps
            self._queued_bytes += item_bytes
            self._next_seq += 1
            self._submitted += steps
            spill = self._spool_writable() and self._over(1.0)
            if not spill:
                self._drop_over_bound()
            self._cond.notify_all()
        if spill:
            # The uploader thread did not keep up (it is inside a request): write here, once, down to LOW.
            if not self._warned_full:
                self._warned_full = True
                log.warning(
                    "agentsdk: upload queue reached its bound while the uploader was busy; the app's "
                    "thread is writing to the spool"
                )
            try:
                self._spill(_SPILL_LOW)
            except Exception:  # never the app's problem: keep the bound by dropping instead
                log.exception("agentsdk: could not write experience to the spool")
                with self._cond:
                    self._drop_over_bound()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every chunk submitted so far is resolved and the spool is empty; False on timeout."""
        with self._cond:
            target = self._next_seq
            return self._cond.wait_for(
                lambda: (
                    self._oldest_unresolved() >= target and (self._spool is None or self._spool.rows == 0)
                ),
                timeout,
            )

    def close(self, timeout: float | None) -> bool:
        """Deliver what is pending within ``timeout``, then stop; False if data was left.

        With a spool, what was left is on disk for the next uploader on it.
        """
        done = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if not done:
            self._abort.set()
            with self._cond:
                self._cond.notify_all()
        self._thread.join()
        with self._cond:
            left = self._queued_steps
        if self._spool is not None:
            spooled, where = self._spool.steps, self._spool.directory
            self._spool.close()
            if spooled:
                log.info(
                    "agentsdk: %d experience steps kept in the spool at %s; a client started on the same "
                    "spool_dir sends them",
                    spooled,
                    where,
                )
        if left:
            log.warning("closing with undelivered experience: %d queued steps not sent", left)
        return done

    def counts(self) -> UploadCounts:
        with self._cond:
            return UploadCounts(
                self._submitted,
                self._acked,
                self._rejected,
                self._dropped,
                len(self._queue) + self._inflight_chunks,
                self._batches,
                self._retries,
                self._queued_steps,
                self._spool.steps if self._spool is not None else 0,
            )

    # -- bookkeeping (under self._cond) ---------------------------------------------------

    def _oldest_unresolved(self) -> int:
        oldest = self._queue[0].seq if self._queue else self._next_seq
        for seq in (self._inflight_seq, self._spilling_seq):
            if seq is not None:
                oldest = min(oldest, seq)
        return oldest

    def _over(self, fraction: float) -> bool:
        return (
            self._queued_steps > fraction * self._max_steps
            or self._queued_bytes > fraction * self._max_bytes
            or (self._max_queued is not None and len(self._queue) > fraction * self._max_queued)
        )

    def _spool_writable(self) -> bool:
        return self._spool is not None and time.monotonic() >= self._spool_retry_at

    def _spill_wanted(self) -> bool:
        return bool(self._queue) and self._over(_SPILL_HIGH) and self._spool_writable()

    def _drop_over_bound(self) -> None:
        """No spool (or it failed): drop the oldest chunks beyond the bound, keeping the newest."""
        while len(self._queue) > 1 and self._over(1.0):
            old = self._queue.popleft()
            self._queued_steps -= old.steps
            self._queued_bytes -= old.nbytes
            self._dropped += old.steps
            if self._dropped == old.steps or self._dropped % 10_000 < old.steps:
                log.warning(
                    "upload queue full (%d steps; is the server reachable?): dropped the oldest chunk, "
                    "%d steps dropped so far",
                    self._queued_steps,
                    self._dropped,
                )

    def _requeue(self, items: list[_Item]) -> None:
        self._queue.extendleft(reversed(items))
        self._queued_steps += sum(i.steps for i in items)
        self._queued_bytes += sum(i.nbytes for i in items)

    def _take(self) -> list[_Item]:
        """Pop up to max_chunks items off the front of the queue."""
        items: list[_Item] = []
        while self._queue and len(items) < self._max_chunks:
            items.append(self._queue.popleft())
        self._queued_steps -= sum(i.steps for i in items)
        self._queued_bytes -= sum(i.nbytes for i in items)
        return items

    # -- encoding --------------------------------------------------------------------------

    def _pack(self, items: list[_Item]) -> tuple[list[_Item], list[_Item]]:
        """Encode the items; returns (those that fit one body, the rest). Bad chunks are rejected here."""
        kept: list[_Item] = []
        size = _ENVELOPE_BYTES
        for index, item in enumerate(items):
            if item.chunk is not None:
                try:
                    item.data = encode(item.chunk.to_wire())
                except CodecError as exc:
                    self._resolve_rejected(item.steps, f"chunk could not be encoded: {exc}")
                    continue
                item.chunk = None
            if len(item.data) + _ENVELOPE_BYTES > self._max_body:
                self._resolve_rejected(
                    item.steps,
                    f"one chunk is {len(item.data)} bytes, over the server's "
                    f"max_body_bytes {self._max_body}; lower max_chunk_steps",
                )
                continue
            if size + len(item.data) > self._max_body:
                return kept, items[index:]
            size += len(item.data)
            kept.append(item)
        return kept, []

    def _body(self, batch_id: str, items: list[_Item]) -> bytes:
        packer = msgpack.Packer(use_bin_type=True)
        head = (
            packer.pack_map_header(3)
            + packer.pack("batch_id")
            + packer.pack(batch_id)
            + packer.pack("client_id")
            + packer.pack(self._client_id)
            + packer.pack("chunks")
            + packer.pack_array_header(len(items))
        )
        return head + b"".join(item.data for item in items)

    def _batch(self, items: list[_Item]) -> _Batch:
        batch_id = uuid.uuid4().hex
        return _Batch(batch_id, self._body(batch_id, items), sum(i.steps for i in items), items, False)

    def _split(self, batch: _Batch) -> list[_Batch] | None:
        """Halves of a batch under ids derived from its own, or None if it holds one chunk."""
        try:
            chunks = decode(batch.body)["chunks"]
            if not isinstance(chunks, list) or len(chunks) < 2:
                return None
            half = len(chunks) // 2
            halves = []
            for index, part in enumerate((chunks[:half], chunks[half:])):
                items = []
                for chunk in part:
                    item = _Item(0, len(chunk["rewards"]), None)
                    item.data = encode(chunk)
                    items.append(item)
                batch_id = f"{batch.batch_id}-{index}"
                halves.append(
                    _Batch(batch_id, self._body(batch_id, items), sum(i.steps for i in items), [], False)
                )
            return halves
        except (CodecError, KeyError, TypeError):
            return None

    # -- the spool -----------------------------------------------------------------------

    def _spool_put(self, batch: _Batch) -> bool:
        """Write a batch to the spool; False (logged) if the disk refused it."""
        assert self._spool is not None
        current = self._current
        try:
            dropped = self._spool.put(
                batch.batch_id,
                batch.body,
                batch.steps,
                keep=current.batch_id if current is not None else None,
            )
        except (sqlite3.Error, OSError) as exc:
            with self._cond:
                self._spool_retry_at = time.monotonic() + self._backoff_cap
            log.error(
                "agentsdk: cannot write to the spool at %s (%s); keeping experience in memory, oldest "
                "dropped beyond the bound",
                self._spool.directory,
                exc,
            )
            return False
        if dropped:
            steps = sum(s for _, s in dropped)
            with self._cond:
                self._dropped += steps
            log.warning(
                "agentsdk: spool over max_spool_bytes: dropped its %d oldest batches (%d steps)",
                len(dropped),
                steps,
            )
        return True

    def _spill(self, low: float, current: _Batch | None = None) -> None:
        """Move the oldest memory (``current`` first, then the queue) to the spool until below ``low``."""
        assert self._spool is not None
        with self._spill_lock:
            if current is not None and not current.spooled and current.items:
                if not self._spool_put(current):
                    return
                current.spooled = True
                with self._cond:
                    self._inflight_seq = None
                    self._inflight_chunks = 0
                    self._cond.notify_all()
            while True:
                with self._cond:
                    if not (self._queue and self._over(low)):
                        return
                    items = self._take()
                    self._spilling_seq = items[0].seq
                kept, rest, written = [], items, False
                try:
                    kept, rest = self._pack(items)
                    written = not kept or self._spool_put(self._batch(kept))
                finally:  # whatever happened, the chunks are either on disk or back in the queue
                    with self._cond:
                        self._requeue(rest if written else rest + kept)
                        self._spilling_seq = None
                        if not written:
                            self._drop_over_bound()
                        self._cond.notify_all()
                if not written:
                    return

    # -- uploader thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._abort.is_set():
                try:
                    if not self._step():
                        break
                except Exception:  # a bug or a broken disk: log, wait, go on rather than die or spin
                    log.exception(
                        "agentsdk: error in the uploader thread; retrying in %gs", self._backoff_cap
                    )
                    self._abort.wait(self._backoff_cap)
        finally:
            if self._abort.is_set() and self._spool is not None:
                try:
                    self._spill(0.0)
                except Exception:
                    log.exception("agentsdk: could not move the undelivered experience to the spool")
            with self._cond:
                self._cond.notify_all()

    def _step(self) -> bool:
        """Deliver one batch; False when the uploader should stop."""
        batch = self._next_batch()
        if batch is None:
            return False
        self._current = batch
        try:
            if not self._deliver(batch, batch):
                self._keep(batch)
                return False
        finally:
            self._current = None
        if batch.spooled:
            self._spool.ack(batch.batch_id)  # type: ignore[union-attr]
        with self._cond:
            if not batch.spooled:
                self._inflight_seq = None
                self._inflight_chunks = 0
            self._cond.notify_all()
        return True

    def _next_batch(self) -> _Batch | None:
        """The next batch to send: the spool's oldest, else a new one from the queue; None to stop."""
        while True:
            with self._cond:
                # A spill in progress holds the oldest chunks: wait for it, they go before the rest.
                self._cond.wait_for(
                    lambda: (
                        self._abort.is_set()
                        or self._spilling_seq is None
                        and (
                            self._stopping
                            or bool(self._queue)
                            or (self._spool is not None and self._spool.rows > 0)
                        )
                    )
                )
                if self._abort.is_set():
                    return None
                spill = self._spill_wanted()
                from_spool = self._spool is not None and self._spool.rows > 0
                if not (spill or from_spool):
                    if not self._queue:
                        return None  # stopping, nothing left
                    items = self._take()
                    self._inflight_seq = items[0].seq
                    self._inflight_chunks = len(items)
            if spill:
                self._spill(_SPILL_LOW)
                continue
            if from_spool:
                entries = self._spool.peek(1)  # type: ignore[union-attr]
                if entries:
                    entry = entries[0]
                    return _Batch(entry.batch_id, entry.body, entry.steps, [], True)
                continue
            kept, rest = self._pack(items)
            with self._cond:
                self._requeue(rest)
                self._inflight_seq = kept[0].seq if kept else None
                self._inflight_chunks = len(kept)
                self._cond.notify_all()
            if kept:
                return self._batch(kept)

    def _deliver(self, batch: _Batch, top: _Batch) -> bool:
        """Send one batch until it is accepted or rejected (True), or the uploader is aborted (False)."""
        attempt = 0
        while not self._abort.is_set():
            try:
                with self._cond:
                    self._batches += 1
                response = self._send(batch.body)
            except AgentsdkError as exc:
                if not getattr(exc, "retryable", False):
                    halves = self._split(batch) if isinstance(exc, (BadRequest, PayloadTooLarge)) else None
                    if halves:
                        # Accepted or rejected as a whole: split to save the good chunks.
                        return all(self._deliver(half, top) for half in halves)
                    self._resolve_rejected(batch.steps, f"batch {batch.batch_id} rejected: {exc}")
                    return True
                if isinstance(exc, RateLimited):
                    self.accepting.clear()
                    delay = exc.retry_after * (1.0 + 0.2 * self._jitter.random())
                else:
                    delay = min(self._backoff_cap, self._backoff_base * 2.0**attempt)
                    delay *= 0.5 + 0.5 * self._jitter.random()
                log.debug(
                    "experience batch %s not delivered (%s); retrying in %.2fs", batch.batch_id, exc, delay
                )
                attempt += 1
                with self._cond:
                    self._retries += 1
                self._pause(delay, top)
                continue
            except Exception as exc:  # a bug, not the network: do not spin on it
                log.exception("agentsdk: unexpected error while uploading experience")
                self._resolve_rejected(batch.steps, f"unexpected {type(exc).__name__}: {exc}")
                return True
            with self._cond:
                self._acked += batch.steps
            self.accepting.set()
            if self._on_response is not None:
                try:
                    self._on_response(response)
                except Exception:
                    log.exception("agentsdk: error in the experience response hook")
            return True
        return False

    def _pause(self, delay: float, top: _Batch) -> None:
        """Wait before a retry; meanwhile move memory to the spool when it fills. Returns early on abort."""
        deadline = time.monotonic() + delay
        while True:
            with self._cond:
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait_for(
                        lambda: self._abort.is_set() or self._nudged or self._spill_wanted(), remaining
                    )
                if self._nudged:  # the server likely has room now: retry at once
                    self._nudged = False
                    return
                spill = self._spill_wanted() and not self._abort.is_set()
            if not spill:
                return
            self._spill(_SPILL_LOW, top)

    def nudge(self) -> None:
        """Cut a retry pause short (a new policy version means the inbox has room)."""
        with self._cond:
            self._nudged = True
            self._cond.notify_all()

    def _keep(self, batch: _Batch) -> None:
        """Aborted while sending ``batch``: to the spool if there is one, else back on the queue (counted as left)."""
        if batch.spooled:
            return
        if self._spool is not None and self._spool_put(batch):
            batch.spooled = True
            requeue: list[_Item] = []
        else:
            requeue = batch.items
        with self._cond:
            self._requeue(requeue)
            self._inflight_seq = None
            self._inflight_chunks = 0
            self._cond.notify_all()

    def _resolve_rejected(self, steps: int, reason: str) -> None:
        log.error("agentsdk: %d experience steps rejected and not retried: %s", steps, reason)
        with self._cond:
            self._rejected += steps
