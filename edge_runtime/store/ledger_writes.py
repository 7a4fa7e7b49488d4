"""The ledger's write path: a payload parsed, its new events logged and folded, its refusals
dead-lettered and the caller's ``before_commit`` rows written, in one durable transaction; the
in-memory side moves on only after COMMIT, and goes back to what is committed after a failure.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from array import array
from collections.abc import Iterable

from edge_runtime.store.checkpointer import Checkpointer
from edge_runtime.store.event_id_reuse import ReusedIds
from edge_runtime.store.event_ids import EventIds
from edge_runtime.store.events import Event, Rejection, parse_events
from edge_runtime.store.ingest_result import BeforeCommit, IngestResult
from edge_runtime.store.ledger_schema import INSERT_DEAD, INSERT_EVENT, UPSERT_STOCK
from edge_runtime.store.plausibility import Plausibility
from edge_runtime.store.stock import SkuState
from edge_runtime.store.store_failure import (
    StoreError,
    StoreHealth,
    is_store_failure,
    write_transaction,
)

log = logging.getLogger(__name__)


class LedgerWrites:
    """Parsing, committing and dead-lettering: everything that adds to the ledger.

    A part of :class:`edge_runtime.store.ledger.Ledger` (which sets the attributes below).

    >>> import os, tempfile
    >>> from edge_runtime.store.ledger import Ledger
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ledger = Ledger(os.path.join(tmp.name, "l.sqlite"), "S1")
    >>> ev = {"event_id": "r1", "store_id": "S1", "sku": "A", "type": "receipt", "qty": 5,
    ...       "event_time": "2026-01-05T08:00:00+00:00", "source": "wms"}
    >>> r = ledger.ingest_raw([ev, ev, {**ev, "event_id": "r2", "qty": -1}], source="wms")
    >>> r.accepted, r.duplicates, r.rejected, ledger.dead_letters()[0]["field"]
    (1, 1, 1, 'qty')
    >>> ledger.close(); tmp.cleanup()
    """

    _conn: sqlite3.Connection
    _lock: threading.RLock
    store_id: str
    bounds: Plausibility
    health: StoreHealth
    _checkpointer: Checkpointer
    _clock_us: int
    _ids: EventIds
    _reuse: ReusedIds
    _seqs: dict[str, array]
    _next_seq: int
    _last_id: str
    _states: dict[str, SkuState]
    _touched: list[str]
    _unrestored: set[str]

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
                result.written = working
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
