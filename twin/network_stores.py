"""The network twin's stores: each one's replenishment policy and the forecast it runs on.

Every store of the network runs one policy object of its own (``twin.policies``,
``twin.gateway_engine``), driven as ``twin.store.simulate`` drives a single store: told each
day's arrivals (``receive``), each day's close (``observe``, its book stock and its observed
sales), and asked for orders on review days. What the hub reads of a store's demand is the
forecast the store itself orders on (the outlook): for the deployed gateway
(``GatewayPolicy``) the table its day close made, for a reference policy its forecaster's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from edge_runtime.forecast.demand_distribution import daily_sigma
from twin.gateway_engine import GatewayPolicy
from twin.store import DemandPanel, StoreConfig, StoreState, round_order, sku_parameters


class NetworkStores:
    """The policies of a network's stores (one per panel), prepared on the days before
    ``start``; arrays are stores x SKUs (x days).

    >>> from twin.policies import MovingAverageForecaster, OrderUpToPolicy
    >>> from twin.store import DemandPanel, StoreConfig
    >>> panels = [DemandPanel.from_arrays(s, ["a"], np.datetime64("2024-01-01") + np.arange(8),
    ...                                   [[2.0] * 8]) for s in ("s1", "s2")]
    >>> stores = NetworkStores(panels, lambda: OrderUpToPolicy(MovingAverageForecaster()), 4,
    ...                        StoreConfig())
    >>> stores.name, stores.start_stock.tolist()  # each store starts with its policy's level
    ('order_up_to[moving_average]', [[18.0], [18.0]])
    >>> book = np.full((2, 1), 5.0)  # what the hub reads: the forecast each store orders on
    >>> stores.outlook(4, book, np.zeros((2, 1)), np.full((2, 1, 8), 2.0), days=3).tolist()
    [[[2.0, 2.0, 2.0]], [[2.0, 2.0, 2.0]]]
    """

    def __init__(
        self,
        panels: Sequence[DemandPanel],
        make_policy: Callable[[], object],
        start: int,
        config: StoreConfig,
    ):
        self.config = config
        params = [sku_parameters(p, start, config) for p in panels]
        self.pack = np.stack([p[0] for p in params])
        self.capacity = np.stack([p[1] for p in params])
        self.start_stock = np.stack([p[2] for p in params])
        self.policies = [make_policy() for _ in panels]
        for panel, policy in zip(panels, self.policies, strict=True):
            policy.prepare(panel, start, config)
            if isinstance(policy, GatewayPolicy):
                policy.start_up()  # a gateway re-scores at start-up: its first morning's table

    @property
    def name(self) -> str:
        return str(getattr(self.policies[0], "name", type(self.policies[0]).__name__))

    def receive(self, arrived: np.ndarray) -> None:
        """The day's deliveries reach each store's policy (receipts close its open orders)."""
        for k, policy in enumerate(self.policies):
            if hasattr(policy, "receive"):
                policy.receive(arrived[k])

    def observe(self, t: int, book: np.ndarray, on_order: np.ndarray, sales: np.ndarray) -> None:
        """Day ``t``'s close: each store sees its book stock and its sales up to ``t``."""
        for k, policy in enumerate(self.policies):
            if hasattr(policy, "observe"):
                policy.observe(self._state(k, t, book, on_order, sales[:, :, : t + 1]))

    def orders(
        self, t: int, book: np.ndarray, on_order: np.ndarray, sales: np.ndarray
    ) -> np.ndarray:
        """A review: each store's order, whole packs within its capacity."""
        out = np.zeros_like(book)
        for k, policy in enumerate(self.policies):
            state = self._state(k, t, book, on_order, sales[:, :, : t + 1])
            out[k] = round_order(
                policy.order(state), state.position, self.pack[k], self.capacity[k]
            )
        return out

    def outlook(
        self, t: int, book: np.ndarray, on_order: np.ndarray, sales: np.ndarray, days: int
    ) -> np.ndarray:
        """Each store's own forecast of its daily demand on days ``t .. t + days - 1``, made
        with what it knew the evening before (stores x SKUs x days, >= 0)."""
        out = np.zeros((*book.shape, days))
        for k, policy in enumerate(self.policies):
            if isinstance(policy, GatewayPolicy):
                table = policy.trace.get(t - 1)  # the last close's: day t is its horizon 1
                if table is not None:  # none: nothing ever sold, no series to forecast
                    out[k] = _extend(table[0], days)
            else:
                state = self._state(k, t, book, on_order, sales[:, :, :t])
                out[k] = policy.forecaster.forecast(state, days)[0]
        return np.maximum(out, 0.0)

    def dispersion(self, t: int) -> np.ndarray:
        """Each store's demand variance over its mean per SKU (stores x SKUs, >= 1), from the
        P90 of the table it orders on (``daily_sigma``, the gateway's own spread); Poisson (1)
        for a policy with no P90 or a SKU with no forecast demand."""
        out = np.ones(self.pack.shape)
        for k, policy in enumerate(self.policies):
            table = policy.trace.get(t - 1) if isinstance(policy, GatewayPolicy) else None
            if table is not None:
                mean, p90 = np.maximum(table[0], 0.0), table[1]
                total = mean.sum(axis=1)
                var = (daily_sigma(mean, p90) ** 2).sum(axis=1)
                out[k] = np.where(total > 0, var / np.maximum(total, 1e-12), 1.0)
        return np.maximum(out, 1.0)

    def _state(self, k: int, t: int, book, on_order, sales) -> StoreState:
        return StoreState(
            t, book[k], on_order[k], sales[k], self.pack[k], self.capacity[k], self.config
        )


def _extend(mean: np.ndarray, days: int) -> np.ndarray:
    """A table's horizons cut or carried on to ``days``: beyond its last horizon, its average
    daily level over the horizons it has (the gateway forecasts lead time + review period)."""
    have = mean.shape[1]
    if have >= days:
        return mean[:, :days]
    level = mean.mean(axis=1, keepdims=True) if have else np.zeros((mean.shape[0], 1))
    return np.concatenate([mean, np.repeat(level, days - have, axis=1)], axis=1)
