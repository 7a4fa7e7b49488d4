"""The store's durable stock ledger: an append-only event log plus per-SKU state in SQLite.

- Durable before acknowledged: SQLite in WAL mode with ``synchronous=FULL``; ``ingest`` returns
  only after its transaction (log rows, state rows, conflicts, dead letters, and whatever the
  ``before_commit`` hook wrote, e.g. outbox rows) is committed and fsynced.
- Group commit: one transaction per ``ingest`` call, however many events it carries.
- Idempotent on ``event_id``: an event already in the log (or twice in one batch) is counted as
  a duplicate and changes nothing. An ``event_id`` reused with different content is no duplicate:
  it is dead-lettered, reason "event_id reused with different content", naming what differs.
- Plausible: events are judged against the bounds (``edge_runtime.store.plausibility``) and the
  ledger clock before they are stored; what fails is dead-lettered with the reason.
- Event-time order: state is folded in event-time order (see ``edge_runtime.store.stock``); an event
  older than the newest one already folded for its SKU re-folds that SKU from the log.
- Snapshot plus replay: the ``stock`` table is the snapshot, written in the same transaction as
  the log; ``rebuild()`` folds the whole log again and ``verify()`` compares the two.

The class is assembled from a part per concern: opening and claiming the file (here),
``ledger_lookups`` (the in-memory id and position lookups), ``ledger_writes`` (the write path),
``ledger_fold`` (folding and replay), ``ledger_reads`` (what it answers) and
``ledger_retention`` (archiving, pruning).

Why the log has no secondary index: every B-tree keyed by something random (an event id, a SKU)
costs about one dirty page per event in the WAL and again at checkpoint; measured, a unique
``event_id`` index plus a ``(sku, time)`` index cut durable throughput from ~25,000 to ~7,000
events/s. So the log is written in ``seq`` order only, and the two lookups live in memory,
rebuilt from the log when the ledger opens: the event ids (idempotency; ``edge_runtime.store.event_ids``
keeps them at ~16 bytes each) and, per SKU, the log positions of its events (re-folds). One
``Ledger`` object must own the file's events (other connections may read, and may write other
tables such as the outbox).

>>> import tempfile, os
>>> tmp = tempfile.TemporaryDirectory()
>>> path = os.path.join(tmp.name, "ledger.sqlite")
>>> ledger = Ledger(path, store_id="S1")
>>> ev = {"event_id": "r1", "store_id": "S1", "sku": "A", "type": "receipt", "qty": 5,
...       "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}
>>> ledger.ingest_raw([ev, ev]).duplicates
1
>>> ledger.stock("A").on_hand, ledger.verify()
(5, [])
>>> ledger.close(); tmp.cleanup()
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import uuid
from array import array
from pathlib import Path

from edge_runtime.store.checkpointer import Checkpointer
from edge_runtime.store.event_id_reuse import ReusedIds
from edge_runtime.store.event_ids import EventIds
from edge_runtime.store.ingest_result import IngestResult, LedgerError
from edge_runtime.store.ledger_fold import LedgerFold
from edge_runtime.store.ledger_lookups import LedgerLookups
from edge_runtime.store.ledger_migrations import SCHEMA_VERSION, TABLES, MigrationError, migrate
from edge_runtime.store.ledger_reads import LedgerReads
from edge_runtime.store.ledger_retention import LedgerRetention
from edge_runtime.store.ledger_schema import SCHEMA
from edge_runtime.store.ledger_writes import LedgerWrites
from edge_runtime.store.plausibility import DEFAULT, Plausibility
from edge_runtime.store.state_file import connect
from edge_runtime.store.stock import SkuState
from edge_runtime.store.store_failure import StoreHealth, write_transaction
from edge_runtime.store.writer_lock import WriterLock, WriterLockHeld

__all__ = ["IngestResult", "Ledger", "LedgerError"]

# An open that had to read at least this many events after the snapshot writes a new one at
# once: after a run of crashes each start would otherwise read a longer tail than the last.
INDEX_TAIL_AT_OPEN = 20_000

log = logging.getLogger(__name__)


def _reason(err: OSError) -> str:
    """An OSError in words, without repeating the path the caller names."""
    return err.strerror or str(err)


class Ledger(LedgerWrites, LedgerFold, LedgerReads, LedgerRetention, LedgerLookups):
    """A store's stock ledger in one SQLite file (see the module docstring for the guarantees).

    >>> import tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ledger = Ledger(os.path.join(tmp.name, "l.sqlite"), "S1", safety_buffer=1)
    >>> r = ledger.ingest_raw('{"event_id": "x", "store_id": "S2", "sku": "A", "type": "sale",'
    ...                       ' "qty": 1, "event_time": "2026-01-05T08:00:00Z", "source": "pos"}')
    >>> r.rejected, r.rejections[0].field
    (1, 'store_id')
    >>> ledger.close(); tmp.cleanup()
    """

    def __init__(
        self,
        path: str | Path,
        store_id: str,
        safety_buffer: int = 0,
        bounds: Plausibility = DEFAULT,
    ):
        if not store_id:
            raise ValueError("store_id must be a non-empty string")
        if safety_buffer < 0:
            raise ValueError(f"safety_buffer must be >= 0, got {safety_buffer}")
        self.path = Path(path)
        self.store_id = store_id
        self.safety_buffer = int(safety_buffer)
        self.bounds = bounds
        # Fill ``IngestResult.steps`` and ``before`` (a decision layer asks; a copy per event).
        self.record_steps = False
        self._lock = threading.RLock()
        self.health = StoreHealth()  # whether the last write failed (readiness, metrics)
        self._writer = self._claim()
        try:
            self._open()
        except BaseException:
            self._writer.release()
            raise

    def _claim(self) -> WriterLock:
        """The state directory, checked, and this process's writer lock on the ledger."""
        where = self.path.parent
        if where.exists() and not where.is_dir():
            raise LedgerError(f"state directory {where} is not a directory")
        try:
            where.mkdir(parents=True, exist_ok=True)
            return WriterLock.acquire(self.path.with_name(self.path.name + ".lock"))
        except WriterLockHeld as err:
            raise LedgerError(str(err)) from None
        except OSError as err:
            raise LedgerError(f"state directory {where} is not usable: {_reason(err)}") from None

    def _open(self) -> None:
        """Open the file, claim or check it, and load the in-memory lookups from the log."""
        try:
            self._connect()
        except sqlite3.Error as err:
            self._close_quietly()
            raise LedgerError(f"cannot open the ledger {self.path}: {err}") from None
        except LedgerError:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    def _connect(self) -> None:
        # synchronous=FULL fsyncs the WAL on every commit: acknowledged means on disk.
        self._conn = connect(
            self.path,
            "journal_mode=WAL",
            "synchronous=FULL",
            "cache_size=-65536",
            "temp_store=MEMORY",
        )
        self._conn.executescript(SCHEMA + TABLES)
        buffer_changed = self._check_meta()
        self.index_path = self.path.with_name(self.path.name + ".index.npz")
        self._index_lock = threading.Lock()  # one snapshot writer at a time
        self._index_retry_at = 0.0  # after a failed write (a full disk), not before this
        self._ids = EventIds()
        self._seqs: dict[str, array] = {}
        self._next_seq = 1
        self._reuse = ReusedIds(self._conn)  # repeated ids whose content differs
        self._last_id = ""  # event id at seq _next_seq - 1
        self._indexed_upto = self._load_log()
        self._index_stale = False  # archiving shrank the lookups since the last snapshot
        if buffer_changed:
            self._refold_all()
        self._states: dict[str, SkuState] = {
            row[0]: SkuState(*row) for row in self._conn.execute("SELECT * FROM stock")
        }
        self._clock_us = max((s.last_us for s in self._states.values()), default=0)
        self._touched: list[str] = []  # SKUs folded in place by the open transaction
        self._unrestored: set[str] = set()  # touched by a failed write, not yet read back
        self._checkpointer = Checkpointer(self.path, after=self._index_if_due)
        self._conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it
        # A long tail was read: snapshot after the next commit (not now: the start comes first).
        self._index_soon = self._next_seq - 1 - self._indexed_upto >= INDEX_TAIL_AT_OPEN

    @property
    def connection(self) -> sqlite3.Connection:
        """The ledger's connection (the outbox shares the file and the transaction)."""
        return self._conn

    def _check_meta(self) -> bool:
        """Claim or check the file; True when the safety buffer differs from the stored one."""
        meta = dict(self._conn.execute("SELECT key, value FROM meta"))
        if not meta:
            with self._conn:
                self._conn.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("schema", SCHEMA_VERSION),
                        ("store_id", self.store_id),
                        ("safety_buffer", str(self.safety_buffer)),
                        ("ledger_id", uuid.uuid4().hex),
                    ],
                )
            self.ledger_id = self._ledger_id()
            return False
        if meta.get("store_id") != self.store_id:
            raise LedgerError(
                f"{self.path} is the ledger of store {meta.get('store_id')!r}, "
                f"not {self.store_id!r}; use another state directory"
            )
        if meta.get("schema") != SCHEMA_VERSION:
            try:
                with write_transaction(self._conn):
                    found = migrate(self._conn, meta.get("schema"), str(self.path))
            except MigrationError as err:
                raise LedgerError(str(err)) from None
            log.warning("%s migrated from ledger schema %s to %s", self.path,
                        meta.get("schema"), found)  # fmt: skip
        self.ledger_id = self._ledger_id()
        return meta.get("safety_buffer") != str(self.safety_buffer)

    def _ledger_id(self) -> str:
        """This file's identity (what snapshots are checked against); added to older files."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()
        if row is not None:
            return row[0]
        with self._conn:
            self._conn.execute("INSERT INTO meta VALUES ('ledger_id', ?)", (uuid.uuid4().hex,))
        return self._ledger_id()

    def checkpoint(self) -> None:
        """Copy the whole WAL into the database file now and truncate it (e.g. when idle)."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._checkpointer.stop()
        with contextlib.suppress(OSError, sqlite3.Error):  # only a slower next start
            self.write_index()
        with self._lock:
            self._conn.close()
            self._writer.release()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
