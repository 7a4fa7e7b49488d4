"""The outbox pump: committed outbox rows to the MQTT transport, and broker acknowledgements
back to the outbox as "sent".

Two paths: new rows are handed to the transport straight from the commit that wrote them (the
low-latency path); after a restart, an outage or a full publish window, rows are read back from
SQLite in order (the durable path, the "backlog") until the window has room again. Marking sent
is off the latency path and batched: losing a mark only re-sends a row, never loses one.

The uplink's window rows join the same path when its interval has passed (written by the
worker here, or inside the commit of the events that found it due).

>>> import threading
>>> pump = OutboxPump(None, {"sent": 0}, Counter(), Backoff(), lambda: True, threading.Lock())
>>> pump.pump(None), pump.backlog
(None, True)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from edge_runtime.ingest.mqtt_intake import Backoff
from edge_runtime.store.outbox import Outbox, OutboxRow
from edge_runtime.store.store_failure import StoreError
from edge_runtime.transport.uplink import Uplink, own_window_interval

# Acknowledged rows are marked sent at most this often ... Why not sooner: at a trickle every
# sale's window would get a mark transaction of its own; a late mark only re-sends a row after
# a crash, and the broker's and JetStream's consumers de-duplicate it by message id.
MARK_EVERY_S = 0.25
MARK_BATCH = 2000  # ... or as soon as this many wait
MARK_IDLE_S = 0.25  # an idle worker marks (and takes PUBACKs) after this long at most
CLOSE_WAIT_S = 2.0  # at close, how long PUBACKs of rows in flight are waited for


class OutboxPump:
    """Publishes outbox rows through a transport within its window and marks them sent on
    PUBACK (see the module docstring). ``nothing_held``: True when the intake holds no payload
    the store refused (then a successful mark ends the back-off); ``lock``: the gateway's
    ingest lock, under which committed rows join :attr:`fresh` in commit order."""

    def __init__(
        self,
        outbox: Outbox | None,
        counters: dict[str, int],
        sent_by_kind: Counter[str],
        backoff: Backoff,
        nothing_held: Callable[[], bool],
        lock: threading.Lock,
    ):
        self.outbox, self.counters, self.sent_by_kind = outbox, counters, sent_by_kind
        self.backoff, self._nothing_held = backoff, nothing_held
        self.handed_upto = 0  # highest outbox seq handed to paho by this process
        self.backlog = True  # rows from before a restart or an outage wait in SQLite
        self.acked: list[int] = []  # outbox seqs acknowledged, not yet marked sent
        self._last_mark = 0.0
        self.lock = lock
        self.fresh: list[OutboxRow] = []  # committed rows not yet handed over (under lock)

    def pump(self, t: Any) -> None:
        """Hand fresh rows (or the backlog) to transport ``t``, then mark acknowledged rows
        sent. ``StoreError`` when the mark was refused (the seqs are kept for later)."""
        with self.lock:
            fresh, self.fresh = self.fresh, []
        if t is None:
            return
        self.acked.extend(t.take_acked())  # frees window room before publishing
        # upstream losses, for /metrics (see edge_runtime.transport.mqtt)
        if t.broker_dropped is not None:
            self.counters["broker_dropped"] = t.broker_dropped
        if t.connected:
            self._publish_fresh_or_backlog(t, fresh, t.window - t.inflight)
        else:
            self.backlog = True
        now = time.monotonic()
        due = now - self._last_mark >= max(MARK_EVERY_S, self.backoff.s)
        if self.acked and (len(self.acked) >= MARK_BATCH or due):
            self._last_mark = now
            try:
                self.mark_sent()
            except StoreError:
                self.backoff.grow()
                raise  # the seqs stay in acked, marked once the disk takes writes
            if self._nothing_held():
                self.backoff.s = 0.0

    def wait_s(self, t: Any, tick_s: float, idle_s: float) -> float:
        """How long the worker may sleep before the pump needs a turn, unless woken: ``tick_s``
        while rows wait to be handed over or fill half the window on transport ``t`` (their
        PUBACKs come without a wake), ``MARK_IDLE_S`` while fewer are in flight or marks wait,
        else ``idle_s``.

        Why not mark a trickle's row at once: a mark is off every path that waits, and the
        store's next event gives the worker a turn that marks it anyway; a turn of its own
        per sale only cost CPU."""
        if t is None:
            return idle_s
        inflight = t.inflight
        if self.fresh or self.backlog or not t.connected or 2 * inflight >= t.window:
            return tick_s
        if self.acked or inflight:
            return min(idle_s, MARK_IDLE_S)
        return idle_s

    def mark_sent(self) -> None:
        if self.acked:
            self.counters["sent"] += self.outbox.mark_sent(self.acked, self.sent_by_kind)
            self.acked = []

    def _publish_fresh_or_backlog(self, t: Any, fresh: list[OutboxRow], room: int) -> None:
        if self.backlog:
            if room > 0:
                rows = self.outbox.pending(room, after_seq=self.handed_upto)
                self._publish(t, rows)
                self.backlog = len(rows) == room
            return
        rows = [r for r in fresh if r.seq > self.handed_upto]
        if len(rows) > room:
            self.backlog = True  # they are in SQLite; drained as PUBACKs free the window
        else:
            self._publish(t, rows)

    def _publish(self, t: Any, rows: list[OutboxRow]) -> None:
        if rows:
            t.publish(rows)
            self.handed_upto = rows[-1].seq

    def flush_uplink(
        self, uplink: Uplink, interval_s: float, force: bool = False
    ) -> list[OutboxRow]:
        """Commit the uplink's window when the worker's own share of ``interval_s`` has passed
        since the last one (``force``: now; ``edge_runtime.transport.uplink.own_window_interval``);
        returns the rows it wrote (then the hub link has something to forward). A commit of
        events may have carried the window already (``Gateway``)."""
        if not force and uplink.due_in(own_window_interval(interval_s)) > 0:
            return []
        with self.lock:
            rows = uplink.flush()
            self.fresh.extend(rows)
        return rows

    def drain(self, t: Any) -> None:
        """At close: pump, then collect PUBACKs of the rows in flight for a moment (so they are
        not sent again after the restart) and mark them sent."""
        self.pump(t)
        deadline = time.monotonic() + CLOSE_WAIT_S
        while t.connected and t.inflight and time.monotonic() < deadline:
            self.pump(t)
            time.sleep(0.01)
        self.acked.extend(t.take_acked())
        self.mark_sent()
