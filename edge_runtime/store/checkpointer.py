"""The ledger's WAL checkpoints, on a thread and a connection of their own.

>>> import os, sqlite3, tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> path = os.path.join(tmp.name, "x.sqlite")
>>> sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").fetchone()
('wal',)
>>> ck = Checkpointer(path); ck.nudge(); ck.stop(); tmp.cleanup()
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from edge_runtime.store.state_file import connect

log = logging.getLogger("edge_runtime.store.ledger")  # the ledger's background work


class Checkpointer:
    """Copies the WAL back into the database from its own thread and connection.

    Why: with SQLite's automatic checkpoint the committing thread also writes every changed
    page into the main file and fsyncs it, which measured about 100 ms per 5,000-event group.
    A PASSIVE checkpoint here overlaps that I/O with the next group's parsing and never blocks
    the writer; durability does not depend on it (a committed transaction is in the WAL).
    """

    def __init__(self, path: Path, every_s: float = 0.5, after: Callable[[], None] | None = None):
        self._after = after  # more background work after a checkpoint (the index snapshot)
        self._conn = connect(path)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._every_s = every_s
        self._thread = threading.Thread(target=self._run, name="ledger-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            # Busy or closing: the next nudge retries; nothing is lost meanwhile.
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            if self._after is not None:
                try:
                    self._after()
                except Exception:  # a missing snapshot only slows the next start
                    log.exception("background ledger work failed")
            if self._stop.wait(self._every_s):  # at most two checkpoints a second
                return

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        # Another connection may still read; then SQLite checkpoints at a later open.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()
