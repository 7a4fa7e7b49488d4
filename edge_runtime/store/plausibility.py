"""Plausibility bounds for edge events: what a well-formed event may still not claim.

A well-formed event can be absurd: a till whose clock reset to 1970, a sale dated a year ahead
(which would close a year of store days at once and collapse every forecast), an adjustment of
-1,000,000 units. The parser (``edge_runtime.store.events``) refuses those with the field, the bound
and the setting that states it, and the event is dead-lettered like any other invalid one.

Time is judged against two clocks: the wall clock (an event more than ``max_ahead_s`` ahead of
it is refused) and the ledger clock, the latest event time the ledger holds. A replay of old
data is far behind the wall clock, so only the ledger clock can tell its outliers: an event more
than ``max_late_days`` behind it, or more than ``max_jump_days`` ahead of it, is refused, unless
it is within ``max_jump_days`` of the wall clock (a live store back after a long power cut).
An empty ledger has no clock yet: only the absolute bounds apply to its first batch.

>>> p = Plausibility()
>>> p.time_problem(0, now_us=1_767_600_000_000_000, clock_us=0)
'is before 2000-01-01T00:00:00+00:00, the earliest plausible event time ([ingest] earliest_event_time)'
>>> p.qty_problem(-1_000_000)
'|qty| 1000000 is beyond the plausible 100000 units of one event ([ingest] max_qty)'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from edge_runtime.store.stock import iso_utc

DAY_US = 86_400 * 1_000_000
MAX_QTY = 100_000  # default per-event bound; Online Retail II's largest real line is 74,215


def _utc_us(text: str) -> int:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return round(when.timestamp() * 1_000_000)


@dataclass(frozen=True, slots=True)
class Plausibility:
    """The bounds (``[ingest]`` in the gateway configuration; defaults here).

    >>> Plausibility(max_qty=10).qty_problem(11) is not None
    True
    """

    earliest_event_time: str = "2000-01-01T00:00:00+00:00"
    max_ahead_s: float = 3600.0  # ahead of the wall clock: till clock skew
    max_late_days: float = 90.0  # behind the ledger clock
    max_jump_days: float = 31.0  # ahead of the ledger clock (longer than any store closure)
    max_qty: int = MAX_QTY  # |qty| of one stock-changing event
    earliest_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "earliest_us", _utc_us(self.earliest_event_time))

    def window(self, now_us: int, clock_us: int) -> tuple[int, int, int, int]:
        """``(low, high, gap_low, gap_high)``: an event time is plausible when it lies in
        ``[low, high]`` and not strictly inside ``(gap_low, gap_high)`` (hot-path form)."""
        low, high = self.earliest_us, now_us + round(self.max_ahead_s * 1_000_000)
        if not clock_us:
            return low, high, 0, 0
        jump = round(self.max_jump_days * DAY_US)
        low = max(low, clock_us - round(self.max_late_days * DAY_US))
        return low, high, clock_us + jump, now_us - jump

    def time_problem(self, ts_us: int, now_us: int, clock_us: int) -> str | None:
        """Why ``ts_us`` is implausible, as the predicate of "event_time ..." (naming the bound
        and its setting), or None."""
        if ts_us < self.earliest_us:
            return (
                f"is before {self.earliest_event_time}, the earliest plausible "
                "event time ([ingest] earliest_event_time)"
            )
        if ts_us > now_us + self.max_ahead_s * 1_000_000:
            return (
                f"is more than {self.max_ahead_s:g} s in the future of the gateway's clock "
                "([ingest] max_ahead_s)"
            )
        if not clock_us:
            return None
        if ts_us < clock_us - self.max_late_days * DAY_US:
            return (
                f"is more than {self.max_late_days:g} days behind the ledger's "
                f"latest event ({iso_utc(clock_us)}; [ingest] max_late_days)"
            )
        jump = self.max_jump_days * DAY_US
        if clock_us + jump < ts_us < now_us - jump:
            return (
                f"is more than {self.max_jump_days:g} days ahead of the ledger's "
                f"latest event ({iso_utc(clock_us)}) and not near the gateway's clock "
                "([ingest] max_jump_days)"
            )
        return None

    def qty_problem(self, qty: int | float) -> str | None:
        """Why ``qty`` is implausible for a stock-changing event, or None."""
        if -self.max_qty <= qty <= self.max_qty:
            return None
        return (
            f"|qty| {abs(qty)} is beyond the plausible {self.max_qty} units of one event "
            "([ingest] max_qty)"
        )


DEFAULT = Plausibility()
