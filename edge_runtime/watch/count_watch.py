"""Shrink found by counts: cycle counts and negative adjustments judged against the SKU's history.

The ledger records what a cycle count changed as cumulative ``shrink`` / ``gain`` units per SKU.
The gateway hands :meth:`CountWatch.messages` the batch's events, each with its SKU's state right
after it (inside the ledger transaction); for every count the units it found missing (shrink
minus gain since the previous state) go to ``shrink.CycleCountShrink``, which alerts
(``SHRINK_BEYOND_HISTORY``) when they are far beyond the SKU's past discrepancies. A negative
``adjustment`` (units written off) is judged the same way.

>>> from edge_runtime.store.stock import SkuState, StockState
>>> from edge_runtime.store.events import parse_events
>>> w = CountWatch(CycleCountShrink(min_units=3))
>>> w.prime([StockState.of(SkuState("A", on_hand=40), 0, 0)])
>>> evs, _ = parse_events([{"event_id": "c1", "store_id": "S1", "sku": "A", "type": "cycle_count",
...     "qty": 25, "event_time": "2026-01-05T20:00:00+00:00", "source": "count"}], "S1")
>>> after = SkuState("A", on_hand=25, shrink=15)
>>> [(m.anomaly_type, m.reason_codes, m.units) for m in w.messages([(evs[0], after)], "S1", "m1")]
[('shrink', ['SHRINK_BEYOND_HISTORY'], 15.0)]
"""

from __future__ import annotations

from collections.abc import Iterable

from edge_runtime.messages import AnomalyAlert
from edge_runtime.store.events import Event
from edge_runtime.store.stock import SkuState, StockState
from edge_runtime.watch.shrink import CycleCountShrink


class CountWatch:
    """Per-SKU book of cumulative shrink/gain, and the detector the counts are judged by.

    >>> from edge_runtime.store.stock import SkuState, StockState
    >>> from edge_runtime.store.events import parse_events
    >>> w = CountWatch(CycleCountShrink(min_units=3))
    >>> w.prime([StockState.of(SkuState("A", on_hand=40), 0, 0)])
    >>> evs, _ = parse_events([{"event_id": "c1", "store_id": "S1", "sku": "A",
    ...     "type": "cycle_count", "qty": 40, "event_time": "2026-01-05T20:00:00+00:00",
    ...     "source": "count"}], "S1")
    >>> w.messages([(evs[0], SkuState("A", on_hand=40))], "S1", "m1")  # the count agrees: no alert
    []
    """

    def __init__(self, detector: CycleCountShrink | None = None):
        self.detector = detector or CycleCountShrink()
        self._book: dict[str, tuple[float, float]] = {}  # SKU -> (shrink, gain) last seen
        self._learnt_before: dict | None = None  # the detector's history before an open batch

    def rollback(self) -> None:
        """Forget the batch whose transaction rolled back: the detector's history goes back to
        before it and the book is emptied, for :meth:`prime` to refill from what committed
        (otherwise a retried count would look like no news, and its alert would be lost)."""
        if self._learnt_before is not None:
            self.detector.restore(self._learnt_before)
        self._learnt_before = None
        self._book.clear()

    def committed(self) -> None:
        """The batch committed: nothing to roll back to any more."""
        self._learnt_before = None

    def prime(self, states: Iterable[StockState]) -> None:
        """Start from the ledger's totals (after a restart: old counts are not news)."""
        for s in states:
            self._book[s.sku] = (float(s.shrink), float(s.gain))

    def messages(
        self, steps: Iterable[tuple[Event, SkuState]], store_id: str, model_version: str
    ) -> list[AnomalyAlert]:
        """Anomaly alerts for the counts and write-offs among ``steps``: the batch's ledger
        events, each with its SKU's state right after it (``IngestResult.steps``). Each is
        judged on that state, so the evidence is the same however the events were batched."""
        out = []
        for e, s in steps:
            before = self._book.get(s.sku, (0.0, 0.0))
            self._book[s.sku] = (float(s.shrink), float(s.gain))
            if e.type == "cycle_count":
                missing = (s.shrink - before[0]) - (s.gain - before[1])
                expected, counted = float(e.qty) + missing, float(e.qty)
            elif e.type == "adjustment" and e.qty < 0:
                expected, counted = float(s.on_hand) - float(e.qty), float(s.on_hand)
            else:
                continue
            if self._learnt_before is None:  # counts are rare: copy on first one
                self._learnt_before = self.detector.history()
            alert = self.detector.count(s.sku, e.ts_us / 1e6, expected, counted)
            if alert is not None:
                out.append(alert.to_message(store_id, model_version, e.event_id))
        return out
