"""An online channel drawn from real store demand, for the network twin.

Each real unit a store sold on a day is an online unit with probability ``share`` (binomial
thinning): the rest stays the store's walk-in demand, so the network's total demand is the real
one. A state's online units of a day become order lines (one per store x SKU with online units,
its quantity those units), shuffled and cut into baskets whose line counts follow ``basket``;
each order goes to a city of the state drawn by population, a few km from its centre, with a
promised date drawn from ``promise`` (0 = today).

>>> import numpy as np
>>> units = np.full((2, 3, 4), 5.0)  # 2 stores x 3 SKUs x 4 days
>>> ch = OnlineChannel(share=0.2)
>>> walk_in, orders = ch.draw(units, ["CA", "CA"], np.random.default_rng(0))
>>> float(walk_in.sum() + sum(o.qty.sum() for o in orders)) == float(units.sum())
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twin.network_places import CITIES

KM_PER_DEGREE = 111.0


@dataclass(frozen=True)
class OnlineOrder:
    """One drawn order: its day, state, SKU indexes and quantities, delivery point, promise.

    >>> units = np.full((1, 2, 2), 5.0)  # 1 store x 2 SKUs x 2 days
    >>> _, orders = OnlineChannel(share=0.5).draw(units, ["WI"], np.random.default_rng(0))
    >>> o = orders[0]
    >>> o.order_id, o.day, o.items.tolist(), o.qty.tolist(), o.city, o.promised_days
    ('web-WI-0-0', 0, [0, 1], [3.0, 1.0], 'Madison', 0)
    """

    order_id: str
    day: int
    state: str
    items: np.ndarray
    qty: np.ndarray
    lat: float
    lon: float
    city: str
    promised_days: int


@dataclass(frozen=True)
class OnlineChannel:
    """The stated shape of the online channel (see the module docstring).

    >>> units = np.full((1, 2, 2), 5.0)
    >>> walk_in, orders = OnlineChannel(share=1.0).draw(units, ["WI"], np.random.default_rng(0))
    >>> float(walk_in.sum()), float(sum(o.qty.sum() for o in orders))  # every unit online
    (0.0, 20.0)
    >>> OnlineChannel(share=1.5).draw(units, ["WI"], np.random.default_rng(0))
    Traceback (most recent call last):
    ValueError: online share must lie in [0, 1], got 1.5
    """

    share: float = 0.10
    basket: dict[int, float] = field(
        default_factory=lambda: {1: 0.45, 2: 0.25, 3: 0.15, 4: 0.10, 5: 0.05}
    )
    promise: dict[int, float] = field(default_factory=lambda: {0: 0.2, 1: 0.3, 2: 0.5})
    spread_km: float = 8.0  # customers lie up to this far from their city's centre

    def draw(
        self, units: np.ndarray, store_states: list[str], rng: np.random.Generator
    ) -> tuple[np.ndarray, list[OnlineOrder]]:
        """Split real demand ``units`` (stores x SKUs x days) into walk-in demand and orders."""
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"online share must lie in [0, 1], got {self.share}")
        counts = units.astype(np.int64)
        online = rng.binomial(counts, self.share)
        orders: list[OnlineOrder] = []
        states = np.asarray(store_states)
        for day in range(units.shape[2]):
            for state in sorted(set(store_states)):
                rows = np.flatnonzero(states == state)
                orders += self._baskets(online[rows, :, day], state, day, rng, len(orders))
        return units - online, orders

    def _baskets(self, online: np.ndarray, state: str, day: int, rng, first: int) -> list:
        _, items = np.nonzero(online)
        if len(items) == 0:
            return []  # np.split of nothing would still give one (empty) basket
        qty = online[online > 0].astype(float)
        order = rng.permutation(len(items))
        items, qty = items[order], qty[order]
        sizes = rng.choice(list(self.basket), size=len(items) + 1, p=list(self.basket.values()))
        cuts = np.cumsum(sizes)
        cuts = cuts[cuts < len(items)]
        cities = CITIES[state]
        weights = np.array([c.population for c in cities])
        out = []
        for k, (it, q) in enumerate(zip(np.split(items, cuts), np.split(qty, cuts), strict=True)):
            # One line per SKU: a basket that drew the same SKU twice (two stores) adds them.
            uniq, inv = np.unique(it, return_inverse=True)
            city = cities[rng.choice(len(cities), p=weights / weights.sum())]
            dlat, dlon = rng.uniform(-1, 1, 2) * self.spread_km / KM_PER_DEGREE
            out.append(
                OnlineOrder(
                    f"web-{state}-{day}-{first + k}",
                    day,
                    state,
                    uniq,
                    np.bincount(inv, weights=q),
                    city.lat + dlat,
                    city.lon + dlon / np.cos(np.radians(city.lat)),
                    city.city,
                    int(rng.choice(list(self.promise), p=list(self.promise.values()))),
                )
            )
        return out
