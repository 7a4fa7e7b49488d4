"""ShelfWatch: feeds the store's sales and sensor events to the theft and phantom detectors.

The gateway hands every accepted event to :meth:`ShelfWatch.observe` in event-time order (sensor
readings included; they never touch the ledger) and calls :meth:`ShelfWatch.advance` as time
passes. What it does with each event type:

- ``sale`` / ``void`` / ``return``: sales are what removals and exit reads are matched against;
  a sale also tells the phantom detector the SKU is really on the shelf;
- ``shelf_weight`` (grams, absolute): converted to a unit change with the SKU's unit weight from
  the item master (readings of SKUs without one are counted and ignored);
- ``shelf_units`` (absolute units from the shelf itself): the change from the previous reading;
- ``rfid_exit``: an exit-gate read, matched against recent sales at once;
- ``cycle_count``: re-arms the phantom detector (the stock was just confirmed).

:meth:`ShelfWatch.messages` is the gateway's one call per ingested batch (alerts as
``AnomalyAlert``); the phantom check runs on its own clock (``watch.phantom.check``) with the
ledger's on-hand and the day's forecast.

>>> w = ShelfWatch(unit_weight_g={"A": 100.0}, matcher=RemovalMatcher(gate_hold_s=0))
>>> w.observe("shelf_weight", "A", 0.0, 1000.0)      # first reading: the baseline
[]
>>> w.observe("shelf_weight", "A", 60.0, 801.0)      # two units taken
[]
>>> w.observe("rfid_exit", "A", 200.0, 2)[0].reason_codes
('EXIT_GATE_WITHOUT_SALE', 'SHELF_REMOVAL_WITHOUT_SALE')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_runtime.watch.phantom import PhantomDetector
from edge_runtime.watch.shrink import RemovalMatcher, ShrinkAlert

if TYPE_CHECKING:
    from edge_runtime.watch.anomaly_scores import AnomalyScores


class ShelfWatch:
    """Event dispatcher over :class:`RemovalMatcher` and :class:`PhantomDetector`.

    >>> w = ShelfWatch(matcher=RemovalMatcher(gate_hold_s=0))
    >>> w.observe("sale", "A", 0.0, 1), w.observe("rfid_exit", "A", 30.0, 1)  # paid, then out
    ([], [])
    >>> [a.kind for a in w.observe("rfid_exit", "B", 40.0, 1)]  # B left, A was rung up instead
    ['misscan']
    """

    def __init__(
        self,
        unit_weight_g: dict[str, float] | None = None,
        matcher: RemovalMatcher | None = None,
        phantom: PhantomDetector | None = None,
    ):
        self.unit_weight_g = unit_weight_g or {}
        self.matcher = matcher or RemovalMatcher()
        self.phantom = phantom or PhantomDetector()
        self._shelf_level: dict[str, float] = {}  # last reading, in units
        self.unknown_weight_readings = 0
        # The bundle's anomaly model's scores of the last closed day: theft alerts weighed by
        # them (``edge_runtime.watch.anomaly_scores``); None without a model.
        self.anomaly: AnomalyScores | None = None

    def fresh(self) -> ShelfWatch:
        """The same watch (unit weights, windows, alpha) with no readings or sales remembered:
        what a restart starts with, and what the gateway falls back to when a transaction
        rolls back after this watch saw its events."""
        return ShelfWatch(dict(self.unit_weight_g), self.matcher.fresh(), self.phantom.fresh())

    def observe(self, kind: str, sku: str, t: float, qty: float) -> list[ShrinkAlert]:
        """One event (type, SKU, POSIX seconds, qty); returns alerts it settles at once."""
        if kind == "sale":
            self.matcher.sale(sku, t, qty)
            self.phantom.sale(sku, t, qty)
        elif kind in ("void", "return"):
            self.matcher.void(sku, t, qty)
        elif kind == "shelf_weight":
            unit = self.unit_weight_g.get(sku)
            if not unit:
                self.unknown_weight_readings += 1
            else:
                self._shelf(sku, t, round(qty / unit))
        elif kind == "shelf_units":
            self._shelf(sku, t, qty)
        elif kind == "rfid_exit":
            return self._weighed(self.matcher.gate(sku, t, qty))
        elif kind == "cycle_count":
            self.phantom.counted(sku, t)
        return []

    def observe_event(self, event) -> list[ShrinkAlert]:
        """An ``edge_runtime.store.events.Event`` (anything with type, sku, ts_us, qty)."""
        return self.observe(event.type, event.sku, event.ts_us / 1e6, event.qty)

    def messages(self, events, store_id: str, model_version: str) -> list:
        """One call for the gateway: observe a batch of accepted events (``events.Event``), settle
        what their time closes, and return ``AnomalyAlert`` messages for the outbox.

        >>> from edge_runtime.store.events import parse_events
        >>> evs, _ = parse_events([{"event_id": "g1", "store_id": "S1", "sku": "A",
        ...     "type": "rfid_exit", "qty": 1, "event_time": "2026-01-05T10:00:00+00:00",
        ...     "source": "rfid"}], "S1")
        >>> w = ShelfWatch(matcher=RemovalMatcher(gate_hold_s=0))
        >>> [(m.anomaly_type, m.reason_codes) for m in w.messages(evs, "S1", "v1")]
        [('theft', ['EXIT_GATE_WITHOUT_SALE'])]
        """
        alerts = []
        latest = None
        for event in events:
            alerts += self.observe_event(event)
            latest = event.ts_us if latest is None else max(latest, event.ts_us)
        if latest is not None:
            alerts += self.advance(latest / 1e6)
        return [a.to_message(store_id, model_version) for a in alerts]

    def _shelf(self, sku: str, t: float, level: float) -> None:
        previous = self._shelf_level.get(sku)
        self._shelf_level[sku] = level
        if previous is not None and level != previous:
            self.matcher.shelf(sku, t, previous - level)

    def advance(self, now: float) -> list[ShrinkAlert]:
        """Settle removals whose sale window closed by ``now``."""
        return self._weighed(self.matcher.advance(now))

    def _weighed(self, alerts: list[ShrinkAlert]) -> list[ShrinkAlert]:
        anomaly = self.anomaly
        return alerts if anomaly is None or not alerts else [anomaly.weigh(a) for a in alerts]
