"""The on-disk spool (``agentsdk_client._spool``) and the uploader's use of it: no server process.

Crash safety is checked with real processes: a child that commits rows and
then dies (``os._exit``) inside an open transaction, and a child killed with
SIGKILL in the middle of a write loop, once it has said that it is well into it.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agentsdk_client import BadRequest, PayloadTooLarge, ServerUnavailable, UsageError, decode
from agentsdk_client._spool import SPOOL_FILE, Spool, SpoolError
from agentsdk_client._uploader import Uploader
from agentsdk_client.protocol.chunk import ExperienceChunk

from ._helpers import fake_chunk


def body(i: int, size: int = 100) -> bytes:
    return f"batch-{i}:".encode() + bytes([i % 256]) * size


def stored(directory: Path) -> list[Any]:
    """The spool's rows, oldest first, read by opening and closing it."""
    spool = Spool(directory)
    try:
        return spool.peek(1_000_000)
    finally:
        spool.close()


# -- the spool itself ---------------------------------------------------------------------


def test_put_peek_ack_oldest_first_and_counters(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(5):
        spool.put(f"b{i}", body(i), steps=10 + i)
    assert (spool.rows, spool.steps, spool.bytes) == (5, 60, sum(len(body(i)) for i in range(5)))
    assert [e.batch_id for e in spool.peek(3)] == ["b0", "b1", "b2"]
    first = spool.peek()[0]
    assert first.body == body(0) and first.steps == 10 and first.created <= time.time()
    assert spool.ack("b1") and not spool.ack("b1") and not spool.ack("nope")
    assert [e.batch_id for e in spool.peek(10)] == ["b0", "b2", "b3", "b4"]
    spool.put("b0", b"other body", steps=99)  # an id already stored is left as it is
    assert spool.rows == 4 and spool.peek()[0].body == body(0)
    spool.close()
    again = Spool(tmp_path)  # reopened: same rows, same order, same counters
    assert [e.batch_id for e in again.peek(10)] == ["b0", "b2", "b3", "b4"]
    assert (again.rows, again.steps) == (4, 10 + 12 + 13 + 14)
    for entry in again.peek(10):
        again.ack(entry.batch_id)
    assert (again.rows, again.steps, again.bytes) == (0, 0, 0)
    again.close()


def test_max_bytes_drops_the_oldest_but_never_the_one_being_sent(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=3 * len(body(0)))
    for i in range(3):
        assert spool.put(f"b{i}", body(i), steps=1) == []
    assert spool.put("b3", body(3), steps=1, keep="b0") == [("b1", 1)]
    assert [e.batch_id for e in spool.peek(10)] == ["b0", "b2", "b3"]
    assert spool.bytes <= spool.max_bytes
    spool.close()


def test_a_second_client_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    code = (
        "import sys\nfrom agentsdk_client._spool import Spool, SpoolError\n"
        "try:\n    Spool(sys.argv[1], lock_timeout=0.2)\nexcept SpoolError as e:\n    print('refused:', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert "refused:" in out.stdout and "in use by another client" in out.stdout, out.stdout + out.stderr
    spool.close()
    Spool(tmp_path).close()  # free again once closed


def test_not_a_spool_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / SPOOL_FILE).write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(SpoolError, match="not an agentsdk spool"):
        Spool(tmp_path)
    assert issubclass(SpoolError, UsageError)
    with pytest.raises(UsageError, match="max_spool_bytes"):
        Spool(tmp_path / "x", max_bytes=0)


CRASH_MID_TRANSACTION = """
import os, sys
from agentsdk_client._spool import Spool
spool = Spool(sys.argv[1])
for i in range(20):
    spool.put(f"b{i}", bytes([i]) * 5000, steps=i + 1)
db = spool._db  # the next write is torn: its transaction is never committed
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO batches (batch_id, body, steps, created) VALUES ('torn', zeroblob(1000000), 5, 0)")
db.execute("DELETE FROM batches WHERE batch_id = 'b0'")
print("committed", flush=True)
os._exit(1)
"""


def test_committed_rows_survive_a_crash_inside_a_transaction(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CRASH_MID_TRANSACTION, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "committed" in out.stdout, out.stdout + out.stderr
    spool = Spool(tmp_path)
    entries = spool.peek(100)
    assert [e.batch_id for e in entries] == [f"b{i}" for i in range(20)]  # b0 still there, 'torn' absent
    assert all(e.body == bytes([i]) * 5000 and e.steps == i + 1 for i, e in enumerate(entries))
    assert spool.steps == sum(range(1, 21))
    assert spool._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    spool.close()


WRITE_FOREVER = """
import sys
from agentsdk_client._spool import Spool
spool = Spool(sys.argv[1])
ready = int(sys.argv[2])
i = 0
while True:
    spool.put(f"b{i}", bytes([i % 256]) * (1000 + 37 * (i % 50)), steps=i % 7 + 1)
    if i % 3 == 2:
        spool.ack(f"b{i - 2}")
    if i == ready:  # b0..b<ready> are committed; the loop goes straight on writing
        print("ready", flush=True)
    i += 1
"""

KILL_AFTER_PUTS = 100


def wait_for_line(proc: subprocess.Popen, expected: str, timeout: float) -> None:
    """Block until the child prints ``expected`` on its stdout; fail if it does not within ``timeout``."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            raise AssertionError(f"the child did not print {expected!r} within {timeout} s") from None
        if line is None:
            raise AssertionError(f"the child exited with {proc.wait()} before printing {expected!r}")
        if line.strip() == expected:
            return


def test_sigkill_during_writes_leaves_a_consistent_prefix(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITE_FOREVER, str(tmp_path), str(KILL_AFTER_PUTS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # Killed right after the child says it has committed KILL_AFTER_PUTS + 1 puts (and their acks): it
        # never pauses, so the kill lands while it is inside some later put or ack.
        wait_for_line(proc, "ready", timeout=120)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    spool = Spool(tmp_path)
    assert spool._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ids = [int(e.batch_id[1:]) for e in spool.peek(1_000_000)]
    assert ids and ids == sorted(ids)
    assert ids[-1] >= KILL_AFTER_PUTS  # killed after the moment it announced, not before
    # b<i> (i % 3 == 0) is acked right after b<i+2> is put: every ack before the last put is done; the
    # last put's ack may or may not have committed. Nothing else is missing, nothing partial is there.
    last = ids[-1]
    acked = {i for i in range(last + 1) if i % 3 == 0 and i + 2 < last}
    missing = set(range(last + 1)) - set(ids)
    assert missing in (acked, acked | {last - 2}), (last, sorted(missing - acked), sorted(acked - missing))
    for e in spool.peek(1_000_000):
        i = int(e.batch_id[1:])
        assert e.body == bytes([i % 256]) * (1000 + 37 * (i % 50)) and e.steps == i % 7 + 1
    spool.close()


# -- the uploader with a spool ----------------------------------------------------------


def chunk(steps: int = 4, tag: int = 0) -> ExperienceChunk:
    return fake_chunk(steps, tag)


class FakeIngest:
    """A /v1/experience stand-in: down until ``up`` is set, then counts each batch id once."""

    def __init__(self, up: bool = False, reject: type[Exception] | None = None) -> None:
        self.up = threading.Event()
        if up:
            self.up.set()
        self.reject = reject
        self.seen: dict[str, int] = {}
        self.duplicates = 0
        self.tags: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, raw: bytes) -> Any:
        if not self.up.is_set():
            raise ServerUnavailable("down")
        message = decode(raw)
        if self.reject is not None and len(message["chunks"]) > 1:
            raise self.reject("too big", status=413, code="body_too_large")
        steps = sum(len(c["rewards"]) for c in message["chunks"])
        with self.lock:
            if message["batch_id"] in self.seen:
                self.duplicates += 1
                return {"accepted_steps": 0, "duplicate": True}
            self.seen[message["batch_id"]] = steps
            self.tags += [float(c["rewards"][0]) for c in message["chunks"]]
        return {"accepted_steps": steps, "duplicate": False}

    @property
    def steps(self) -> int:
        return sum(self.seen.values())


def uploader(send: Any, spool: Spool | None, **kw: Any) -> Uploader:
    kw = {"max_chunks": 8, "max_body_bytes": 1 << 20, "backoff_base": 0.01, "backoff_cap": 0.05, **kw}
    return Uploader(send, client_id="t", spool=spool, **kw)


def test_memory_stays_bounded_and_nothing_is_dropped_while_down(tmp_path: Path) -> None:
    ingest = FakeIngest()
    up = uploader(ingest, Spool(tmp_path), max_queued_steps=100)
    for tag in range(300):
        up.submit(chunk(4, tag))
        assert up.counts().steps_queued <= 100  # the bound holds after every submit
    counts = up.counts()
    assert counts.steps_dropped == 0 and counts.steps_spooled > 0
    ingest.up.set()
    assert up.flush(30)
    up.close(5)
    counts = up.counts()
    assert counts.steps_acknowledged == counts.steps_submitted == 1200
    assert counts.steps_spooled == 0 and counts.steps_dropped == 0 and counts.steps_queued == 0
    assert ingest.steps == 1200 and sorted(ingest.tags) == list(range(300))
    assert ingest.tags[:10] == list(range(10))  # oldest first


def test_close_keeps_the_rest_on_disk_and_a_new_uploader_sends_it_once(tmp_path: Path) -> None:
    ingest = FakeIngest()
    first = uploader(ingest, Spool(tmp_path), max_queued_steps=1000)
    for tag in range(50):
        first.submit(chunk(3, tag))
    assert first.close(0.2) is False
    assert first.counts().steps_spooled == 150 and first.counts().steps_dropped == 0
    rows = stored(tmp_path)
    assert sum(e.steps for e in rows) == 150
    # One batch reached the server but its answer was lost: the resend is a duplicate, counted once.
    ingest.up.set()
    ingest(rows[0].body)
    second = uploader(ingest, Spool(tmp_path))
    assert second.flush(30)
    second.close(5)
    assert set(ingest.seen) == {e.batch_id for e in rows} and ingest.steps == 150 and ingest.duplicates == 1
    assert second.counts().steps_acknowledged == 150 and second.counts().steps_spooled == 0


def test_without_a_spool_the_steps_bound_drops_the_oldest() -> None:
    ingest = FakeIngest()
    up = uploader(ingest, None, max_queued_steps=40)
    for tag in range(30):
        up.submit(chunk(4, tag))
        assert up.counts().steps_queued <= 40
    ingest.up.set()
    assert up.flush(30)
    up.close(5)
    counts = up.counts()
    assert counts.steps_dropped > 0 and counts.steps_dropped + counts.steps_acknowledged == 120
    assert ingest.tags[-10:] == list(range(20, 30))  # the newest survive


def test_a_spooled_batch_too_large_for_the_server_is_split_under_derived_ids(tmp_path: Path) -> None:
    first = uploader(FakeIngest(), Spool(tmp_path))
    for tag in range(4):
        first.submit(chunk(2, tag))
    first.close(0.2)
    parents = {e.batch_id for e in stored(tmp_path)}
    assert len(parents) < 4  # at least one spooled batch holds several chunks
    ingest = FakeIngest(up=True, reject=PayloadTooLarge)
    second = uploader(ingest, Spool(tmp_path))
    assert second.flush(30)
    second.close(5)
    assert ingest.steps == 8 and sorted(ingest.tags) == [0, 1, 2, 3] and len(ingest.seen) == 4
    assert {batch_id.split("-")[0] for batch_id in ingest.seen} == parents


def test_a_bad_single_chunk_in_the_spool_is_rejected_not_retried(tmp_path: Path) -> None:
    first = uploader(FakeIngest(), Spool(tmp_path))
    first.submit(chunk(2, 0))
    first.close(0.2)

    def refuse(raw: bytes) -> Any:
        raise BadRequest("chunks[0].rewards: bad", status=422, code="invalid_message")

    second = uploader(refuse, Spool(tmp_path))
    assert second.flush(30)
    second.close(5)
    assert second.counts().steps_rejected == 2 and stored(tmp_path) == []


def test_a_broken_disk_falls_back_to_dropping_the_oldest(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    ingest = FakeIngest()
    up = uploader(ingest, spool, max_queued_steps=40)
    spool._db.execute("PRAGMA query_only = ON")  # every write now fails like a full disk
    for tag in range(30):
        up.submit(chunk(4, tag))
        assert up.counts().steps_queued <= 40
    assert up.counts().steps_dropped > 0
    ingest.up.set()
    assert up.flush(30)
    up.close(5)
    counts = up.counts()
    assert counts.steps_dropped + counts.steps_acknowledged == 120


def test_the_spool_file_is_sqlite_in_wal_mode(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put("b", b"x", 1)
    assert spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    spool.close()
    with sqlite3.connect(tmp_path / SPOOL_FILE) as db:  # plain sqlite can read it (for debugging)
        assert db.execute("SELECT batch_id, steps FROM batches").fetchall() == [("b", 1)]
    assert os.path.exists(tmp_path / SPOOL_FILE)
