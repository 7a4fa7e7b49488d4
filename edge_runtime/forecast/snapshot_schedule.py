"""When the gateway saves its derived state (sales series, River, the last close's scoring),
and by which thread.

Why a schedule: a start reads the log only after the last snapshot, so snapshots bound the
start time; but each one is a pickle and an fsync. One is due after ``SNAPSHOT_EVERY_EVENTS``
new events, or ``SNAPSHOT_EVERY_S`` after the last if anything was logged since, or soon after a
start that had to read a long tail (after a run of crashes each start would otherwise read a
longer tail than the last). The state is copied by the caller (under its lock) and written by a
thread of its own, so the worker goes back to ingesting at once. A failed write (a full disk)
costs only a slower next start; it is retried at most once a minute.

>>> import tempfile, pathlib
>>> tmp = tempfile.TemporaryDirectory()
>>> sched = SnapshotSchedule(pathlib.Path(tmp.name) / "derived.pickle")
>>> sched.due(10, ingested=True, force=False), sched.due(0, ingested=True, force=True)
(True, False)
>>> sched.save(lambda force: (10, b"state"), force=True); sched.upto, sched.path.read_bytes()
(10, b'state')
>>> tmp.cleanup()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_runtime.forecast.daily_sales import DailySales
from edge_runtime.forecast.derived_snapshot import (
    DerivedSnapshot,
    dump_derived,
    load_derived,
    write_derived,
)
from edge_runtime.store.ledger import Ledger

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_EVENTS = 100_000  # derived-state snapshot after this many events ...
SNAPSHOT_EVERY_S = 60.0  # ... or this long after the last one, if anything was logged since
SNAPSHOT_TAIL_AT_START = 20_000  # a start that read this many events after it saves a new one

Take = Callable[[bool], "tuple[int, bytes] | None"]  # force -> (log position, state) or None


class SnapshotSchedule:
    """The derived-state snapshots of one state directory (see the module docstring).

    >>> sched = SnapshotSchedule(Path("derived.pickle"))
    >>> sched.restored(upto=500, tail=10)  # a short tail after the snapshot: none due soon
    >>> sched.due(501, ingested=True, force=False), sched.due(501, ingested=True, force=True)
    (False, True)
    >>> sched.restored(upto=500, tail=25_000)  # a long tail: save one after the first commit
    >>> sched.due(501, ingested=False, force=False), sched.due(501, ingested=True, force=False)
    (False, True)
    """

    def __init__(self, path: Path):
        self.path = path
        self.upto = 0  # log position of the last snapshot written (0: none)
        self.soon = True  # save one at the first chance (none yet, or a long tail read)
        self._at = time.monotonic()
        self._ok = True  # False after a failed write: then at most one try a minute
        self._writer: threading.Thread | None = None  # writing one now, when alive

    def restored(self, upto: int, tail: int) -> None:
        """The state was restored from the snapshot at ``upto`` plus ``tail`` later events."""
        self.upto, self.soon = upto, tail >= SNAPSHOT_TAIL_AT_START

    def rebuilt(self) -> None:
        """The state was rebuilt from the whole log: saved once the worker runs."""
        self.upto, self.soon = 0, True

    def load_sales(self, ledger: Ledger) -> tuple[DailySales, DerivedSnapshot | None]:
        """The sales series from the snapshot when it holds for ``ledger``'s log (the events
        after it are read), else rebuilt from the whole log; with that snapshot."""
        snap = load_derived(self.path, ledger.ledger_id)
        if snap is not None and ledger.holds(snap.upto, snap.last_id):
            n = snap.sales.catch_up(ledger.connection, snap.upto)
            self.restored(snap.upto, n)
            log.info("sales series from the snapshot at %d, %d later events", snap.upto, n)
            return snap.sales, snap
        self.rebuilt()
        return DailySales.from_ledger(ledger.connection), None

    def taken(
        self,
        ledger: Ledger,
        sales: DailySales,
        derived: Callable[[], tuple[Any, Any]],
        ingested: bool,
        force: bool,
    ) -> tuple[int, bytes] | None:
        """The snapshot at ``ledger``'s position as bytes when one is due (see :meth:`due`),
        else None; ``derived``: River's correction and the last close's scoring."""
        upto, last_id = ledger.position()
        if not self.due(upto, ingested, force):
            return None
        snap = DerivedSnapshot(ledger.ledger_id, upto, last_id, sales, *derived())
        return upto, dump_derived(snap)

    def due(self, upto: int, ingested: bool, force: bool) -> bool:
        """Whether a snapshot at log position ``upto`` is due (``force``: any change since the
        last). ``ingested``: this process committed events (the start's own snapshot waits for
        the first commit: consuming comes first)."""
        new = upto - self.upto
        waited = time.monotonic() - self._at >= SNAPSHOT_EVERY_S
        many = new >= SNAPSHOT_EVERY_EVENTS or (self.soon and ingested)
        return new > 0 and (force or waited or (many and self._ok))

    def save(self, take: Take, force: bool = False) -> None:
        """Save what ``take`` copies, when it says one is due: written by a thread of its own;
        ``force`` (at close) writes here, after any write still under way."""
        writer = self._writer
        if writer is not None and writer.is_alive():
            if not force:
                return  # one write at a time; the next is due again after it
            writer.join()
        taken = take(force)
        if taken is None:
            return
        if force:
            self._write(*taken)
            return
        self._writer = threading.Thread(
            target=self._write, args=taken, name="derived-snapshot", daemon=True
        )
        self._writer.start()

    def _write(self, upto: int, blob: bytes) -> None:
        try:
            write_derived(self.path, blob)
        except OSError as err:  # a full disk: only a slower next start; retried a minute on
            log.warning("derived-state snapshot not written (%s); retried in 60 s", err)
            self._at, self._ok = time.monotonic(), False
            return
        self.upto, self._at = upto, time.monotonic()
        self._ok, self.soon = True, False
