"""The crash-safe SQLite recipe shared by the client's spool and the server's inbox.

Both keep experience that was promised to someone (the app's, or an
acknowledged upload) in one SQLite file, so both open it the same way:
WAL with ``synchronous=FULL`` (a commit survives a killed process, a torn
write and a power cut) and ``locking_mode=EXCLUSIVE`` (a second process on the
same file gets an error instead of sending or training the same data twice).
"""

from __future__ import annotations

import sqlite3


def prepare_database(
    db: sqlite3.Connection, schema: str, version: int, what: str, *, auto_vacuum: bool = False
) -> None:
    """Make ``db`` a crash-safe store held by this process alone, with ``schema`` created.

    WAL with synchronous=FULL: a committed transaction survives a killed process,
    a torn write and a power cut. EXCLUSIVE locking keeps a second process (a
    second client on one spool, a second server on one inbox) out with an error.
    The server's inbox store uses this too: one recipe for both.
    """
    db.execute("PRAGMA locking_mode = EXCLUSIVE")
    if auto_vacuum:
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect on a new file
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"journal_mode WAL not available (got {mode})")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("BEGIN IMMEDIATE")  # takes the write lock now, and keeps it (EXCLUSIVE)
    try:
        found = db.execute("PRAGMA user_version").fetchone()[0]
        if found > version:
            raise sqlite3.DatabaseError(f"{what} schema {found} is newer than this program's {version}")
        if 0 < found < version:
            raise sqlite3.DatabaseError(
                f"{what} schema {found} was written by an older agentsdk (this one reads {version})"
            )
        for statement in schema.strip().split(";\n"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {version}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
