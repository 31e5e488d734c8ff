"""``agentsdk serve --record DIR``: every accepted step, written in RLlib's offline format.

The experience route hands each accepted batch (stale steps included, a
duplicate batch never) to ``Recorder.record``, which only queues it: the
conversion to rows and the Parquet writes happen on a background thread, never
on the event loop. Rows follow ``server/offline/recording.py``; files rotate
by steps, bytes and age (a Parquet file is readable once closed, so a long-running
server's recording becomes readable piece by piece), and ``close`` (the
server's drain) writes what is left and closes the last file.

Files are written as hidden ``.part-*.tmp`` and renamed to ``part-*.parquet``
when complete, so a reader never sees half a file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from agentsdk_client.protocol.chunk import ExperienceChunk
from agentsdk_client.protocol.spaces import Space

from ..offline.recording import arrow_schema, start_recording

log = logging.getLogger("agentsdk.server")

# Running episodes whose step count is remembered (for the ``t`` column); clients that vanish
# mid-episode are forgotten oldest first beyond this.
OPEN_EPISODES = 100_000


class Recorder:
    """Queues accepted chunks; a thread converts and writes them to rotating Parquet files."""

    def __init__(
        self,
        directory: str | Path,
        observation_space: Space,
        action_space: Space,
        algorithm: str,
        *,
        max_file_steps: int = 200_000,
        max_file_bytes: int = 128 << 20,
        max_file_seconds: float = 300.0,
        flush_every_s: float = 1.0,
        max_pending_steps: int = 1_000_000,
    ) -> None:
        self.path = start_recording(
            directory, observation_space, action_space, "parquet", algorithm, "agentsdk serve"
        )
        self.observation_space = observation_space
        self.schema = arrow_schema(observation_space, action_space)
        self.max_file_steps = max_file_steps
        self.max_file_bytes = max_file_bytes
        self.max_file_seconds = max_file_seconds
        self.flush_every_s = flush_every_s
        self.max_pending_steps = max_pending_steps
        self.steps_written = 0
        self.files_written = 0
        self.failed: str | None = None
        self._prefix = f"part-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._pending: list[tuple[list[ExperienceChunk], str]] = []
        self._pending_steps = 0
        self._cond = threading.Condition()
        self._closing = False
        self._episode_steps: OrderedDict[str, int] = OrderedDict()
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None
        self._file_steps = 0
        self._file_opened = 0.0
        self._thread = threading.Thread(target=self._run, name="agentsdk-recorder", daemon=True)
        self._thread.start()

    # -- the event loop's side: cheap ----------------------------------------------------

    def record(self, chunks: list[ExperienceChunk], client_id: str) -> None:
        """Queue an accepted batch's chunks (called once per accepted batch id); the thread writes them."""
        with self._cond:
            self._pending.append((chunks, client_id))
            self._pending_steps += sum(c.steps for c in chunks)

    @property
    def backlogged(self) -> bool:
        """The writer is ``max_pending_steps`` behind (a slow disk): the route answers 429 until it catches up."""
        return self._pending_steps >= self.max_pending_steps

    def close(self, timeout: float = 60.0) -> None:
        """Write what is queued, close the last file; called once the front takes no more requests."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the recorder did not finish writing to %s within %.0f s", self.path, timeout)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:  # at most one write per flush_every_s: row groups of a useful size
                self._cond.wait_for(lambda: self._closing, timeout=self.flush_every_s)
                batch, self._pending = self._pending, []
                closing = self._closing
            queued = sum(c.steps for chunks, _ in batch for c in chunks)
            try:
                if batch:
                    self._write(self._rows(batch))
                if self._writer is not None and (closing or self._file_due()):
                    self._finish_file()
            except Exception as exc:  # a full disk: say so once, keep serving (training does not need it)
                if self.failed is None:
                    self.failed = f"{type(exc).__name__}: {exc}"
                    log.exception("recording to %s failed; the server goes on without it", self.path)
            with self._cond:  # written (or failed for good): no longer holds the route back
                self._pending_steps -= queued
            if closing:
                return

    def _file_due(self) -> bool:
        assert self._tmp is not None
        return (
            self._file_steps >= self.max_file_steps
            or time.monotonic() - self._file_opened >= self.max_file_seconds
            or self._tmp.stat().st_size >= self.max_file_bytes
        )

    def _rows(self, batch: list[tuple[list[ExperienceChunk], str]]) -> pa.Table:
        """Chunks -> one table of rows (RLlib's columns), in arrival order."""
        columns: dict[str, list[Any]] = {name: [] for name in self.schema.names}
        for chunks, client_id in batch:
            for chunk in chunks:
                self._add_chunk(columns, chunk, client_id)
        data = {
            name: _concat(values, self.schema.field(name).type)
            if values
            else pa.array([], self.schema.field(name).type)
            for name, values in columns.items()
        }
        return pa.table(data, schema=self.schema)

    def _add_chunk(self, columns: dict[str, list[Any]], chunk: ExperienceChunk, client_id: str) -> None:
        steps = chunk.steps
        key = f"{client_id}/{chunk.episode_id}/{chunk.agent_id}"
        start = self._episode_steps.pop(key, 0)
        if not (chunk.terminated or chunk.truncated):
            self._episode_steps[key] = start + steps
            if len(self._episode_steps) > OPEN_EPISODES:
                self._episode_steps.popitem(last=False)
        flat = self.observation_space.flatten_batch(chunk.observations, steps + 1)
        end = np.zeros(steps, bool)
        columns["eps_id"].append(np.full(steps, key, object))
        columns["agent_id"].append(np.full(steps, chunk.agent_id, object))
        columns["t"].append(np.arange(start, start + steps, dtype=np.int64))
        columns["obs"].append(flat[:-1])
        columns["actions"].append(chunk.policy_actions)
        columns["rewards"].append(chunk.rewards.astype(np.float32, copy=False))
        columns["new_obs"].append(flat[1:])
        columns["terminateds"].append(_last(end, chunk.terminated))
        columns["truncateds"].append(_last(end, chunk.truncated))
        columns["action_logp"].append(chunk.logp.astype(np.float32, copy=False))
        columns["policy_version"].append(chunk.policy_versions.astype(np.int64, copy=False))
        columns["client_id"].append(np.full(steps, client_id, object))

    def _write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self._writer is not None and self._file_steps + table.num_rows > self.max_file_steps:
            self._finish_file()
        if self._writer is None:
            self._tmp = self.path / f".{self._prefix}-{self.files_written:05d}.tmp"
            self._writer = pq.ParquetWriter(self._tmp, self.schema)
            self._file_steps, self._file_opened = 0, time.monotonic()
        self._writer.write_table(table)
        self._file_steps += table.num_rows
        self.steps_written += table.num_rows

    def _finish_file(self) -> None:
        assert self._writer is not None and self._tmp is not None
        self._writer.close()
        final = self.path / f"{self._prefix}-{self.files_written:05d}.parquet"
        os.replace(self._tmp, final)
        self._writer, self._tmp = None, None
        self.files_written += 1


def _last(flags: np.ndarray, value: bool) -> np.ndarray:
    out = flags.copy()
    if len(out):
        out[-1] = value
    return out


def _concat(parts: list[np.ndarray], kind: pa.DataType) -> pa.Array:
    """Stacked per-chunk arrays -> one Arrow array; 2-D parts become a list column."""
    values = np.concatenate(parts)
    if pa.types.is_list(kind):
        rows, width = values.shape[0], int(np.prod(values.shape[1:], dtype=np.int64))
        flat = pa.array(values.reshape(-1), kind.value_type)
        offsets = pa.array(np.arange(0, (rows + 1) * width, width, dtype=np.int32), pa.int32())
        return pa.ListArray.from_arrays(offsets, flat)
    return pa.array(values, kind)
