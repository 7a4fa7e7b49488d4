"""The uplink: only aggregated stock deltas and exceptions leave the store, not every event.

Instead of forwarding every event to the central system, the gateway sends one
``UplinkDeltas`` message per window (gzip-compressed JSON) with, for each SKU that changed, the
net change of on-hand and reserved units, the state at the window's end and how many events it
took, plus the window's alerts and conflicts in short form (sku, kind, reason). The baseline
(what was last sent per SKU) is stored in the ledger's SQLite file in the same transaction as the
outbox row carrying the message, so a crash neither loses nor repeats a delta: after a restart,
every SKU whose ledger state differs from its baseline is reported in the next window.

>>> import tempfile, os
>>> from edge_runtime.store.outbox import Outbox
>>> from edge_runtime.store.stock import SkuState, StockState
>>> box = Outbox(os.path.join(tempfile.mkdtemp(), "ledger.sqlite"))
>>> up = Uplink(box, store_id="S1", model_version="rules-1")
>>> up.observe([StockState.of(SkuState("A", on_hand=7, events=2, last_us=0), 0, 0)])
>>> import json
>>> import gzip
>>> json.loads(gzip.decompress(up.flush()[0].payload))["deltas"]
[['A', 7, 0, 7, 7, 2]]
>>> up.flush()
[]
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from edge_runtime.messages import Message, UplinkDeltas
from edge_runtime.store.outbox import Outbox, OutboxRow
from edge_runtime.store.stock import StockState
from edge_runtime.store.store_failure import write_transaction
from edge_runtime.store.uplink_baseline import Baseline, UplinkBaselineTable

MAX_SKUS_PER_MESSAGE = 5000  # keeps one MQTT payload well under a megabyte


class Uplink:
    """Collects changed SKU states and turns them into ``UplinkDeltas`` messages on ``flush``."""

    def __init__(self, outbox: Outbox, store_id: str, model_version: str):
        self.outbox = outbox
        self.store_id = store_id
        self.model_version = model_version
        self._table = UplinkBaselineTable(outbox.connection)
        self._baseline: dict[str, Baseline] = self._table.load()
        self._changed: dict[str, StockState] = {}
        self._exceptions: list[tuple[str, str, str]] = []
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

    def observe_messages(self, messages: Iterable[Message]) -> None:
        """Remember the window's alerts and conflicts in short form."""
        for m in messages:
            codes = getattr(m, "reason_codes", None)
            self._exceptions.append((m.sku or "", m.kind, codes[0] if codes else ""))

    @property
    def pending_skus(self) -> int:
        return len(self._changed)

    def _deltas(self, states: list[StockState]) -> list[tuple]:
        out = []
        for s in states:
            on_hand, reserved, events = self._baseline.get(s.sku, (0, 0, 0))
            row = (s.sku, s.on_hand - on_hand, s.reserved - reserved, s.on_hand, s.available)
            out.append((*row, s.events - events))
        return out

    def flush(self) -> list[OutboxRow]:
        """Write the window's deltas to the outbox (with the new baseline); [] if nothing changed."""
        if not self._changed and not self._exceptions:
            return []
        end = datetime.now(UTC)
        states = sorted(self._changed.values(), key=lambda s: s.sku)
        messages = []
        for i in range(0, max(1, len(states)), MAX_SKUS_PER_MESSAGE):
            deltas = self._deltas(states[i : i + MAX_SKUS_PER_MESSAGE])
            messages.append(
                UplinkDeltas(
                    store_id=self.store_id,
                    model_version=self.model_version,
                    window_start=self._window_start,
                    window_end=end,
                    events=sum(d[-1] for d in deltas),
                    deltas=deltas,
                    exceptions=self._exceptions if i == 0 else [],
                )
            )
        rows = self._commit(messages, states)
        self._changed.clear()
        self._exceptions = []
        self._window_start = end
        self.bytes_sent += sum(len(r.payload) for r in rows)
        return rows

    def _commit(self, messages: list[UplinkDeltas], states: list[StockState]) -> list[OutboxRow]:
        conn = self.outbox.connection
        with write_transaction(conn):  # refused (full disk): the window stays for the next try
            rows = self.outbox.put(messages, conn=conn)
            self._table.save(conn, states)
        for s in states:
            self._baseline[s.sku] = (s.on_hand, s.reserved, s.events)
        return rows
