"""Theft and shrink detection: units leaving without a sale, and cycle-count shrink beyond history.

Two detectors, each a small stateful object fed in event-time order (times are POSIX seconds):

- :class:`RemovalMatcher` (theft): a shelf sensor removal (weight drop converted to units) must be
  followed by a sale of the SKU within ``pick_window_s``; an exit-gate RFID read must be preceded
  by a sale of the SKU within ``gate_window_s``. Units that stay unmatched raise an alert with
  reason ``SHELF_REMOVAL_WITHOUT_SALE`` and/or ``EXIT_GATE_WITHOUT_SALE``. When at the same time
  another SKU was *sold* with no removal behind it and the same quantity, the cashier most likely
  scanned the wrong item: the alert is a ``misscan`` (reason ``PROBABLE_MISSCAN``), not a theft.
  Because that evidence can surface minutes later, a decision waits ``gate_hold_s`` after a
  gate read and ``pick_hold_s`` after the pick window closes (both 10 min by default; 0 decides
  at once).
  A put-back (positive shelf delta) cancels the pending removal it undoes.
- :class:`CycleCountShrink`: a cycle count's shrink (expected minus counted units) is compared with
  the SKU's past discrepancies (mean and standard deviation, shrunk towards a store-wide prior
  while the SKU has few counts); a z-score above ``z_threshold`` raises ``SHRINK_BEYOND_HISTORY``.

Every alert is a :class:`ShrinkAlert` with reason codes and the evidence behind them.

>>> m = RemovalMatcher(pick_window_s=600, pick_hold_s=0)
>>> m.shelf("A", 0.0, 2); m.sale("A", 120.0, 2)          # picked, then paid: fine
>>> m.shelf("B", 200.0, 1); m.gate("B", 260.0, 1)  # out of the door unpaid: held 10 min
[]
>>> m.advance(860.0)[0].reason_codes
('EXIT_GATE_WITHOUT_SALE', 'SHELF_REMOVAL_WITHOUT_SALE')
>>> m.shelf("C", 300.0, 1); m.advance(1000.0)[0].kind
'theft'
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edge_runtime.messages import ReasonCode


@dataclass(frozen=True)
class ShrinkAlert:
    """One anomaly: ``kind`` is theft, misscan, shrink or phantom; times are POSIX seconds.

    >>> m = RemovalMatcher(pick_window_s=600, pick_hold_s=0)
    >>> m.shelf("C", 300.0, 1)  # one unit taken from the shelf, never paid for
    >>> a = m.advance(1000.0)[0]
    >>> a.kind, a.sku, a.event_time, a.reason_codes
    ('theft', 'C', 900.0, ('SHELF_REMOVAL_WITHOUT_SALE',))
    """

    kind: str
    sku: str
    event_time: float  # when the detector concluded (what detection delay is measured to)
    reason_codes: tuple[str, ...]
    evidence: dict[str, Any] = field(default_factory=dict)
    score: float = 1.0

    def to_message(
        self,
        store_id: str,
        model_version: str,
        cause_event_id: str | None = None,
        occasion: str | None = None,
    ):
        """The outgoing ``AnomalyAlert`` (the one message schema of ``edge_runtime.messages``),
        built with its decision id: the epoch its cause, else ``occasion`` (``close:<day>`` for
        a phantom found at a close), else the time the detector concluded.

        A mis-scan is published as ``anomaly_type="other"`` with reason ``PROBABLE_MISSCAN``;
        list-valued evidence is summarised (count and first value) to fit the scalar schema.

        >>> a = ShrinkAlert("theft", "A", 0.0, ("EXIT_GATE_WITHOUT_SALE",), {"units": 2})
        >>> m = a.to_message("S1", "rules-1")
        >>> m.anomaly_type, m.units, m.reason_codes, m.event_time.isoformat()
        ('theft', 2.0, ['EXIT_GATE_WITHOUT_SALE'], '1970-01-01T00:00:00+00:00')
        """
        from edge_runtime.messages import AnomalyAlert, decision_message_id

        evidence: dict[str, float | int | str | bool | None] = {}
        for key, value in self.evidence.items():
            if isinstance(value, list | tuple):
                evidence[f"{key}_count"] = len(value)
                evidence[f"{key}_first"] = value[0] if value else None
            else:
                evidence[key] = value
        kind = self.kind if self.kind in ("theft", "shrink", "phantom") else "other"
        units = self.evidence.get("units", self.evidence.get("shrink_units"))
        at = datetime.fromtimestamp(self.event_time, UTC)
        return AnomalyAlert(
            message_id=decision_message_id(
                store_id, f"anomaly/{kind}", self.sku, cause_event_id, occasion, at
            ),
            store_id=store_id,
            sku=self.sku,
            event_time=at,
            model_version=model_version,
            cause_event_id=cause_event_id,
            anomaly_type=kind,
            score=float(self.score),
            units=None if units is None else float(units),
            reason_codes=list(self.reason_codes),
            evidence=evidence,
        )


@dataclass
class _Pending:
    time: float
    qty: float
    source: str


class RemovalMatcher:
    """Match shelf removals and exit-gate reads with sales; see the module docstring for rules.

    >>> m = RemovalMatcher(pick_window_s=600, gate_window_s=900, pick_hold_s=0)
    >>> m.shelf("A", 0.0, 1); m.sale("B", 30.0, 1)  # A picked, B rung up: a mis-scan
    >>> m.advance(700.0)[0].kind
    'misscan'
    """

    def __init__(
        self,
        pick_window_s: float = 1800.0,
        gate_window_s: float = 1800.0,
        put_back_window_s: float = 900.0,
        gate_hold_s: float = 600.0,
        pick_hold_s: float = 600.0,
    ):
        self.pick_window_s = pick_window_s
        self.gate_hold_s = gate_hold_s
        self.pick_hold_s = pick_hold_s
        self.gate_window_s = gate_window_s
        self.put_back_window_s = put_back_window_s
        self._picks: dict[str, deque[_Pending]] = {}  # removals waiting for a sale
        self._pick_order: deque[tuple[str, _Pending]] = deque()  # all removals, oldest first
        self._paid: dict[str, deque[_Pending]] = {}  # sold units allowed out of the door
        # Every sale in time order: expiry visits only SKUs with old permissions, not all SKUs.
        self._paid_order: deque[tuple[float, str]] = deque()
        self._unpicked_sales: deque[tuple[str, _Pending]] = deque()  # sales with no removal
        self._held: deque[tuple[str, float, float, tuple, dict]] = deque()  # gate alerts on hold
        self._now = -math.inf

    def fresh(self) -> RemovalMatcher:
        """A matcher with the same windows and nothing pending (what a restart starts with)."""
        return RemovalMatcher(
            self.pick_window_s,
            self.gate_window_s,
            self.put_back_window_s,
            self.gate_hold_s,
            self.pick_hold_s,
        )

    # -- inputs -------------------------------------------------------------------------------
    def shelf(self, sku: str, t: float, units_removed: float) -> None:
        """A shelf sensor change: ``units_removed > 0`` a pick, ``< 0`` a put-back."""
        self._now = max(self._now, t)
        if units_removed > 0:
            pick = _Pending(t, units_removed, "shelf")
            self._picks.setdefault(sku, deque()).append(pick)
            self._pick_order.append((sku, pick))
        elif units_removed < 0:
            self._put_back(sku, t, -units_removed)

    def _put_back(self, sku: str, t: float, units: float) -> None:
        # A put-back returns exactly what one recent pick took; any other rise is a restock.
        picks = self._picks.get(sku)
        if not picks:
            return
        for i in range(len(picks) - 1, -1, -1):
            if t - picks[i].time > self.put_back_window_s:
                return
            if picks[i].qty == units:
                picks[i].qty = 0.0
                del picks[i]
                return

    def sale(self, sku: str, t: float, qty: float) -> None:
        """A sale: consumes earlier removals of the SKU and lets ``qty`` units leave."""
        self._now = max(self._now, t)
        left = _consume(self._picks.get(sku), qty, t - self.pick_window_s)
        if left > 0:
            self._unpicked_sales.append((sku, _Pending(t, left, "sale")))
        self._paid.setdefault(sku, deque()).append(_Pending(t, qty, "sale"))
        self._paid_order.append((t, sku))

    def void(self, sku: str, t: float, qty: float) -> None:
        """A void or return takes back the permission for ``qty`` units to leave."""
        _consume(self._paid.get(sku), qty, -math.inf)

    def gate(self, sku: str, t: float, qty: float = 1.0) -> list[ShrinkAlert]:
        """An exit-gate RFID read not covered by a sale raises an alert after ``gate_hold_s``.

        The hold lets a mis-scan show itself (the wrongly rung-up SKU's sale with no removal
        behind it may surface only when another customer pays for that SKU); with
        ``gate_hold_s=0`` the alert is returned at once.
        """
        self._now = max(self._now, t)
        left = _consume(self._paid.get(sku), qty, t - self.gate_window_s)
        if left <= 0:
            return []
        # The unpaid units were picked from the shelf: settle those picks now, not again later.
        picks = self._picks.get(sku)
        pick_times = [p.time for p in picks] if picks else []
        _consume(picks, left, t - self.pick_window_s)
        reasons = [ReasonCode.EXIT_GATE_WITHOUT_SALE]
        if pick_times:
            reasons.append(ReasonCode.SHELF_REMOVAL_WITHOUT_SALE)
        evidence = {"gate_time": t, "units": left, "shelf_removal_times": pick_times[:5]}
        self._held.append((sku, t, left, tuple(reasons), evidence))
        return self._release_held(t)

    def _release_held(self, now: float) -> list[ShrinkAlert]:
        alerts = []
        held = self._held
        while held and held[0][1] + self.gate_hold_s <= now:
            sku, t, units, reasons, evidence = held.popleft()
            # Reads of the same SKU during the hold are one incident (one mis-scanned line
            # leaves with several shoppers' paid units in between): judge them together.
            done = t + self.gate_hold_s
            for other in [h for h in held if h[0] == sku and h[1] <= done]:
                held.remove(other)
                units += other[2]
                reasons = tuple(dict.fromkeys(reasons + other[3]))
            evidence = {**evidence, "units": units}
            alerts.append(
                self._classify(sku, done, units, t - self.gate_window_s, done, reasons, evidence)
            )
        return alerts

    # -- time ---------------------------------------------------------------------------------
    def advance(self, now: float) -> list[ShrinkAlert]:
        """Close removals older than the pick window with no sale; returns their alerts."""
        self._now = max(self._now, now)
        cutoff = self._now - self.pick_window_s
        alerts = self._release_held(self._now)
        order = self._pick_order
        while order and order[0][1].time < cutoff - self.pick_hold_s:
            sku, p = order.popleft()
            if p.qty <= 0:
                continue  # settled by a sale, a put-back or a gate alert
            picks = self._picks.get(sku)
            if picks and picks[0] is p:
                picks.popleft()
            evidence = {"removal_time": p.time, "units": p.qty, "window_s": self.pick_window_s}
            done = p.time + self.pick_window_s + self.pick_hold_s
            reasons = (ReasonCode.SHELF_REMOVAL_WITHOUT_SALE,)
            alert = self._classify(sku, done, p.qty, p.time, done, reasons, evidence)
            p.qty = 0.0
            alerts.append(alert)
        self._expire(cutoff)
        return alerts

    def _expire(self, cutoff: float) -> None:
        horizon = (
            min(cutoff - self.pick_hold_s, self._now - self.gate_window_s - self.gate_hold_s)
            - self.pick_window_s
        )
        while self._unpicked_sales and self._unpicked_sales[0][1].time < horizon:
            self._unpicked_sales.popleft()
        too_old = self._now - self.gate_window_s
        order = self._paid_order
        while order and order[0][0] < too_old:
            paid = self._paid.get(order.popleft()[1])
            while paid and paid[0].time < too_old:
                paid.popleft()

    def _classify(
        self,
        sku: str,
        t: float,
        units: float,
        since: float,
        until: float,
        reasons: tuple,
        evidence: dict,
    ) -> ShrinkAlert:
        """Theft, unless another SKU was sold without removals in [since, until] to cover it.

        A mis-scanned line can be split over several unpicked sales of the wrongly rung-up SKU
        (it consumed another shopper's pick of that SKU), and a gate may miss some tags, so the
        test is: that SKU's unpicked units in the window add up to ``units`` (up to 25 % or one
        unit more for a gate read).
        """
        totals: dict[str, float] = {}
        for other, sale in self._unpicked_sales:
            if other != sku and since <= sale.time <= until:
                totals[other] = totals.get(other, 0.0) + sale.qty
        # Shelves weigh exactly; gates may miss a tag or two (slack only for gate alerts).
        slack = (
            max(1.0, math.ceil(0.25 * units))
            if ReasonCode.EXIT_GATE_WITHOUT_SALE in reasons
            else 0.0
        )
        covering = [
            (total, other) for other, total in totals.items() if units <= total <= units + slack
        ]
        if not covering:
            return ShrinkAlert("theft", sku, t, reasons, evidence, 1.0 if len(reasons) > 1 else 0.8)
        total, other = min(covering)
        self._take_unpicked(other, total, since, until)
        # Units the gate did not read were taken too: settle those removals as well.
        _consume(self._picks.get(sku), total - units, since)
        evidence = {**evidence, "sold_instead": other, "sold_units": total}
        return ShrinkAlert(
            "misscan", sku, t, (ReasonCode.PROBABLE_MISSCAN, *reasons), evidence, 0.5
        )

    def _take_unpicked(self, sku: str, units: float, since: float, until: float) -> None:
        kept: deque[tuple[str, _Pending]] = deque()
        for other, sale in self._unpicked_sales:
            if units > 0 and other == sku and since <= sale.time <= until:
                take = min(units, sale.qty)
                sale.qty -= take
                units -= take
            if sale.qty > 0:
                kept.append((other, sale))
        self._unpicked_sales = kept


def _consume(queue: deque[_Pending] | None, qty: float, not_before: float) -> float:
    """Take ``qty`` units from the oldest entries at or after ``not_before``; returns what is left."""
    if not queue:
        return qty
    while queue and queue[0].time < not_before:
        queue.popleft()  # too old to match anything now
    while queue and qty > 0:
        take = min(qty, queue[0].qty)
        queue[0].qty -= take
        qty -= take
        if queue[0].qty <= 0:
            queue.popleft()
    return qty


class CycleCountShrink:
    """Cycle-count shrink compared with the SKU's own history of discrepancies.

    The SKU's mean and variance of past shrink are blended with a store-wide prior
    (``prior_mean``, ``prior_sd``) weighted as ``prior_weight`` pseudo-counts, so a first count
    is judged against the store norm and a SKU with a long, noisy history against its own.

    >>> d = CycleCountShrink(z_threshold=3.0, min_units=3)
    >>> [d.count("A", float(i), expected=50, counted=50 - s) for i, s in enumerate([1, 0, 2, 1])]
    [None, None, None, None]
    >>> d.count("A", 9.0, expected=50, counted=30).reason_codes
    ('SHRINK_BEYOND_HISTORY',)
    """

    def __init__(
        self,
        z_threshold: float = 3.0,
        min_units: float = 3.0,
        prior_mean: float = 0.0,
        prior_sd: float = 1.5,
        prior_weight: float = 3.0,
    ):
        self.z_threshold = z_threshold
        self.min_units = min_units
        self.prior = (prior_weight, prior_mean, prior_sd**2)
        self._stats: dict[str, tuple[float, float, float]] = {}  # n, mean, M2 (Welford)

    def history(self) -> dict[str, tuple[float, float, float]]:
        """A copy of what the detector has learnt (per SKU: n, mean, M2), for :meth:`restore`."""
        return dict(self._stats)

    def restore(self, history: dict[str, tuple[float, float, float]]) -> None:
        """Go back to a :meth:`history` copy (the counts learnt since are forgotten)."""
        self._stats = dict(history)

    def baseline(self, sku: str) -> tuple[float, float, int]:
        """The (mean, sd, n_counts) a new count of ``sku`` is judged against."""
        n, mean, m2 = self._stats.get(sku, (0.0, 0.0, 0.0))
        w, pm, pv = self.prior
        total = n + w
        blended_mean = (n * mean + w * pm) / total
        blended_var = (m2 + w * pv + n * w / total * (mean - pm) ** 2) / total
        return blended_mean, math.sqrt(blended_var), int(n)

    def count(self, sku: str, t: float, expected: float, counted: float) -> ShrinkAlert | None:
        """A cycle count: alert when its shrink is far beyond history; then learn from it."""
        shrink = expected - counted
        mean, sd, n = self.baseline(sku)
        z = (shrink - mean) / max(sd, 1e-9)
        self._learn(sku, shrink)
        if z < self.z_threshold or shrink < self.min_units:
            return None
        evidence = {
            "expected": expected,
            "counted": counted,
            "shrink_units": shrink,
            "history_mean": round(mean, 4),
            "history_sd": round(sd, 4),
            "history_counts": n,
            "z": round(z, 3),
        }
        return ShrinkAlert(
            "shrink", sku, t, (ReasonCode.SHRINK_BEYOND_HISTORY,), evidence, float(z)
        )

    def _learn(self, sku: str, x: float) -> None:
        n, mean, m2 = self._stats.get(sku, (0.0, 0.0, 0.0))
        n += 1
        delta = x - mean
        mean += delta / n
        self._stats[sku] = (n, mean, m2 + delta * (x - mean))
