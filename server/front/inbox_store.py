"""The inbox on disk: acknowledged experience survives a killed server.

With ``--checkpoint-dir`` the training inbox (``inbox.Inbox``) writes through
to one SQLite file, ``<checkpoint-dir>/inbox.sqlite3``::

    chunks(seq INTEGER PRIMARY KEY,                  -- queue order: oldest first
           steps INTEGER, body BLOB)                 -- one validated ExperienceChunk, our msgpack codec (never pickle)
    seen(seq INTEGER PRIMARY KEY AUTOINCREMENT,      -- arrival order of batch ids
         batch_id TEXT UNIQUE)                       -- idempotency keys already accepted
    counters(name TEXT PRIMARY KEY, value INTEGER)   -- InboxCounters as of the last commit

Transactions (each one ``BEGIN IMMEDIATE ... COMMIT``):

- ``add_batch``: an accepted batch's id, its fresh chunks and the counters.
  The server answers 200 only after this commit, so an acknowledged batch is
  on disk and its id is remembered: a resend after any crash is a duplicate.
- ``remove_upto``: the chunks just handed to the trainer (or found stale) and
  the counters. Deleting on hand-over means a SIGKILL after the trainer took
  chunks but before its next checkpoint loses their *training effect* (the
  weights roll back to the checkpoint); the steps stay counted as ingested and
  delivered, and the learner re-learns from new data. Training itself is not
  exactly-once; ingestion is.

Counters that change without a transaction of their own (duplicates, 429s)
are saved with the next commit and at ``close``.

Durability: WAL journal with ``synchronous=FULL``, so every commit is fsynced
before the server acknowledges. The client deletes its own (fsynced) spool
copy on that acknowledgement, so the server's copy must survive what the
client's would have, a power cut or an OS crash included; ``NORMAL`` would
survive only a killed process. The price is one fsync per accepted batch (and
per hand-over), paid on a worker thread, never on the event loop. Measured:
a 10 x 200-step CartPole batch (97 KiB) takes about 1 ms longer to answer
(encoding 0.15 ms, insert + fsync 0.8 ms median, on a shared 2-core VM).

The seen-id table is bounded like the in-memory set: the newest
``remember`` ids (default 1,000,000, about 100 MB on disk for 32-character ids; at one batch a
second that is 11 days of resends) are kept, older ones pruned in bulk.

``locking_mode=EXCLUSIVE``: a second server on the same directory gets a
clear error instead of sharing the file; the OS releases the lock when the
process dies, so a restarted server opens it at once.

Not thread-safe on its own: ``Inbox`` calls it under its lock.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agentsdk_client.protocol.sqlite import prepare_database

INBOX_FILE = "inbox.sqlite3"
# 2: chunk bodies are ExperienceChunk maps with wire-form observations. A file of
# schema 1 (flattened observations) is refused on --resume with that reason.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (seq INTEGER PRIMARY KEY, steps INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS seen (seq INTEGER PRIMARY KEY AUTOINCREMENT, batch_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class InboxStoreError(RuntimeError):
    """The inbox file cannot be used (locked by another server, not an inbox, unwritable)."""


class InboxStore:
    """One SQLite connection; see the module docstring for what it holds and when it commits."""

    def __init__(self, path: Path, remember: int) -> None:
        self.path = path
        self.remember = remember
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=1.0)
            self._setup()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise InboxStoreError(
                    f"the inbox at {path} is in use by another server; give each server "
                    "its own --checkpoint-dir"
                ) from exc
            raise InboxStoreError(f"cannot use the inbox at {path}: {exc}") from exc
        except (OSError, sqlite3.Error) as exc:
            raise InboxStoreError(
                f"cannot use the inbox at {path} ({exc}); move it aside or start without --resume"
            ) from exc
        self._seen_rows = self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, resume: bool, remember: int) -> InboxStore:
        """The inbox in ``directory``: the previous run's with ``resume``, else a fresh one.

        A fresh start moves the old file aside (``inbox.sqlite3.old``, replacing
        an older one) rather than deleting what a mistaken restart may still want.
        """
        path = Path(directory).resolve() / INBOX_FILE
        if not resume and path.exists():
            old = path.with_name(INBOX_FILE + ".old")
            for suffix in ("", "-wal", "-shm"):
                Path(f"{old}{suffix}").unlink(missing_ok=True)
            for suffix in ("-wal", ""):  # the WAL first: a main file never sits beside a foreign WAL
                src = Path(f"{path}{suffix}")
                if src.exists():
                    src.rename(f"{old}{suffix}")
            Path(f"{path}-shm").unlink(missing_ok=True)
        return cls(path, remember)

    def _setup(self) -> None:
        prepare_database(self._db, _SCHEMA, SCHEMA_VERSION, "inbox")

    # -- reading back ------------------------------------------------------------------

    def load(self) -> tuple[dict[str, int], list[str], list[tuple[int, bytes]]]:
        """(counters, seen ids oldest first, queued chunks as (seq, body) oldest first)."""
        db = self._db
        counters = {str(k): int(v) for k, v in db.execute("SELECT name, value FROM counters")}
        seen = [
            str(b)
            for (b,) in db.execute(
                "SELECT batch_id FROM (SELECT seq, batch_id FROM seen ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                (self.remember,),
            )
        ]
        chunks = [(int(s), bytes(b)) for s, b in db.execute("SELECT seq, body FROM chunks ORDER BY seq")]
        return counters, seen, chunks

    # -- writing -----------------------------------------------------------------------

    def add_batch(self, batch_id: str, chunks: Iterable[tuple[int, int, bytes]], counters: Any) -> None:
        """One transaction: the batch id, its chunks as (seq, steps, body), the counters."""
        with self._transaction() as db:
            db.execute("INSERT INTO seen (batch_id) VALUES (?)", (batch_id,))
            db.executemany("INSERT INTO chunks (seq, steps, body) VALUES (?, ?, ?)", chunks)
            self._save_counters(db, counters)
            if self._seen_rows + 1 > self.remember + max(self.remember // 10, 1):
                db.execute("DELETE FROM seen WHERE seq <= (SELECT MAX(seq) FROM seen) - ?", (self.remember,))
                pruned = True
            else:
                pruned = False
        self._seen_rows = self.remember if pruned else self._seen_rows + 1

    def remove_upto(self, seq: int, counters: Any) -> None:
        """One transaction: drop queued chunks up to ``seq`` (handed over or stale), save the counters."""
        with self._transaction() as db:
            db.execute("DELETE FROM chunks WHERE seq <= ?", (seq,))
            self._save_counters(db, counters)

    def close(self, counters: Any) -> None:
        """Save the counters a last time, fold the WAL into the file, release the lock."""
        try:
            with self._transaction() as db:
                self._save_counters(db, counters)
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()

    @staticmethod
    def _save_counters(db: sqlite3.Connection, counters: Any) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", asdict(counters).items()
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # also when COMMIT itself failed (disk full)
                self._db.execute("ROLLBACK")
            raise
