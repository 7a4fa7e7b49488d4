"""The ledger's retention: old events moved into the compressed archive and dead letters
pruned, in bounded steps so ingest goes on between them.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading

from edge_runtime.store.event_archive import EventArchive
from edge_runtime.store.event_ids import EventIds
from edge_runtime.store.log_archiving import archivable_units, move_unit, recover
from edge_runtime.store.plausibility import DAY_US, Plausibility
from edge_runtime.store.store_failure import StoreError, StoreHealth, write_transaction


class LedgerRetention:
    """Archiving the log's old events and pruning dead letters.

    A part of :class:`edge_runtime.store.ledger.Ledger` (which sets the attributes below).

    >>> import os, tempfile
    >>> from edge_runtime.store.ledger import Ledger
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ledger = Ledger(os.path.join(tmp.name, "l.sqlite"), "S1")
    >>> _ = ledger.ingest_raw(b"not json", source="pos")
    >>> ledger.prune_dead_letters(before_us=0, keep=0), ledger.dead_letters()
    (1, [])
    >>> ledger.close(); tmp.cleanup()
    """

    _conn: sqlite3.Connection
    _lock: threading.RLock
    safety_buffer: int
    bounds: Plausibility
    health: StoreHealth
    _clock_us: int
    _ids: EventIds
    _next_seq: int
    _indexed_upto: int
    _index_stale: bool

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
