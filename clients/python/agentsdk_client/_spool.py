"""The on-disk spool: experience batches kept while the server cannot take them.

One SQLite file (``spool.sqlite3`` in the spool directory), one row per
pending ``POST /v1/experience`` request::

    batches(seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order: oldest first
            batch_id TEXT UNIQUE,                    -- the idempotency key inside body
            body BLOB,                               -- the exact request body, already encoded
            steps INTEGER,
            created REAL)                            -- time.time() when spooled

The body is stored as sent, batch id included, so a resend after any crash is
byte-identical and the server counts it once.

Crash safety is SQLite's: every ``put``/``ack`` is one transaction, so a torn
write or a killed process leaves the file as of the last commit (an unfinished
transaction is rolled back the next time the file is opened). The journal is
WAL with ``synchronous=FULL``: each commit is fsynced, so a spooled batch also
survives a power cut or an OS crash, not only a killed app (``NORMAL`` would
survive the latter only). The price is one fsync per batch of up to thousands
of steps, paid on the uploader thread and only while the server is away.

The connection holds SQLite's lock for its whole life (``locking_mode
EXCLUSIVE``): a second client on the same directory gets a clear error instead
of sending the same batches twice. The operating system releases the lock when
the process dies, so a restarted app can open the spool at once.

Thread-safe: one connection behind one lock. The counters (``rows``,
``steps``, ``bytes``) are plain ints that may be read without the lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ._errors import UsageError
from .protocol.sqlite import prepare_database

SPOOL_FILE = "spool.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT    NOT NULL UNIQUE,
    body     BLOB    NOT NULL,
    steps    INTEGER NOT NULL,
    created  REAL    NOT NULL
)
"""


class SpoolError(UsageError):
    """The spool directory cannot be used (locked by another client, not a spool, unwritable)."""


@dataclass(frozen=True)
class SpoolEntry:
    batch_id: str
    body: bytes
    steps: int
    created: float


class Spool:
    """Pending experience batches on disk, oldest first. ``close()`` releases the file."""

    def __init__(
        self, directory: str | os.PathLike[str], *, max_bytes: int | None = None, lock_timeout: float = 2.0
    ) -> None:
        if max_bytes is not None and not (isinstance(max_bytes, int) and max_bytes > 0):
            raise UsageError(f"max_spool_bytes must be a positive int or None, got {max_bytes!r}")
        self.directory = Path(directory)
        self.path = self.directory / SPOOL_FILE
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=lock_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the experience spool at {self.path}: {exc}") from exc
        try:
            self._setup()
        except sqlite3.OperationalError as exc:
            self._db.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise SpoolError(
                    f"the experience spool at {self.path} is in use by another client; give each "
                    "PolicyClient its own spool_dir"
                ) from exc
            raise SpoolError(f"cannot use the experience spool at {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise SpoolError(
                f"{self.path} is not an agentsdk spool ({exc}); move it aside or pick another spool_dir"
            ) from exc
        rows, steps, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(steps), 0), COALESCE(SUM(LENGTH(body)), 0) FROM batches"
        ).fetchone()
        self.rows, self.steps, self.bytes = int(rows), int(steps), int(size)

    def _setup(self) -> None:
        prepare_database(self._db, _SCHEMA, SCHEMA_VERSION, "spool", auto_vacuum=True)

    # -- operations ------------------------------------------------------------------

    def put(
        self, batch_id: str, body: bytes, steps: int, *, keep: str | None = None
    ) -> list[tuple[str, int]]:
        """Store one batch (durably, once this returns). A batch id already stored is left as it is.

        With ``max_bytes`` set, the oldest rows (never ``keep``, the one being
        sent) are deleted in the same transaction to make room; they are
        returned as ``(batch_id, steps)`` so the caller can count them.
        """
        dropped: list[tuple[str, int]] = []
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute(
                    "INSERT OR IGNORE INTO batches (batch_id, body, steps, created) VALUES (?, ?, ?, ?)",
                    (batch_id, sqlite3.Binary(body), int(steps), time.time()),
                )
                added = cur.rowcount == 1
                size = self.bytes + (len(body) if added else 0)
                if self.max_bytes is not None and size > self.max_bytes:
                    for old_id, old_steps, old_size in db.execute(
                        "SELECT batch_id, steps, LENGTH(body) FROM batches WHERE batch_id NOT IN (?, ?) "
                        "ORDER BY seq",
                        (batch_id, keep or batch_id),
                    ).fetchall():
                        if size <= self.max_bytes:
                            break
                        db.execute("DELETE FROM batches WHERE batch_id = ?", (old_id,))
                        dropped.append((old_id, int(old_steps)))
                        size -= int(old_size)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if added:
                self.rows += 1
                self.steps += int(steps)
            self.rows -= len(dropped)
            self.steps -= sum(s for _, s in dropped)
            self.bytes = size
        return dropped

    def peek(self, limit: int = 1) -> list[SpoolEntry]:
        """The oldest ``limit`` batches, oldest first (they stay until ``ack``)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT batch_id, body, steps, created FROM batches ORDER BY seq LIMIT ?", (int(limit),)
            ).fetchall()
        return [SpoolEntry(str(b), bytes(body), int(s), float(c)) for b, body, s, c in rows]

    def ack(self, batch_id: str) -> bool:
        """Delete a batch the server has taken; False if it was not (or no longer) stored."""
        with self._lock:
            db = self._db
            row = db.execute(
                "SELECT steps, LENGTH(body) FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))  # autocommit: one transaction
            self.rows -= 1
            self.steps -= int(row[0])
            self.bytes -= int(row[1])
            if self.rows == 0:
                db.executescript("PRAGMA incremental_vacuum;")  # give the space back once drained
            return True

    def close(self) -> None:
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()

    def __len__(self) -> int:
        return self.rows

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r}, rows={self.rows}, steps={self.steps}, bytes={self.bytes})"
