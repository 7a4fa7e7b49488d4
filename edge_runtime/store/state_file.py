"""Opening a connection to the gateway's state file: every writer of it (the ledger, the outbox,
the hub link's cursor, the checkpointer) opens it the same way, in autocommit mode so that each
owner states its own transactions, usable from the thread that owns the object, and waiting
rather than failing while another connection holds the write lock for a moment.

>>> import os, tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> conn = connect(os.path.join(tmp.name, "l.sqlite"), "journal_mode=WAL")
>>> conn.execute("PRAGMA journal_mode").fetchone(), conn.execute("PRAGMA busy_timeout").fetchone()
(('wal',), (10000,))
>>> conn.close(); tmp.cleanup()
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000  # another connection (outbox, readers) may hold the lock briefly


def connect(path: str | Path, *pragmas: str) -> sqlite3.Connection:
    """A connection to ``path`` with the shared settings, then ``pragmas`` in order (each as
    ``name=value``: journal mode, durability, cache)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")
    return conn
