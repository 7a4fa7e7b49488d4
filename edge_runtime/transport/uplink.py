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
>>> tmp = tempfile.TemporaryDirectory()
>>> box = Outbox(os.path.join(tmp.name, "ledger.sqlite"))
>>> up = Uplink(box, store_id="S1", model_version="rules-1")
>>> up.observe([StockState.of(SkuState("A", on_hand=7, events=2, last_us=0), 0, 0)])
>>> import json
>>> import gzip
>>> json.loads(gzip.decompress(up.flush()[0].payload))["deltas"]
[['A', 7, 0, 7, 7, 2]]
>>> up.flush()
[]
>>> tmp.cleanup()
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from edge_runtime.messages import Message, UplinkDeltas
from edge_runtime.store.outbox import Outbox, OutboxRow
from edge_runtime.store.stock import StockState
from edge_runtime.store.store_failure import write_transaction
from edge_runtime.store.uplink_baseline import Baseline, UplinkBaselineTable

if TYPE_CHECKING:
    import sqlite3

MAX_SKUS_PER_MESSAGE = 5000  # keeps one MQTT payload well under a megabyte
# A due window waits this share of an interval, at most CARRY_GRACE_MAX_S, for the commit of
# an event to carry it (one commit, not two) before the worker writes it in a commit of its own.
CARRY_GRACE, CARRY_GRACE_MAX_S = 0.5, 0.05


def own_window_interval(interval_s: float) -> float:
    """How long after the last window the worker writes the next one in its own commit; from
    ``interval_s`` on, the commit of an event that finds it due carries it.

    Why: a busy store's next event usually comes within that grace, and a window carried by it
    spares a commit and a fsync of its own; a quiet store's changes wait at most 50 ms longer.

    >>> own_window_interval(0.02), own_window_interval(900.0)
    (0.03, 900.05)
    """
    return interval_s + min(interval_s * CARRY_GRACE, CARRY_GRACE_MAX_S)


class UplinkWindow(NamedTuple):
    """A window written inside an open transaction: its rows, the states it reported (the
    new baseline) and when it ended. The uplink's memory moves on only once it is committed
    (:meth:`Uplink.committed`).

    >>> from edge_runtime.store.outbox import Outbox
    >>> from edge_runtime.store.stock import SkuState, StockState
    >>> up = Uplink(Outbox(":memory:"), store_id="S1", model_version="rules-1")
    >>> up.observe([StockState.of(SkuState("A", on_hand=7, events=2, last_us=0), 0, 0)])
    >>> try:
    ...     with write_transaction(up.outbox.connection) as conn:
    ...         window = up.write(conn)
    ...         raise RuntimeError("a later step failed")  # the transaction rolls back
    ... except RuntimeError:
    ...     pass
    >>> [s.sku for s in window.states], len(window.rows), up.waiting  # kept for the next try
    (['A'], 1, True)
    """

    rows: list[OutboxRow]
    states: list[StockState]
    end: datetime


class Uplink:
    """Collects changed SKU states and turns them into ``UplinkDeltas`` messages, one window at
    most every ``interval_s`` (counted from the commit of the last one).

    >>> from edge_runtime.store.outbox import Outbox
    >>> from edge_runtime.store.stock import SkuState, StockState
    >>> box = Outbox(":memory:")
    >>> up = Uplink(box, store_id="S1", model_version="rules-1")
    >>> state = StockState.of(SkuState("A", on_hand=7, events=2, last_us=0), 0, 0)
    >>> up.observe([state]); _ = up.flush()  # sent: the new baseline
    >>> again = Uplink(box, store_id="S1", model_version="rules-1")  # after a restart
    >>> again.prime([state]); again.pending_skus  # reported already: nothing to send
    0
    >>> again.prime([StockState.of(SkuState("A", on_hand=5, events=3, last_us=0), 0, 0)])
    >>> again.pending_skus
    1
    """

    def __init__(self, outbox: Outbox, store_id: str, model_version: str):
        self.outbox = outbox
        self.store_id = store_id
        self.model_version = model_version
        self._table = UplinkBaselineTable(outbox.connection)
        self._baseline: dict[str, Baseline] = self._table.load()
        self._changed: dict[str, StockState] = {}
        self._exceptions: list[tuple[str, str, str]] = []
        self._window_start = datetime.now(UTC)
        self._last_window = time.monotonic()
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
        self._exceptions.extend(_short(messages))

    @property
    def pending_skus(self) -> int:
        return len(self._changed)

    @property
    def waiting(self) -> bool:
        """True when a change or an exception waits for the next window."""
        return bool(self._changed or self._exceptions)

    def due_in(self, interval_s: float) -> float:
        """Seconds until the next window may be written (0: now)."""
        return max(0.0, self._last_window + interval_s - time.monotonic())

    def wait_s(self, interval_s: float, tick_s: float) -> float:
        """How long a worker that writes the windows may sleep: ``tick_s``, or less when changes
        wait for a window the worker is to write sooner (:func:`own_window_interval`; at least
        1 ms: a due window that could not be written yet is retried that often)."""
        if not self.waiting:
            return tick_s
        return min(tick_s, max(0.001, self.due_in(own_window_interval(interval_s))))

    def _deltas(self, states: list[StockState]) -> list[tuple]:
        out = []
        for s in states:
            on_hand, reserved, events = self._baseline.get(s.sku, (0, 0, 0))
            row = (s.sku, s.on_hand - on_hand, s.reserved - reserved, s.on_hand, s.available)
            out.append((*row, s.events - events))
        return out

    def flush(self) -> list[OutboxRow]:
        """Write the window's deltas to the outbox (with the new baseline) in a transaction of
        its own; [] if nothing changed."""
        if not self.waiting:
            return []
        conn = self.outbox.connection
        with write_transaction(conn):  # refused (full disk): the window stays for the next try
            window = self.write(conn)
        return self.committed(window) if window is not None else []

    def write(
        self,
        conn: sqlite3.Connection,
        states: Iterable[StockState] = (),
        messages: Iterable[Message] = (),
    ) -> UplinkWindow | None:
        """Write the window on ``conn``, inside its open transaction: what changed since the
        last window plus ``states`` and ``messages`` of that transaction (a commit that carries
        its own window saves a second commit). None when there is nothing to report. Nothing
        in memory changes until :meth:`committed`: a rollback leaves the window as it was."""
        changed = self._changed
        if states:
            changed = {**changed, **{s.sku: s for s in states}}
        exceptions = self._exceptions + _short(messages) if messages else self._exceptions
        if not changed and not exceptions:
            return None
        end = datetime.now(UTC)
        ordered = sorted(changed.values(), key=lambda s: s.sku)
        out = []
        for i in range(0, max(1, len(ordered)), MAX_SKUS_PER_MESSAGE):
            deltas = self._deltas(ordered[i : i + MAX_SKUS_PER_MESSAGE])
            out.append(
                window_message(
                    store_id=self.store_id,
                    model_version=self.model_version,
                    window_start=self._window_start,
                    window_end=end,
                    events=sum(d[-1] for d in deltas),
                    deltas=deltas,
                    exceptions=exceptions if i == 0 else [],
                )
            )
        rows = self.outbox.put(out, conn=conn)
        self._table.save(conn, ordered)
        return UplinkWindow(rows, ordered, end)

    def committed(self, window: UplinkWindow) -> list[OutboxRow]:
        """The transaction holding ``window`` committed: it is the baseline now, and the next
        window starts where it ended. Returns its rows."""
        for s in window.states:
            self._baseline[s.sku] = (s.on_hand, s.reserved, s.events)
        self._changed.clear()
        self._exceptions = []
        self._window_start = window.end
        self._last_window = time.monotonic()  # from its COMMIT: the disk's time is not the wait
        self.bytes_sent += sum(len(r.payload) for r in window.rows)
        return window.rows


def window_message(**fields: Any) -> UplinkDeltas:
    """The window's ``UplinkDeltas`` from values the uplink made itself (UTC times from its own
    clock, numbers from the ledger's states), without validating them again: validation cost
    more than the rest of writing a window (a window every 20 ms at the hub's rate). The JSON
    is the same as that of ``UplinkDeltas(**fields)`` (``tests/test_gateway_uplink_window.py``).

    The fields left out are filled here, not by ``model_construct``: for each default it asks
    ``inspect.signature`` whether the factory takes the other fields, which cost more than the
    rest of building the message."""
    filled = dict(_PLAIN_DEFAULTS)
    for name, factory in _DEFAULT_FACTORIES.items():
        if name not in fields:
            filled[name] = factory()
    filled.update(fields)
    return UplinkDeltas.model_construct(set(fields), **filled)


# The model's defaults, looked up once: plain ones are immutable (numbers, strings, None, a
# tuple), so one object serves every window; the factories take no argument.
_PLAIN_DEFAULTS = {
    n: f.default
    for n, f in UplinkDeltas.model_fields.items()
    if not f.is_required() and f.default_factory is None
}
_DEFAULT_FACTORIES = {
    n: f.default_factory for n, f in UplinkDeltas.model_fields.items() if f.default_factory
}


def _short(messages: Iterable[Message]) -> list[tuple[str, str, str]]:
    """Alerts and conflicts as a window lists them: (sku, kind, first reason code)."""
    out = []
    for m in messages:
        codes = getattr(m, "reason_codes", None)
        out.append((m.sku or "", m.kind, codes[0] if codes else ""))
    return out
