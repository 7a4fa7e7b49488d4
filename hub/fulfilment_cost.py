"""The fulfilment cost model's parameters and its shipping rule (distance, parcels, transit).

One set of numbers prices a plan for the router and prices what happened in the network twin, so
the router optimises exactly what the benchmark charges. Money is in dollars per order; the
defaults are stated assumptions of a US general-merchandise retailer (docs/routing.md), not
measured rates: change them to a carrier's contract and the router follows.

Shipping from a location ``km`` away: a local courier (delivered the same day) when a store is
within ``local_km``, else a parcel carrier priced by zone (``parcel_base + parcel_per_km * km``)
whose transit grows with distance; every shipment also pays ``per_unit`` per unit.

>>> cost = CostModel()
>>> ship = cost.shipping(np.array([10.0, 400.0]), np.array([False, True]), np.array([2, 2]))
>>> ship.cost.round(2).tolist(), ship.days.tolist()
([7.5, 9.1], [0, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EARTH_KM = 6371.0


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km (broadcasts over numpy arrays)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi, dlmb = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass(frozen=True)
class Shipping:
    """Cost (dollars) and transit (days, 0 = same day) of shipments, one per location.

    >>> km, is_dc = np.array([10.0, 10.0]), np.array([False, True])
    >>> ship = CostModel().shipping(km, is_dc, np.array([2, 2]))
    >>> ship.days.tolist()  # 10 km: a store's courier the same day, a DC's parcel the next
    [0, 1]
    """

    cost: np.ndarray
    days: np.ndarray


@dataclass(frozen=True)
class CostModel:
    """Every parameter of the fulfilment cost, in dollars (see docs/routing.md for each).

    >>> CostModel().split_penalty
    3.0
    """

    local_km: float = 40.0  # a store this close delivers by local courier, the same day
    courier_base: float = 5.0
    courier_per_km: float = 0.15
    parcel_base: float = 6.5
    parcel_per_km: float = 0.004
    per_unit: float = 0.5  # weight and packaging per unit in a shipment
    # A store's own same-day van to a city (``hub.courier_runs``; the "runs" tariff): per run,
    # loading and the drive out and back; per stop; stops per van.
    run_base: float = 20.0
    run_per_km: float = 2.3  # per km from the store to the zone (out and back)
    run_drop: float = 3.0
    run_drops: int = 40
    parcel_day_km: tuple[float, ...] = (300.0, 1000.0)  # beyond each bound, one more day
    pick_store: float = 1.5  # a store associate picks a line off the shop floor
    pick_dc: float = 0.5
    split_penalty: float = 3.0  # per shipment beyond the first: packaging, customer contacts
    late_per_day: float = 6.0  # per day delivered after the promised date
    cancel_line: float = 25.0  # a promised line not on the shelf: refund, contact, goodwill
    store_margin: float = 0.3  # share of the unit value a store loses on a lost walk-in sale
    markdown_depth: float = 0.4  # share of the unit value lost on a marked-down unit
    markdown_horizon_days: float = 28.0  # stock above this many days of sales will be marked down
    conflict_decay: float = 0.7  # confidence multiplier per recent conflict on the SKU
    # The ledger's confidence is a trust score that decays fast (halved in ~10 days without a
    # count), not a probability: P(no phantom unit) = confidence ** confidence_power. Calibrated
    # so that the expected cancellations of nearest-store's plans match the twin's outcomes on
    # validation seeds (docs/routing.md), not on the reported runs.
    confidence_power: float = 0.15

    def shipping(
        self, km: np.ndarray, is_dc: np.ndarray, units: np.ndarray, courier=None
    ) -> Shipping:
        """Cost and transit days of one shipment per location (arrays of equal shape).
        ``courier``, when given, is each location's price of a local courier parcel in place of
        its own trip (``hub.courier_runs``: joining a van already going there costs a stop)."""
        km = np.asarray(km, dtype=float)
        local = self.is_local(km, is_dc)
        if courier is None:
            courier = self.courier(km)
        parcel = self.parcel_base + self.parcel_per_km * km
        cost = np.where(local, courier, parcel) + self.per_unit * np.asarray(units, dtype=float)
        days = 1 + np.searchsorted(np.asarray(self.parcel_day_km), km, side="left")
        return Shipping(cost, np.where(local, 0, days))

    def courier(self, km):
        """A local parcel's own courier trip over ``km`` (before its per-unit cost)."""
        return self.courier_base + self.courier_per_km * km

    def van_run(self, km):
        """One store van's run to a zone ``km`` away, before its stops."""
        return self.run_base + self.run_per_km * km

    def is_local(self, km, is_dc) -> np.ndarray:
        """Whether a shipment goes by local courier, the same day (a store within ``local_km``)."""
        return (np.asarray(km, dtype=float) <= self.local_km) & ~np.asarray(is_dc, dtype=bool)

    def pick(self, is_dc: np.ndarray) -> np.ndarray:
        """Cost of picking one line at each location."""
        return np.where(np.asarray(is_dc, dtype=bool), self.pick_dc, self.pick_store)
