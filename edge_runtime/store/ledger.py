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

Why the log has no secondary index: every B-tree keyed by something random (an event id, a SKU)
costs about one dirty page per event in the WAL and again at checkpoint; measured, a unique
``event_id`` index plus a ``(sku, time)`` index cut durable throughput from ~25,000 to ~7,000
events/s. So the log is written in ``seq`` order only, and the two lookups live in memory,
rebuilt from the log when the ledger opens: the event ids (idempotency; ``edge_runtime.store.event_ids``
keeps them at ~16 bytes each) and, per SKU, the log positions of its events (re-folds). One
``Ledger`` object must own the file's events (other connections may read, and may write other
tables such as the outbox).

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "ledger.sqlite")
>>> ledger = Ledger(path, store_id="S1")
>>> ev = {"event_id": "r1", "store_id": "S1", "sku": "A", "type": "receipt", "qty": 5,
...       "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}
>>> ledger.ingest_raw([ev, ev]).duplicates
1
>>> ledger.stock("A").on_hand, ledger.verify()
(5, [])
>>> ledger.close()
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import uuid
from array import array
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np

from edge_runtime.store.checkpointer import Checkpointer
from edge_runtime.store.event_archive import EventArchive
from edge_runtime.store.event_id_reuse import ReusedIds
from edge_runtime.store.event_ids import EventIds
from edge_runtime.store.events import LEDGER_TYPES, Event, Rejection, parse_events
from edge_runtime.store.ingest_result import BeforeCommit, IngestResult, LedgerError
from edge_runtime.store.ledger_index import IndexSnapshot, load_index, save_index
from edge_runtime.store.ledger_migrations import SCHEMA_VERSION, TABLES, MigrationError, migrate
from edge_runtime.store.ledger_schema import (
    FOLD_ROWS,
    INSERT_CONFLICT,
    INSERT_DEAD,
    INSERT_EVENT,
    SCHEMA,
    UPSERT_STOCK,
)
from edge_runtime.store.log_archiving import archivable_units, base_state, move_unit, recover
from edge_runtime.store.plausibility import DAY_US, DEFAULT, Plausibility
from edge_runtime.store.stock import (
    Conflict,
    SkuState,
    StockState,
    apply,
    fold,
)
from edge_runtime.store.store_failure import (
    StoreError,
    StoreHealth,
    is_store_failure,
    write_transaction,
)
from edge_runtime.store.writer_lock import WriterLock, WriterLockHeld

_ID_CHUNK = 900  # stays under SQLite's bound-parameter limit on old builds
INDEX_EVERY = 100_000  # events logged since the last index snapshot before the next is written
# An open that had to read at least this many events after the snapshot writes a new one at
# once: after a run of crashes each start would otherwise read a longer tail than the last.
INDEX_TAIL_AT_OPEN = 20_000

log = logging.getLogger(__name__)


def _reason(err: OSError) -> str:
    """An OSError in words, without repeating the path the caller names."""
    return err.strerror or str(err)


class Ledger:
    """A store's stock ledger in one SQLite file (see the module docstring for the guarantees).

    >>> import tempfile, os
    >>> ledger = Ledger(os.path.join(tempfile.mkdtemp(), "l.sqlite"), "S1", safety_buffer=1)
    >>> r = ledger.ingest_raw('{"event_id": "x", "store_id": "S2", "sku": "A", "type": "sale",'
    ...                       ' "qty": 1, "event_time": "2026-01-05T08:00:00Z", "source": "pos"}')
    >>> r.rejected, r.rejections[0].field
    (1, 'store_id')
    >>> ledger.close()
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
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",  # fsync the WAL on every commit: acknowledged means on disk
            "cache_size=-65536",
            "temp_store=MEMORY",
            "busy_timeout=10000",  # other connections (outbox, readers) may hold the lock briefly
        ):
            self._conn.execute(f"PRAGMA {pragma}")
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

    def _load_log(self) -> int:
        """The event ids and each SKU's log positions: from the index snapshot when it holds
        for this log, plus one pass over the events logged after it. Returns the position the
        loaded snapshot covers (0: none)."""
        snap = load_index(self.index_path, self.ledger_id)
        if snap is not None and not self.holds(snap.upto, snap.last_id):
            log.warning("ledger index %s does not match the log; rebuilt", self.index_path)
            snap = None
        upto = 0
        if snap is not None:
            self._ids.restore(snap.hi, snap.lo)
            self._seqs = snap.positions
            upto, self._last_id = snap.upto, snap.last_id
        seqs = self._seqs
        last = upto

        def ids():
            nonlocal last
            for seq, event_id, sku, kind in self._conn.execute(
                "SELECT seq, event_id, sku, type FROM events WHERE seq > ? ORDER BY seq", (upto,)
            ):
                if kind in LEDGER_TYPES:
                    positions = seqs.get(sku)
                    if positions is None:
                        positions = seqs[sku] = array("q")
                    positions.append(seq)
                last = seq
                self._last_id = event_id
                yield event_id

        if snap is None:
            self._ids.load(ids())
        else:
            self._ids.update(ids(), unseen=True)
        self._next_seq = last + 1
        return upto

    def holds(self, seq: int, event_id: str) -> bool:
        """Is ``event_id`` the event logged at ``seq`` (position 0 holds before any event)?"""
        if seq == 0:
            return event_id == ""
        row = self._conn.execute("SELECT event_id FROM events WHERE seq = ?", (seq,)).fetchone()
        return row is not None and row[0] == event_id

    def position(self) -> tuple[int, str]:
        """The last committed log position and the id of its event ((0, "") when empty)."""
        with self._lock:
            return self._next_seq - 1, self._last_id

    def write_index(self) -> None:
        """Snapshot the in-memory lookups at the current position (see ``ledger_index``):
        copied under the lock, written outside it."""
        with self._index_lock:
            with self._lock:
                upto, last_id = self._next_seq - 1, self._last_id
                if upto == self._indexed_upto and not self._index_stale:
                    return
                hi, lo = self._ids.folded()  # never mutated in place: no copy needed
                positions = {k: array("q", v) for k, v in self._seqs.items()}
            save_index(
                self.index_path, IndexSnapshot(self.ledger_id, upto, last_id, hi, lo, positions)
            )
            self._indexed_upto = upto
            self._index_soon = self._index_stale = False

    def _index_if_due(self) -> None:
        if not self._index_soon and self._next_seq - 1 - self._indexed_upto < INDEX_EVERY:
            return
        if time.monotonic() < self._index_retry_at:
            return
        try:
            self.write_index()
        except OSError as err:  # a full disk: only a slower next start
            log.warning("ledger index snapshot not written (%s); retried in 60 s", err)
            self._index_retry_at = time.monotonic() + 60.0

    def _refold_all(self) -> None:
        """Reservation grants depend on the buffer: re-fold everything under the new one."""
        with write_transaction(self._conn):
            self._conn.execute("DELETE FROM stock")
            states = self.rebuild()
            self._conn.executemany(UPSERT_STOCK, [s.row() for s in states.values()])
            self._conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'safety_buffer'", (str(self.safety_buffer),)
            )

    # ---- writing -------------------------------------------------------------------------

    def ingest_raw(
        self,
        payload: bytes | str | dict | list,
        source: str | None = None,
        before_commit: BeforeCommit | None = None,
    ) -> IngestResult:
        """Parse a payload (one event or a batch), dead-letter what is invalid, ingest the rest.

        ``source`` is where the payload came from (e.g. the MQTT topic's source or ``api``);
        it is stored with each dead letter.
        """
        events, rejections = self.parse(payload)
        return self._commit(events, rejections, source, before_commit)

    def parse(
        self, payload: bytes | str | dict | list, topic_source: str | None = None
    ) -> tuple[list[Event], list[Rejection]]:
        """Validate a payload against this store, the bounds and the ledger clock (no writes);
        ``topic_source`` is the MQTT topic's source level, when it came over MQTT."""
        return parse_events(payload, self.store_id, self.bounds, self._clock_us, topic_source)

    def ingest_parsed(
        self,
        events: list[Event],
        rejections: list[Rejection],
        source: str | None = None,
        before_commit: BeforeCommit | None = None,
    ) -> IngestResult:
        """Store what :meth:`parse` returned in one transaction: the events, and the rejections
        as dead letters (``source`` stored with them)."""
        return self._commit(list(events), list(rejections), source, before_commit)

    def dead_letter(self, rejections: Iterable[Rejection], source: str | None) -> None:
        """Durably store rejections found outside the parser (an item that crashed a later
        stage), so every refused input lands in the one dead-letter table with its reason."""
        now_us = time.time_ns() // 1000
        rows = [(now_us, source, r.field, r.reason, r.raw, r.index) for r in rejections]
        with self._lock:
            try:
                with write_transaction(self._conn):
                    self._conn.executemany(INSERT_DEAD, rows)
            except StoreError as err:
                self.health.failed(err)
                raise
            self.health.succeeded()

    def ingest(
        self, events: Iterable[Event], before_commit: BeforeCommit | None = None
    ) -> IngestResult:
        """Store and fold validated events in one durable transaction (group commit).

        ``before_commit(conn, result)`` runs inside the transaction, after the ledger rows are
        written and before COMMIT, so outbox rows it writes commit (or roll back) with them.
        """
        return self._commit(list(events), [], None, before_commit)

    def _commit(
        self,
        events: list[Event],
        rejections: list[Rejection],
        source: str | None,
        before_commit: BeforeCommit | None,
    ) -> IngestResult:
        now_us = time.time_ns() // 1000
        with self._lock:
            new, repeats = self._new_events(events)
            reused = self._reuse.rejections(repeats, new, self._next_seq) if repeats else []
            rejections = rejections + reused if reused else rejections
            result = IngestResult(rejected=len(rejections), rejections=rejections)
            result.duplicates = len(repeats) - len(reused)
            result.accepted = len(new)
            result.events = new
            seq0 = self._next_seq
            self._touched = []
            try:
                self._settle()
                working, positions = self._write(
                    new, seq0, rejections, source, before_commit, result, now_us
                )
            except BaseException as err:
                # Whether SQLite rolled back by itself or write_transaction did, memory goes
                # back to what is committed before anything else can read it.
                self._restore(self._touched)
                if is_store_failure(err):
                    self.health.failed(err)
                raise
            self.health.succeeded()
            self._checkpointer.nudge()
            self._advance(new, seq0, working, positions)
        return result

    def _write(self, new, seq0, rejections, source, before_commit, result, now_us):
        """One durable transaction: log rows, folded states, dead letters, the hook's rows.

        Returns the new states and, per SKU, the log positions of its new ledger events."""
        conn = self._conn
        with write_transaction(conn):
            if new:
                conn.executemany(
                    INSERT_EVENT,
                    [
                        (seq, e.event_id, e.sku, e.type, e.qty, e.ts_us, e.event_time,
                         e.source, e.order_id, e.unit_price, e.reason, now_us)
                        for seq, e in enumerate(new, seq0)
                    ],
                )  # fmt: skip
            working, positions = self._fold_new(new, seq0, result, now_us)
            if working:
                conn.executemany(UPSERT_STOCK, [s.row() for s in working.values()])
                result.changed_skus = list(working)
            if rejections:
                conn.executemany(
                    INSERT_DEAD,
                    [(now_us, source, r.field, r.reason, r.raw, r.index) for r in rejections],
                )
            if before_commit is not None:
                before_commit(conn, result)
        return working, positions

    def _advance(self, new, seq0, working, positions) -> None:
        """Only after COMMIT does the in-memory side move on."""
        self._next_seq = seq0 + len(new)
        if new:
            self._last_id = new[-1].event_id
        self._ids.update((e.event_id for e in new), unseen=True)
        seqs = self._seqs
        for sku, added in positions.items():
            stored = seqs.get(sku)
            if stored is None:
                seqs[sku] = array("q", added)
            else:
                stored.extend(added)
        self._states.update(working)
        for s in working.values():
            if s.last_us > self._clock_us:
                self._clock_us = s.last_us

    def _new_events(self, events: list[Event]) -> tuple[list[Event], list[Event]]:
        """Events whose id is neither in the log nor earlier in this batch, and the others."""
        unique: dict[str, Event] = {}
        for e in events:
            unique.setdefault(e.event_id, e)
        fresh = self._ids.unknown(list(unique))
        if len(fresh) == len(events):  # the common case: nothing repeated
            return [unique[i] for i in fresh], []
        waiting = set(fresh)
        new, repeats = [], []
        for e in events:
            if e.event_id in waiting:
                waiting.discard(e.event_id)
                new.append(e)
            else:
                repeats.append(e)
        return new, repeats

    def _fold_new(
        self, new: list[Event], seq0: int, result: IngestResult, now_us: int
    ) -> tuple[dict[str, SkuState], dict[str, list[int]]]:
        """Fold new events into copies of their SKUs' states; late events re-fold the SKU.

        Returns the new states and, per SKU, the log positions of its new ledger events.
        """
        states, buffer = self._states, self.safety_buffer
        working: dict[str, SkuState] = {}
        positions: dict[str, list[int]] = {}
        refold: set[str] = set()
        conflicts: list[Conflict] = []
        record = self.record_steps
        steps, before = result.steps, result.before
        for seq, e in enumerate(new, seq0):
            if e.type not in LEDGER_TYPES:
                continue
            sku = e.sku
            s = working.get(sku)
            if s is None:
                base = states.get(sku)
                # Folded in place (no copy per SKU per commit: ~8 % of ingest CPU); a rolled
                # back transaction restores the touched SKUs from the stock table.
                self._touched.append(sku)
                if record:
                    before[sku] = base.copy() if base is not None else None
                s = working[sku] = base if base is not None else SkuState(sku)
                positions[sku] = [seq]
            else:
                positions[sku].append(seq)
                if sku in refold:
                    continue
            ts = e.ts_us
            if ts > s.last_us or (ts == s.last_us and e.event_id > s.last_id):
                apply(s, e.type, e.qty, ts, e.event_id, e.order_id, buffer, conflicts)
                if record:
                    steps.append((e, s.copy()))
            elif record:
                # The state right after this late event, as it would be arriving alone: the
                # SKU re-folded from the log so far; later events of the batch go on from it.
                self._report(conflicts, result, now_us)
                s = working[sku] = self._refold(sku, positions[sku], result, now_us)
                steps.append((e, s.copy()))
            else:
                refold.add(sku)
        self._report(conflicts, result, now_us)
        for sku in refold:
            working[sku] = self._refold(sku, positions[sku], result, now_us)
        return working, positions

    def _report(self, conflicts: list[Conflict], result: IngestResult, now_us: int) -> None:
        """Store and report the conflicts found in order so far (and forget them)."""
        if conflicts:
            self._conn.executemany(INSERT_CONFLICT, [(*c.row(), now_us) for c in conflicts])
            result.conflicts.extend(conflicts)
            conflicts.clear()

    def _refold(self, sku: str, added: list[int], result: IngestResult, now_us: int) -> SkuState:
        state, found = self._fold_from_log(sku, added)
        # A re-fold finds every conflict of the SKU's history again; report only new ones.
        for c in found:
            if self._conn.execute(INSERT_CONFLICT, (*c.row(), now_us)).rowcount:
                result.conflicts.append(c)
        return state

    def _restore(self, skus: Iterable[str]) -> None:
        """After a failed write: the touched SKUs' in-memory state back to what is committed
        (the stock table). Should the disk refuse even that read, the SKUs are remembered and
        read back before the next write or read of the ledger (:meth:`_settle`)."""
        self._unrestored.update(skus)
        try:
            self._settle()
        except StoreError:
            log.warning("%d SKU(s) to read back after a failed write", len(self._unrestored))

    def _settle(self) -> None:
        """Read back SKUs a failed write left unrestored; ``StoreError`` while it cannot."""
        if not self._unrestored:
            return
        try:
            for sku in list(self._unrestored):
                row = self._conn.execute("SELECT * FROM stock WHERE sku = ?", (sku,)).fetchone()
                if row is None:
                    self._states.pop(sku, None)
                else:
                    self._states[sku] = SkuState(*row)
                self._unrestored.discard(sku)
        except sqlite3.Error as err:
            raise StoreError.of(err) from err

    def _fold_from_log(self, sku: str, added: list[int]) -> tuple[SkuState, list[Conflict]]:
        seqs = [*self._seqs.get(sku, ()), *added]
        rows = []
        for i in range(0, len(seqs), _ID_CHUNK):
            chunk = seqs[i : i + _ID_CHUNK]
            rows.extend(self._conn.execute(FOLD_ROWS.format(",".join("?" * len(chunk))), chunk))
        return fold(sku, rows, self.safety_buffer, base_state(self._conn, sku))

    # ---- reading -------------------------------------------------------------------------

    @property
    def clock_us(self) -> int:
        """The ledger clock: the latest event time folded (microseconds since the epoch)."""
        return self._clock_us

    def stock(self, sku: str, as_of_us: int | None = None) -> StockState | None:
        """The SKU's state, with confidence as of ``as_of_us`` (default: the ledger clock)."""
        with self._lock:
            self._settle()
            s = self._states.get(sku)
            if s is None:
                return None
            return StockState.of(s, self.safety_buffer, as_of_us or self._clock_us)

    def stocks(self, offset: int = 0, limit: int = 100, as_of_us: int | None = None):
        """States of SKUs in SKU order, a page at a time (``list[StockState]``)."""
        if offset < 0 or limit < 0:
            raise ValueError(f"offset and limit must be >= 0, got {offset}, {limit}")
        with self._lock:
            self._settle()
            skus = [
                r[0]
                for r in self._conn.execute(
                    "SELECT sku FROM stock ORDER BY sku LIMIT ? OFFSET ?", (limit, offset)
                )
            ]
            as_of = as_of_us or self._clock_us
            return [StockState.of(self._states[k], self.safety_buffer, as_of) for k in skus]

    def sku_count(self) -> int:
        return len(self._states)

    def event_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM events").fetchone()[0]

    def conflicts(self, after_id: int = 0, limit: int = 100) -> list[dict]:
        """Stored conflict records with ``id > after_id``, oldest first."""
        with self._lock:
            cur = self._conn.execute(
                "SELECT * FROM conflicts WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur]

    def dead_letters(self, limit: int = 100) -> list[dict]:
        """The newest rejected payloads with their reasons, newest first."""
        with self._lock:
            cur = self._conn.execute(
                "SELECT * FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,)
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur]

    # ---- snapshot and replay -------------------------------------------------------------

    def rebuild(self) -> dict[str, SkuState]:
        """Fold the whole log again, SKU by SKU in event-time order (the state is not touched)."""
        with self._lock:
            by_sku: dict[str, list] = {}
            for sku, *row in self._conn.execute(
                "SELECT sku, type, qty, ts_us, event_id, order_id FROM events"
            ):
                if row[0] in LEDGER_TYPES:
                    rows = by_sku.get(sku)
                    if rows is None:
                        rows = by_sku[sku] = []
                    rows.append(row)
            bases = {r[0]: SkuState(*r) for r in self._conn.execute("SELECT * FROM stock_base")}
            out = {sku: fold(sku, rows, self.safety_buffer, bases.get(sku))[0]
                   for sku, rows in by_sku.items()}  # fmt: skip
            return bases | out  # a SKU whose events are all archived keeps its base state

    def states(self) -> dict[str, SkuState]:
        """A copy of the in-memory state of every SKU."""
        with self._lock:
            self._settle()
            return {k: s.copy() for k, s in self._states.items()}

    def folded_states(self) -> Mapping[str, SkuState]:
        """The live in-memory state of every SKU, read-only and not copied: for a
        ``before_commit`` hook (it runs under the ledger's lock), where the SKUs of the open
        batch are already folded and every other SKU is as committed."""
        return MappingProxyType(self._states)

    def stored_states(self) -> dict[str, SkuState]:
        """The snapshot as stored in the ``stock`` table."""
        with self._lock:
            return {r[0]: SkuState(*r) for r in self._conn.execute("SELECT * FROM stock")}

    def verify(self) -> list[str]:
        """SKUs whose stored or in-memory state differs from a re-fold of the log (want ``[]``)."""
        rebuilt = self.rebuild()
        stored = self.stored_states()
        with self._lock:
            self._settle()
            memory = dict(self._states)
        skus = set(rebuilt) | set(stored) | set(memory)
        return sorted(k for k in skus if not (rebuilt.get(k) == stored.get(k) == memory.get(k)))

    # ---- retention -----------------------------------------------------------------------

    def archive_events(
        self,
        archive: EventArchive,
        before_us: int,
        keep_from: int | None = None,
        limit: int = 200_000,
    ) -> int:
        """Move events older than ``before_us`` (event time; never closer to the ledger clock
        than ``[ingest] max_late_days``) into ``archive``, keeping every event at or after log
        position ``keep_from`` and this ledger's own index snapshot; at most about ``limit``
        events per call, an hour of event time per transaction (``edge_runtime.store.log_archiving``).
        Returns how many moved. State and re-folds are unchanged by it; an archived event sent
        again is refused as older than the late bound, as it would be had it stayed."""
        with self._lock:
            recover(self._conn, archive)
            late_us = round(self.bounds.max_late_days * DAY_US)
            keep = min(self._indexed_upto, self._next_seq if keep_from is None else keep_from)
            units = archivable_units(self._conn, min(before_us, self._clock_us - late_us), keep)
        moved = 0
        for unit in units:
            if moved >= limit:
                break
            with self._lock:  # one unit at a time: ingest goes on between them
                try:
                    gone, ids = move_unit(self._conn, archive, unit, self.safety_buffer)
                except StoreError as err:
                    self.health.failed(err)
                    raise
                self._forget_positions(gone)
                # Too old to be accepted again (the late bound refuses them first): their ids
                # need neither memory nor room in the index snapshot.
                self._ids.forget(ids)
            moved += unit.rows
            self._index_stale = True
        if moved:  # the smaller lookups on disk too, so the next start loads no archived id
            with contextlib.suppress(OSError):
                self.write_index()
        return moved

    def prune_dead_letters(self, before_us: int, keep: int) -> int:
        """Delete dead letters received before ``before_us`` and all but the newest ``keep``
        (a flood of bad input must not fill the disk); returns how many."""
        with self._lock:
            try:
                with write_transaction(self._conn):
                    return self._conn.execute(
                        "DELETE FROM dead_letters WHERE received_us < ? OR id <= "
                        "(SELECT max(id) FROM dead_letters) - ?",
                        (before_us, keep),
                    ).rowcount
            except StoreError as err:
                self.health.failed(err)
                raise

    def _forget_positions(self, gone: dict[str, list[int]]) -> None:
        """Drop archived log positions from the per-SKU lookup (re-folds start at the base)."""
        for sku, seqs in gone.items():
            held = self._seqs.get(sku)
            if held is None:
                continue
            kept = np.frombuffer(held, dtype=np.int64)
            kept = kept[~np.isin(kept, np.asarray(seqs, dtype=np.int64))]
            if len(kept):
                self._seqs[sku] = array("q", kept.tobytes())
            else:
                del self._seqs[sku]

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
