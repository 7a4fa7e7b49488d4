"""How many same-day parcels a city is expected to get today, learnt from earlier days.

A store van's run pays off only when it fills. Routing one order at a time, the router cannot
know the day's later orders, but the hub knows how many same-day parcels each city took on
earlier days. ``RunOutlook`` keeps, per delivery zone (the customer's city), those daily
counts over the last ``window`` days (every origin store together), and the day's
``hub.courier_runs.CourierRuns`` reads it to price a van's stop at the run it can expect: a
city that takes 35 parcels a day shares a run over 35, not over a full van, and a parcel to a
city whose vans rarely fill pays the courier trip it will most likely take.

Only earlier days count (the day being routed is added when it closes), so the expectation
never looks at a later order of the same day.

>>> from hub.fulfilment_cost import CostModel
>>> outlook = RunOutlook()
>>> outlook.expected("Springfield") is None  # nothing learnt yet
True
>>> for n in (10, 30):  # two days' parcels to one city
...     day = CourierRuns(CostModel())
...     for _ in range(n):
...         _ = day.join("S1", "Springfield", 5.0)
...     outlook.close_day(day)
>>> outlook.expected("Springfield"), outlook.expected("Shelbyville")
(20.0, 0.0)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hub.courier_runs import CourierRuns


@dataclass
class RunOutlook:
    """Same-day parcels per zone on each of the last ``window`` days (module docstring).

    >>> from hub.fulfilment_cost import CostModel
    >>> outlook = RunOutlook(window=2)
    >>> for n in (10, 20, 40):  # three days: only the last two are kept
    ...     day = CourierRuns(CostModel())
    ...     for _ in range(n):
    ...         _ = day.join("S1", "Springfield", 5.0)
    ...     outlook.close_day(day)
    >>> outlook.expected("Springfield")
    30.0
    """

    window: int = 7  # a week: the order stream's weekly cycle weighs every weekday once
    days: deque = field(default_factory=deque)  # per day: {zone: parcels}

    def close_day(self, runs: CourierRuns) -> None:
        """Learn a finished day's same-day parcels per zone (every origin together)."""
        counts: dict[str, int] = {}
        for (_, zone), z in runs.zones.items():
            counts[zone] = counts.get(zone, 0) + z.parcels
        self.days.append(counts)
        while len(self.days) > self.window:
            self.days.popleft()

    def expected(self, zone: str) -> float | None:
        """Mean same-day parcels a day to ``zone`` over the days learnt (None: no day yet)."""
        if not self.days:
            return None
        return sum(day.get(zone, 0) for day in self.days) / len(self.days)
