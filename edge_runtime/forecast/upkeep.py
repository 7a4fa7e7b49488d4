"""The gateway's upkeep of its state directory: derived-state snapshots and retention.

Both run on the worker between ingest rounds (``tick``) and at close; retention moves the
snapshots first, since only the events after them must stay in the log. The state is copied
under the gateway's ingest lock, which also serialises every write on the ledger's connection.

>>> import tempfile, threading
>>> from pathlib import Path
>>> from edge_runtime.config import load_config
>>> from edge_runtime.store.event_archive import EventArchive
>>> from edge_runtime.store.ledger import Ledger
>>> from edge_runtime.store.outbox import Outbox
>>> from edge_runtime.store.retention import Retention
>>> tmp = tempfile.TemporaryDirectory()
>>> d = Path(tmp.name); cfg = load_config(env={"SHELFCAST_STORE_ID": "S1"})
>>> led = Ledger(d / "ledger.sqlite", "S1"); box = Outbox(d / "ledger.sqlite")
>>> ret = Retention(cfg.retention, led, box, EventArchive(d / "archive"), False, lambda: None)
>>> up = Upkeep(led, ret, SnapshotSchedule(d / "derived.pickle"), threading.Lock(),
...             lambda: None, lambda: False)
>>> up.run_retention().more
False
>>> box.close(); led.close(); tmp.cleanup()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from edge_runtime.forecast.daily_sales import DailySales
from edge_runtime.forecast.snapshot_schedule import SnapshotSchedule
from edge_runtime.store.ledger import Ledger
from edge_runtime.store.retention import Retention, RetentionReport

log = logging.getLogger(__name__)

# The state to save: the sales series and what gives River and the last close's scoring;
# None while a rolled-back batch's memory waits to be rebuilt (no commit holds that state).
State = Callable[[], "tuple[DailySales, Callable[[], tuple[Any, Any]]] | None"]
# How often the worker's turns look at the schedules. Why not at every turn: a store's trickle of
# single sales gives the worker a turn per sale, and each look takes the ingest lock and copies
# the ledger's position, while both schedules count in seconds (or thousands of events). Why not
# more often: an idle worker sleeps until the next look (``wait_s``), and each look wakes it.
LOOK_EVERY_S = 1.0


class Upkeep:
    """Snapshots and retention of one gateway (see the module docstring); ``ingested`` says
    whether this process committed events (the start's own snapshot waits for the first)."""

    def __init__(
        self,
        ledger: Ledger,
        retention: Retention,
        snapshots: SnapshotSchedule,
        lock: threading.Lock,
        state: State,
        ingested: Callable[[], bool],
    ):
        self.ledger, self.retention, self.snapshots, self.lock = ledger, retention, snapshots, lock
        self._state, self._ingested = state, ingested
        self._next_look = 0.0

    def tick(self) -> None:
        """The worker's turn: a snapshot and a retention run, each when due (looked at every
        ``LOOK_EVERY_S`` at most)."""
        now = time.monotonic()
        if now < self._next_look:
            return
        self._next_look = now + LOOK_EVERY_S
        self.snapshot()
        self.retention.run_when_due(self.run_retention)

    def wait_s(self) -> float:
        """Seconds until :meth:`tick` looks at the schedules again: an idle worker sleeps that
        long (0: at its next turn)."""
        return max(0.0, self._next_look - time.monotonic())

    def snapshot(self, force: bool = False) -> None:
        """Save the derived state when due (``force``: any change since the last, written
        here; else by a thread of its own)."""
        self.snapshots.save(self._taken, force)

    def _taken(self, force: bool) -> tuple[int, bytes] | None:
        with self.lock:
            state = self._state()
            if state is None:
                return None
            sales, derived = state
            return self.snapshots.taken(self.ledger, sales, derived, self._ingested(), force)

    def run_retention(self) -> RetentionReport:
        """Apply the ``[retention]`` bounds now: the snapshots move first."""
        self.snapshot(force=True)
        self.ledger.write_index()
        with self.lock:  # a bundle swap writes its decisions on this connection too
            report = self.retention.run(keep_from=self.snapshots.upto)
        log.info("retention: %s", report)
        return report
