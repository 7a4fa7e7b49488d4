"""A day's local courier runs: what one more same-day parcel from a store to a city costs.

A store within ``local_km`` of the customer delivers the same day. Under the per-parcel tariff
each parcel is a courier trip of its own (``courier_base + courier_per_km * km``). Real
last-mile delivery is multi-drop: a store that already sends a van to a city today carries one
more parcel there for the cost of a stop. ``CourierRuns`` keeps, per origin store x delivery
zone (the customer's city) for one day, the parcels already planned, and prices the next one at
its marginal cost:

    cost(n parcels) = min over v vans of  v * run + drop * min(n, v * run_drops)
                                          + (parcels beyond the vans) * their mean courier price

``run = run_base + run_per_km * stem_km`` (loading, and the drive out to the zone and back;
``stem_km`` is the first parcel's distance), ``drop`` per stop, at most ``run_drops`` stops a
van. With ``v = 0`` every parcel goes by courier as under the per-parcel tariff, so no set of
parcels costs more than it did there, and a lone parcel costs the same. The marginal costs of a
day's parcels, in any order, add up to the day's cost (each is ``cost(n + 1) - cost(n)``).

>>> runs = CourierRuns(CostModel())
>>> round(runs.marginal("S1", "Springfield", 5.0), 2)  # alone: a courier trip
5.75
>>> paid = [runs.join("S1", "Springfield", 5.0) for _ in range(30)]
>>> round(sum(paid), 2) == round(runs.total(), 2), runs.vans()
(True, 1)
>>> round(runs.marginal("S1", "Springfield", 5.0), 2)  # a van goes there already: a stop
3.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hub.fulfilment_cost import CostModel

if TYPE_CHECKING:
    from hub.run_outlook import RunOutlook

TARIFFS = ("runs", "per-parcel")


@dataclass
class _Zone:
    parcels: int = 0
    courier_sum: float = 0.0  # what the parcels would cost by courier, one trip each
    stem_km: float = 0.0


@dataclass
class CourierRuns:
    """The local courier parcels planned today, per origin x zone (module docstring).

    >>> runs = CourierRuns(CostModel())
    >>> paid = [runs.join("S1", "Springfield", 5.0) for _ in range(30)]  # S1's van goes there
    >>> [round(runs.marginal(s, "Springfield", 5.0), 2) for s in ("S1", "S2")]  # a stop, a trip
    [3.0, 5.75]
    """

    cost: CostModel
    zones: dict[tuple[str, str], _Zone] = field(default_factory=dict)
    # Earlier days' same-day parcels per zone (``hub.run_outlook``): what a van can expect to
    # carry today. None: nothing learnt (the router then assumes its ``run_fill``).
    outlook: RunOutlook | None = None

    def day_cost(self, z: _Zone) -> float:
        """The cheapest mix of vans and couriers for one origin x zone's parcels."""
        return self._cheapest(z)[1]

    def marginal(self, origin: str, zone: str, km: float) -> float:
        """What one more parcel ``km`` from ``origin`` to ``zone`` adds to today's cost."""
        z = self.zones.get((origin, zone))
        g = self.cost.courier(km)
        if z is None:
            return g
        after = _Zone(z.parcels + 1, z.courier_sum + g, z.stem_km)
        return self.day_cost(after) - self.day_cost(z)

    def run_cost(self, origin: str, zone: str, km: float) -> float:
        """One van's run from ``origin`` to ``zone`` (its stem: the zone's first parcel's km)."""
        z = self.zones.get((origin, zone))
        return self.cost.van_run(km if z is None else z.stem_km)

    def expected_fill(self, origin: str, zone: str) -> float | None:
        """Parcels ``origin``'s van to ``zone`` can expect today, this one included: the zone's
        expected day (``outlook``) less what other stores' runs already carry there, and never
        fewer than it carries already plus this one. The first store to run to a city expects
        its whole day, a second one only what is left, so the day's parcels gather in one van
        rather than half-fill two. None without an outlook or before its first day."""
        day = None if self.outlook is None else self.outlook.expected(zone)
        if day is None:
            return None
        mine = self.zones.get((origin, zone))
        mine_n = 0 if mine is None else mine.parcels
        others = sum(z.parcels for (o, q), z in self.zones.items() if q == zone and o != origin)
        return max(mine_n + 1.0, day - others)

    def join(self, origin: str, zone: str, km: float) -> float:
        """Plan one more parcel; returns its marginal cost."""
        price = self.marginal(origin, zone, km)
        z = self.zones.setdefault((origin, zone), _Zone(stem_km=km))
        z.parcels += 1
        z.courier_sum += self.cost.courier(km)
        return price

    def total(self) -> float:
        """Today's cost of every planned parcel (equals the sum of their marginal costs)."""
        return sum(self.day_cost(z) for z in self.zones.values())

    def vans(self) -> int:
        """Vans the cheapest mix sends today (parcels beyond them go by courier)."""
        return sum(self._cheapest(z)[0] for z in self.zones.values())

    def _cheapest(self, z: _Zone) -> tuple[int, float]:
        """The vans of the cheapest mix for one origin x zone's parcels, and its cost."""
        if not z.parcels:
            return 0, 0.0
        costs = [self._mix(z, v) for v in range(math.ceil(z.parcels / self.cost.run_drops) + 1)]
        vans = min(range(len(costs)), key=costs.__getitem__)
        return vans, costs[vans]

    def _mix(self, z: _Zone, vans: int) -> float:
        c = self.cost
        carried = min(z.parcels, vans * c.run_drops)
        return (vans * c.van_run(z.stem_km) + c.run_drop * carried
                + (z.parcels - carried) * z.courier_sum / z.parcels)  # fmt: skip
