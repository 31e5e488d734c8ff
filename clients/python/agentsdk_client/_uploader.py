"""The background uploader: finished chunks -> ``POST /v1/experience`` batches.

The app's thread only appends to a bounded queue (``submit``) and never waits
on the network. One daemon thread takes whatever is queued, encodes it, groups
it into batches within the server's limits (``max_chunks``, ``max_body_bytes``)
and sends each batch under a fresh ``batch_id`` that every retry of that batch
reuses, so the server counts it once.

Retries: transport failures, 5xx and 429 are retried with exponential backoff
and jitter (429 waits ``Retry-After``) until ``close`` gives up. A batch the
server rejects as wrong (4xx) is split in halves to save the good chunks; a
single bad chunk is logged and counted as rejected. When the queue is full the
oldest chunk is dropped (and counted): stale data is worth least.

Hand-offs use one condition variable and one abort event; nothing polls.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from ._codec import CodecError, encode
from ._errors import AgentsdkError, BadRequest, PayloadTooLarge, RateLimited

log = logging.getLogger("agentsdk_client")

# Room for the request's own map around the chunks (keys, batch_id, client_id).
_ENVELOPE_BYTES = 512


@dataclass(frozen=True)
class UploadCounts:
    steps_submitted: int
    steps_acknowledged: int
    steps_rejected: int
    steps_dropped: int
    chunks_pending: int
    batches_sent: int
    retries: int


class _Item:
    __slots__ = ("seq", "steps", "chunk", "data")

    def __init__(self, seq: int, steps: int, chunk: dict[str, Any]) -> None:
        self.seq = seq
        self.steps = steps
        self.chunk: dict[str, Any] | None = chunk
        self.data = b""


class Uploader:
    """Owns the queue of finished chunks and the thread that delivers them."""

    def __init__(
        self,
        send: Callable[[bytes], Any],
        *,
        client_id: str,
        max_chunks: int,
        max_body_bytes: int,
        max_queued_chunks: int = 4096,
        on_response: Callable[[Any], None] | None = None,
        backoff_base: float = 0.25,
        backoff_cap: float = 30.0,
    ) -> None:
        self._send = send
        self._client_id = client_id
        self._max_chunks = max(1, int(max_chunks))
        self._max_body = max(1, int(max_body_bytes))
        self._max_queued = max(1, int(max_queued_chunks))
        self._on_response = on_response
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._jitter = random.Random()
        self._cond = threading.Condition()
        self._queue: collections.deque[_Item] = collections.deque()
        self._inflight_seq: int | None = None  # oldest seq taken off the queue, not yet resolved
        self._inflight_chunks = 0
        self._next_seq = 0
        self._stopping = False
        self._abort = threading.Event()
        self._submitted = self._acked = self._rejected = self._dropped = 0
        self._batches = self._retries = 0
        self._thread = threading.Thread(target=self._run, name="agentsdk-uploader", daemon=True)
        self._thread.start()

    # -- app side ----------------------------------------------------------------------

    def submit(self, chunk: dict[str, Any]) -> None:
        steps = len(chunk["rewards"])
        with self._cond:
            if self._stopping:
                raise RuntimeError("uploader is closed")
            if len(self._queue) >= self._max_queued:
                old = self._queue.popleft()
                self._dropped += old.steps
                if self._dropped == old.steps or self._dropped % 10_000 < old.steps:
                    log.warning("upload queue full (%d chunks; is the server reachable?): dropped the "
                                "oldest chunk, %d steps dropped so far", self._max_queued, self._dropped)
            self._queue.append(_Item(self._next_seq, steps, chunk))
            self._next_seq += 1
            self._submitted += steps
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every chunk submitted so far is resolved; False on timeout."""
        with self._cond:
            target = self._next_seq
            return self._cond.wait_for(lambda: self._oldest_unresolved() >= target, timeout)

    def close(self, timeout: float | None) -> bool:
        """Deliver what is queued within ``timeout``, then stop; False if data was left."""
        done = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if not done:
            self._abort.set()
        self._thread.join()
        with self._cond:
            left = sum(i.steps for i in self._queue)
        if left or not done:
            log.warning("closing with undelivered experience: %d queued steps not sent", left)
        return done

    def counts(self) -> UploadCounts:
        with self._cond:
            return UploadCounts(self._submitted, self._acked, self._rejected, self._dropped,
                                len(self._queue) + self._inflight_chunks, self._batches, self._retries)

    def _oldest_unresolved(self) -> int:
        if self._inflight_seq is not None:
            return self._inflight_seq
        return self._queue[0].seq if self._queue else self._next_seq

    # -- uploader thread ---------------------------------------------------------------

    def _run(self) -> None:
        carry: _Item | None = None
        while not self._abort.is_set():
            with self._cond:
                while carry is None and not self._queue and not self._stopping:
                    self._cond.wait()
                if carry is None and not self._queue:
                    return
                batch = [carry] if carry is not None else []
                carry = None
                while self._queue and len(batch) < self._max_chunks:
                    batch.append(self._queue.popleft())
                self._inflight_seq = batch[0].seq
                self._inflight_chunks = len(batch)
            batch, carry = self._encode(batch)
            unsent = self._deliver(batch) if batch else []
            with self._cond:
                self._queue.extendleft(reversed(unsent))  # only when aborted: counted as left
                self._inflight_seq = carry.seq if carry is not None else None
                self._inflight_chunks = 1 if carry is not None else 0
                self._cond.notify_all()
        if carry is not None:
            with self._cond:
                self._queue.appendleft(carry)

    def _encode(self, batch: list[_Item]) -> tuple[list[_Item], _Item | None]:
        """Encode the chunks; keep those that fit one body, carry the first that does not."""
        kept: list[_Item] = []
        size = _ENVELOPE_BYTES
        for index, item in enumerate(batch):
            if item.chunk is not None:
                try:
                    item.data = encode(item.chunk)
                except CodecError as exc:
                    self._resolve_rejected([item], f"chunk could not be encoded: {exc}")
                    continue
                item.chunk = None
            if len(item.data) + _ENVELOPE_BYTES > self._max_body:
                self._resolve_rejected([item], f"one chunk is {len(item.data)} bytes, over the server's "
                                               f"max_body_bytes {self._max_body}; lower max_chunk_steps")
                continue
            if size + len(item.data) > self._max_body:
                # Put the rest back in order: this one carries over, later ones go back on the queue.
                with self._cond:
                    self._queue.extendleft(reversed(batch[index + 1:]))
                    self._inflight_chunks = len(kept) + 1
                return kept, item
            size += len(item.data)
            kept.append(item)
        return kept, None

    def _body(self, batch_id: str, items: list[_Item]) -> bytes:
        packer = msgpack.Packer(use_bin_type=True)
        head = (packer.pack_map_header(3)
                + packer.pack("batch_id") + packer.pack(batch_id)
                + packer.pack("client_id") + packer.pack(self._client_id)
                + packer.pack("chunks") + packer.pack_array_header(len(items)))
        return head + b"".join(item.data for item in items)

    def _deliver(self, items: list[_Item]) -> list[_Item]:
        """Send one batch until it is accepted or rejected; returns what an abort left unsent."""
        batch_id = uuid.uuid4().hex
        body = self._body(batch_id, items)
        attempt = 0
        while True:
            try:
                with self._cond:
                    self._batches += 1
                response = self._send(body)
            except AgentsdkError as exc:
                if not getattr(exc, "retryable", False):
                    if len(items) > 1 and isinstance(exc, (BadRequest, PayloadTooLarge)):
                        # Accepted or rejected as a whole: split to save the good chunks.
                        half = len(items) // 2
                        unsent = self._deliver(items[:half])
                        return unsent + items[half:] if unsent else self._deliver(items[half:])
                    self._resolve_rejected(items, f"batch {batch_id} rejected: {exc}")
                    return []
                if isinstance(exc, RateLimited):
                    delay = exc.retry_after * (1.0 + 0.2 * self._jitter.random())
                else:
                    delay = min(self._backoff_cap, self._backoff_base * 2.0 ** attempt)
                    delay *= 0.5 + 0.5 * self._jitter.random()
                log.debug("experience batch %s not delivered (%s); retrying in %.2fs", batch_id, exc, delay)
                attempt += 1
                with self._cond:
                    self._retries += 1
                if self._abort.wait(delay):
                    return items
                continue
            except Exception as exc:  # a bug, not the network: do not spin on it
                log.exception("agentsdk: unexpected error while uploading experience")
                self._resolve_rejected(items, f"unexpected {type(exc).__name__}: {exc}")
                return []
            with self._cond:
                self._acked += sum(item.steps for item in items)
            if self._on_response is not None:
                try:
                    self._on_response(response)
                except Exception:
                    log.exception("agentsdk: error in the experience response hook")
            return []

    def _resolve_rejected(self, items: list[_Item], reason: str) -> None:
        steps = sum(item.steps for item in items)
        log.error("agentsdk: %d experience steps rejected and not retried: %s", steps, reason)
        with self._cond:
            self._rejected += steps
