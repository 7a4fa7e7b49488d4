"""The digital twin: a simulated store that replays real daily demand through a policy.

Each day, in this order: orders due today arrive; the day's real demand meets the shelf (what finds
no stock is a lost sale); the policy sees the day's *sales* (censored by stock-outs, as a real
store's systems do); on review days the policy orders, rounded up to whole packs and capped so the
inventory position never exceeds shelf capacity; the order arrives ``lead_time`` days later.

Everything is vectorised over SKUs: one small loop over days, numpy over the assortment.

>>> import numpy as np
>>> panel = DemandPanel.from_arrays("s1", ["a", "b"], np.datetime64("2024-01-01") + np.arange(60),
...                                 np.tile([2.0, 0.0, 4.0], (2, 20)), price=[1.0, 2.0])
>>> from twin.policies import MinMaxPolicy
>>> run = simulate(panel, MinMaxPolicy(safety_days=2.0), StoreConfig(lead_time=2, review_period=7),
...                start=30)
>>> m = run.metrics()
>>> m["demand_units"], 0.0 <= m["fill_rate"] <= 1.0
(120.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from training.progress import progress_bar

if TYPE_CHECKING:
    import pandas as pd

STANDARD_PACKS = np.array([1, 2, 3, 4, 6, 8, 10, 12, 24, 48, 96], dtype=np.float64)


class TwinDataError(ValueError):
    """The demand given to the twin is not in the canonical format (says what and where).

    >>> DemandPanel.from_arrays("s", ["a", "b"], np.datetime64("2024-01-01") + np.arange(3),
    ...                         [[1, 2, 3]])
    Traceback (most recent call last):
    twin.store.TwinDataError: units has shape (1, 3), expected (n_skus=2, n_days=3)
    """


@dataclass(frozen=True)
class DemandPanel:
    """Real daily demand of one store: SKUs x days, dense, missing days filled with zero.

    >>> import numpy as np
    >>> p = DemandPanel.from_arrays("s", ["x"], np.datetime64("2024-01-01") + np.arange(3), [[1, 0, 2]])
    >>> p.n_skus, p.n_days, float(p.units.sum())
    (1, 3, 3.0)
    """

    store_id: str
    skus: np.ndarray  # (n,) object
    dates: np.ndarray  # (T,) datetime64[D], consecutive days
    units: np.ndarray  # (n, T) float64, >= 0
    price: np.ndarray | None = None  # (n,) float64 unit price, NaN where unknown
    price_daily: np.ndarray | None = None  # (n, T) the history's price per day, NaN where none

    @property
    def n_skus(self) -> int:
        return int(self.units.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.units.shape[1])

    @classmethod
    def from_arrays(cls, store_id, skus, dates, units, price=None) -> DemandPanel:
        units = np.maximum(np.asarray(units, dtype=np.float64), 0.0)
        dates = np.asarray(dates, dtype="datetime64[D]")
        if units.shape != (len(skus), len(dates)):
            raise TwinDataError(
                f"units has shape {units.shape}, expected (n_skus={len(skus)}, n_days={len(dates)})"
            )
        p = None if price is None else np.asarray(price, dtype=np.float64)
        return cls(str(store_id), np.asarray(skus, dtype=object), dates, units, p)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        store_id: str | None = None,
        top_skus: int | None = None,
        rank_before=None,
    ) -> DemandPanel:
        """Pivot a canonical long frame to one store's dense panel.

        ``store_id`` defaults to the store with the most units; ``top_skus`` keeps the SKUs with
        the most units (:func:`training.datasets.top_skus_by_units`), counted on days before
        ``rank_before`` only when given (the test weeks must not choose the SKUs). Negative
        units (net returns) are not demand and count as zero.
        """
        from training.datasets import top_skus_by_units
        from training.history import validate

        frame = validate(frame)
        stores = frame.groupby("store_id", observed=True)["units"].sum()
        if store_id is None:
            store_id = str(stores.sort_values(ascending=False, kind="stable").index[0])
        one = frame[frame["store_id"].astype(str) == str(store_id)]
        if one.empty:
            raise TwinDataError(
                f"store_id {store_id!r} not in the data; stores are: {', '.join(map(str, stores.index[:20]))}"
            )
        daily = one.groupby(["sku", "date"], observed=True)["units"].sum().clip(lower=0)
        skus = top_skus_by_units(
            daily.reset_index(),
            top_skus or daily.index.get_level_values("sku").nunique(),
            before=rank_before,
        )
        days = one["date"].to_numpy().astype("datetime64[D]")
        dates = np.arange(days.min(), days.max() + np.timedelta64(1, "D"))
        wide = daily.unstack("date").fillna(0.0)
        wide.columns = wide.columns.to_numpy().astype("datetime64[D]")
        wide = wide.reindex(index=skus, columns=dates, fill_value=0.0)
        price = price_daily = None
        if "price" in one.columns:
            # Unit price where sold; the median resists the odd mis-keyed line.
            med = one[one["units"] > 0].groupby("sku")["price"].median()
            price = med.reindex(skus).to_numpy(dtype=np.float64)
            # The day's price as the history gives it (a model feature), NaN on days without.
            daily_price = one.groupby(["sku", "date"], observed=True)["price"].mean()
            wide_p = daily_price.unstack("date")
            wide_p.columns = wide_p.columns.to_numpy().astype("datetime64[D]")
            price_daily = wide_p.reindex(index=skus, columns=dates).to_numpy(dtype=np.float64)
        panel = cls.from_arrays(store_id, list(skus), dates, wide.to_numpy(), price)
        return replace(panel, price_daily=price_daily)

    def until(self, day: str | np.datetime64) -> DemandPanel:
        """The panel's days up to and including ``day``."""
        end = self.window_index(day) + 1
        daily = None if self.price_daily is None else self.price_daily[:, :end]
        return replace(self, dates=self.dates[:end], units=self.units[:, :end], price_daily=daily)

    def window_index(self, day: str | np.datetime64) -> int:
        """Index of a calendar day in the panel (clear error when outside it)."""
        d = np.datetime64(day, "D")
        if d < self.dates[0] or d > self.dates[-1]:
            raise TwinDataError(f"day {d} outside the data ({self.dates[0]} .. {self.dates[-1]})")
        return int((d - self.dates[0]).astype(int))


def load_canonical(path: str | Path) -> pd.DataFrame:
    """Read and validate a canonical Parquet or CSV sales file (``training.history`` rules)."""
    from training.history import load_history

    return load_history(path)


@dataclass(frozen=True)
class StoreConfig:
    """How the simulated store runs; the same for every policy in a comparison.

    ``pack_size``: ``"auto"`` picks, per SKU, the largest standard case size (1..96) not above
    ``pack_weeks`` of its mean history demand (a supplier ships cases, not units), or an int.
    ``capacity_days``: shelf + backroom capacity per SKU, in days of mean demand (at least
    ``min_capacity`` units). ``start_cover_days``: starting stock in days of mean demand.

    >>> StoreConfig().lead_time
    2
    """

    lead_time: int = 2
    review_period: int = 7
    pack_size: int | str = "auto"
    pack_weeks: float = 0.5
    capacity_days: float = 42.0
    min_capacity: int = 12
    start_cover_days: float | None = None  # default lead_time + review_period
    history_days: int = 91  # history used to size packs, capacity and starting stock

    def __post_init__(self) -> None:
        if self.lead_time < 0 or self.review_period < 1:
            raise ValueError(
                f"lead_time must be >= 0 and review_period >= 1 (got {self.lead_time}, {self.review_period})"
            )


@dataclass
class StoreState:
    """What a policy sees on a review day (arrays over SKUs; ``sales`` is history up to today).

    >>> state = StoreState(day=0, on_hand=np.array([3.0]), on_order=np.array([5.0]),
    ...                    sales=np.zeros((1, 1)), pack=np.ones(1), capacity=np.full(1, np.inf),
    ...                    config=StoreConfig())
    >>> state.position.tolist()  # what a policy orders against
    [8.0]
    """

    day: int
    on_hand: np.ndarray
    on_order: np.ndarray
    sales: np.ndarray  # (n, day+1) observed sales, censored by stock-outs inside the twin
    pack: np.ndarray
    capacity: np.ndarray
    config: StoreConfig

    @property
    def position(self) -> np.ndarray:
        """Inventory position: on hand plus on order."""
        return self.on_hand + self.on_order


class Policy(Protocol):
    """A replenishment policy: ``order`` returns units to order per SKU on a review day.

    ``prepare`` is called once before the replay with the panel and the first replay day
    (a policy may fit on history before that day, never after). Optional: ``receive`` is told
    each day's arrivals (units per SKU), ``observe`` each day's close, and
    ``stockout_probability`` returns P(out within ``horizon`` days) per SKU.

    >>> class TwoPacks:  # any object with these three members
    ...     name = "two_packs"
    ...     def prepare(self, panel, start, config):
    ...         pass
    ...     def order(self, state):
    ...         return np.where(state.position < 10, 2 * state.pack, 0.0)
    >>> panel = DemandPanel.from_arrays("s", ["a"], np.datetime64("2024-01-01") + np.arange(70),
    ...                                 [[3.0] * 70])
    >>> run = simulate(panel, TwoPacks(), start=35)
    >>> run.policy, run.metrics()["orders_placed"]
    ('two_packs', 4.0)
    """

    name: str

    def prepare(self, panel: DemandPanel, start: int, config: StoreConfig) -> None: ...

    def order(self, state: StoreState) -> np.ndarray: ...


@dataclass
class TwinRun:
    """Trajectories of one policy's replay and the metrics computed from them.

    >>> from twin.policies import MinMaxPolicy
    >>> panel = DemandPanel.from_arrays("s", ["a"], np.datetime64("2024-01-01") + np.arange(70),
    ...                                 [[3.0] * 70])
    >>> run = simulate(panel, MinMaxPolicy(safety_days=0.0), start=35)
    >>> run.demand.shape, float(run.lost.sum()) >= 0, run.stockout_days().shape
    ((1, 35), True, (1, 35))
    """

    policy: str
    panel: DemandPanel
    start: int
    end: int
    demand: np.ndarray  # (n, D) real demand over the replay days
    sales: np.ndarray
    lost: np.ndarray
    on_hand: np.ndarray  # end-of-day on hand
    orders: np.ndarray  # units ordered on each day
    stockout_prob: np.ndarray | None = None  # (n, D) predicted P(out within horizon), if any
    horizon: int = 0
    extra: dict = field(default_factory=dict)

    def stockout_days(self) -> np.ndarray:
        """SKU-days that closed with an empty shelf (demand may or may not have been lost)."""
        return self.on_hand <= 0

    def metrics(self) -> dict[str, float]:
        """Fill rate, lost sales, stock-out SKU-days, average inventory and days of cover, orders."""
        demand = float(self.demand.sum())
        days = self.demand.shape[1]
        avg_inv = float(self.on_hand.sum(axis=0).mean())
        daily_demand = demand / days if days else 0.0
        out = {
            "skus": float(self.demand.shape[0]),
            "days": float(days),
            "demand_units": demand,
            "fill_rate": float(self.sales.sum()) / demand if demand else 1.0,
            "lost_units": float(self.lost.sum()),
            "stockout_sku_days": float(self.stockout_days().sum()),
            "lost_sale_sku_days": float((self.lost > 0).sum()),
            "avg_inventory_units": avg_inv,
            "days_of_cover": avg_inv / daily_demand if daily_demand else math.inf,
            "orders_placed": float((self.orders > 0).sum()),
        }
        price = self.panel.price
        if price is not None and np.isfinite(price).any():
            p = np.nan_to_num(price, nan=0.0)[:, None]
            out["lost_value"] = float((self.lost * p).sum())
            out["avg_inventory_value"] = float((self.on_hand * p).sum(axis=0).mean())
        return out


def sku_parameters(
    panel: DemandPanel, start: int, config: StoreConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pack size, capacity and starting stock per SKU, from history before ``start`` only."""
    lo = max(0, start - config.history_days)
    mean = panel.units[:, lo:start].mean(axis=1) if start > lo else np.zeros(panel.n_skus)
    if config.pack_size == "auto":
        target = np.maximum(mean * 7.0 * config.pack_weeks, 1.0)
        idx = np.searchsorted(STANDARD_PACKS, target, side="right") - 1
        pack = STANDARD_PACKS[np.clip(idx, 0, len(STANDARD_PACKS) - 1)]
    else:
        pack = np.full(panel.n_skus, float(int(config.pack_size)))
    capacity = np.maximum(np.ceil(mean * config.capacity_days), config.min_capacity)
    capacity = np.maximum(np.ceil(capacity / pack) * pack, 2 * pack)  # room for two packs
    cover = (
        config.start_cover_days
        if config.start_cover_days is not None
        else config.lead_time + config.review_period
    )
    start_stock = np.minimum(np.ceil(mean * cover / pack) * pack, capacity)
    return pack, capacity, start_stock


def round_order(
    qty: np.ndarray, position: np.ndarray, pack: np.ndarray, capacity: np.ndarray
) -> np.ndarray:
    """Whole packs, never lifting the inventory position above capacity."""
    q = np.ceil(np.maximum(np.nan_to_num(qty, nan=0.0), 0.0) / pack) * pack
    room = np.floor(np.maximum(capacity - position, 0.0) / pack) * pack
    return np.minimum(q, room)


def simulate(
    panel: DemandPanel,
    policy: Policy,
    config: StoreConfig | None = None,
    start: int | None = None,
    end: int | None = None,
    horizon: int = 0,
) -> TwinRun:
    """Replay days ``start..end-1`` of ``panel`` through ``policy``; history before ``start``.

    ``horizon`` > 0 asks the policy (if it can) for a stock-out probability each day.
    """
    config = config or StoreConfig()
    end = panel.n_days if end is None else end
    start = panel.n_days // 2 if start is None else start
    if not 0 < start < end <= panel.n_days:
        raise TwinDataError(f"replay window {start}..{end} invalid for {panel.n_days} days")
    n, days = panel.n_skus, end - start
    pack, capacity, start_stock = sku_parameters(panel, start, config)
    on_hand = start_stock
    policy.prepare(panel, start, config)
    sales_hist = panel.units[:, :end].copy()  # real history before start; twin sales after
    arrivals = np.zeros((n, days + config.lead_time + 1))
    demand = panel.units[:, start:end]
    rec = {k: np.zeros((n, days)) for k in ("sales", "lost", "on_hand", "orders")}
    probs = np.zeros((n, days)) if horizon and hasattr(policy, "stockout_probability") else None
    on_order = np.zeros(n)
    name = getattr(policy, "name", type(policy).__name__)
    bar = progress_bar(days, f"twin {name}", unit="day")
    for i in range(days):
        bar.update()
        t = start + i
        on_hand = on_hand + arrivals[:, i]
        on_order = on_order - arrivals[:, i]
        if hasattr(policy, "receive"):  # a gateway's receipts close its open orders
            policy.receive(arrivals[:, i])
        sold = np.minimum(on_hand, demand[:, i])
        on_hand = on_hand - sold
        sales_hist[:, t] = sold
        state = StoreState(t, on_hand, on_order, sales_hist[:, : t + 1], pack, capacity, config)
        if hasattr(policy, "observe"):
            policy.observe(state)
        if i % config.review_period == 0:
            q = round_order(policy.order(state), state.position, pack, capacity)
            arrivals[:, i + config.lead_time] += q
            on_order = on_order + q
            rec["orders"][:, i] = q
        if probs is not None:
            state.on_order = on_order
            probs[:, i] = policy.stockout_probability(state, arrivals[:, i + 1 :], horizon)
        rec["sales"][:, i], rec["lost"][:, i] = sold, demand[:, i] - sold
        rec["on_hand"][:, i] = on_hand
    bar.close()
    return TwinRun(
        name,
        panel,
        start,
        end,
        demand,
        rec["sales"],
        rec["lost"],
        rec["on_hand"],
        rec["orders"],
        probs,
        horizon,
        {"policy": policy, "start_stock": start_stock},
    )


def stockout_labels(run: TwinRun, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Did the shelf go empty within the next ``horizon`` days? Labels and a mask of valid days."""
    out = run.stockout_days()
    n, days = out.shape
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(out, axis=1)], axis=1)
    idx = np.arange(days)
    hi = np.minimum(idx + horizon, days - 1)
    labels = (csum[:, hi + 1] - csum[:, idx + 1]) > 0
    valid = np.broadcast_to(idx + horizon <= days - 1, (n, days))
    # Already out today: predicting "out soon" is trivial, so score only SKUs with stock tonight.
    return labels, valid & ~out


def prediction_quality(run: TwinRun, threshold: float = 0.5) -> dict[str, float]:
    """AUC, Brier and precision/recall at ``threshold`` of the run's stock-out predictions,
    against the stock-outs that happened in the twin."""
    if run.stockout_prob is None:
        return {}
    labels, mask = stockout_labels(run, run.horizon)
    y = labels[mask].astype(np.float64)
    p = run.stockout_prob[mask]
    alerts = p >= threshold
    tp = float((alerts & (y > 0)).sum())
    return {
        "horizon_days": float(run.horizon),
        "alert_threshold": threshold,
        "scored_sku_days": float(y.size),
        "positive_rate": float(y.mean()) if y.size else math.nan,
        "auc": roc_auc(y, p),
        "brier": float(np.mean((p - y) ** 2)) if y.size else math.nan,
        "precision": tp / float(alerts.sum()) if alerts.any() else math.nan,
        "recall": tp / float(y.sum()) if y.any() else math.nan,
    }


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula (ties get average ranks)."""
    y = np.asarray(y) > 0
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return math.nan
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    ranks = np.empty(len(s))
    # average ranks over ties
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def compare(
    panel: DemandPanel,
    policies: Sequence[Policy],
    config: StoreConfig,
    start: int,
    end: int,
    horizon: int = 0,
) -> list[TwinRun]:
    """Run several policies on the same demand, same store, same window."""
    return [simulate(panel, p, config, start, end, horizon) for p in policies]
