"""The uplink: only aggregated stock deltas (and the exceptions on the alert topics) leave the store.

Instead of forwarding every event to the central system, the gateway sends one
``UplinkDeltas`` message per window with, for each SKU that changed, the net change of on-hand
and reserved units, the state at the window's end and how many events it took. The baseline
(what was last sent per SKU) is stored in the ledger's SQLite file in the same transaction as the
outbox row carrying the message, so a crash neither loses nor repeats a delta: after a restart,
every SKU whose ledger state differs from its baseline is reported in the next window.

>>> import tempfile, os
>>> from edge_runtime.outbox import Outbox
>>> from edge_runtime.stock import SkuState, StockState
>>> box = Outbox(os.path.join(tempfile.mkdtemp(), "ledger.sqlite"))
>>> up = Uplink(box, store_id="S1", model_version="rules-1")
>>> up.observe([StockState.of(SkuState("A", on_hand=7, events=2, last_us=0), 0, 0)])
>>> import json
>>> [(d["sku"], d["d_on_hand"], d["events"]) for d in json.loads(up.flush()[0].payload)["deltas"]]
[('A', 7.0, 2)]
>>> up.flush()
[]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime

from edge_runtime.messages import SkuDelta, UplinkDeltas
from edge_runtime.outbox import Outbox, OutboxRow
from edge_runtime.stock import StockState

SCHEMA = """
CREATE TABLE IF NOT EXISTS uplink_baseline (
    sku TEXT PRIMARY KEY, on_hand REAL NOT NULL, reserved REAL NOT NULL, events INTEGER NOT NULL
);
"""
_UPSERT = "INSERT OR REPLACE INTO uplink_baseline VALUES (?, ?, ?, ?)"
MAX_SKUS_PER_MESSAGE = 5000  # keeps one MQTT payload well under a megabyte


class Uplink:
    """Collects changed SKU states and turns them into ``UplinkDeltas`` messages on ``flush``."""

    def __init__(self, outbox: Outbox, store_id: str, model_version: str):
        self.outbox = outbox
        self.store_id = store_id
        self.model_version = model_version
        conn = outbox.connection
        conn.executescript(SCHEMA)
        self._baseline: dict[str, tuple[float, float, int]] = {
            sku: (on_hand, reserved, events)
            for sku, on_hand, reserved, events in conn.execute("SELECT * FROM uplink_baseline")
        }
        self._changed: dict[str, StockState] = {}
        self._window_start = datetime.now(UTC)
        self.bytes_sent = 0

    def prime(self, states: Iterable[StockState]) -> None:
        """After a restart: SKUs whose state moved since the last uplink go in the next window."""
        for s in states:
            if self._baseline.get(s.sku, (0, 0, 0)) != (s.on_hand, s.reserved, s.events):
                self._changed[s.sku] = s

    def observe(self, states: Iterable[StockState]) -> None:
        """Remember the newest state of SKUs that changed (called after each ledger commit)."""
        for s in states:
            self._changed[s.sku] = s

    @property
    def pending_skus(self) -> int:
        return len(self._changed)

    def _deltas(self, states: list[StockState]) -> list[SkuDelta]:
        out = []
        for s in states:
            on_hand, reserved, events = self._baseline.get(s.sku, (0, 0, 0))
            out.append(
                SkuDelta(
                    sku=s.sku,
                    d_on_hand=s.on_hand - on_hand,
                    d_reserved=s.reserved - reserved,
                    on_hand=s.on_hand,
                    atp=s.available,
                    events=s.events - events,
                )
            )
        return out

    def flush(self) -> list[OutboxRow]:
        """Write the window's deltas to the outbox (with the new baseline); [] if nothing changed."""
        if not self._changed:
            return []
        end = datetime.now(UTC)
        states = sorted(self._changed.values(), key=lambda s: s.sku)
        messages = []
        for i in range(0, len(states), MAX_SKUS_PER_MESSAGE):
            deltas = self._deltas(states[i : i + MAX_SKUS_PER_MESSAGE])
            messages.append(
                UplinkDeltas(
                    store_id=self.store_id,
                    model_version=self.model_version,
                    window_start=self._window_start,
                    window_end=end,
                    events=sum(d.events for d in deltas),
                    deltas=deltas,
                )
            )
        rows = self._commit(messages, states)
        self._changed.clear()
        self._window_start = end
        self.bytes_sent += sum(len(r.payload) for r in rows)
        return rows

    def _commit(self, messages: list[UplinkDeltas], states: list[StockState]) -> list[OutboxRow]:
        conn: sqlite3.Connection = self.outbox.connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = self.outbox.put(messages, conn=conn)
            conn.executemany(_UPSERT, [(s.sku, s.on_hand, s.reserved, s.events) for s in states])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for s in states:
            self._baseline[s.sku] = (s.on_hand, s.reserved, s.events)
        return rows
