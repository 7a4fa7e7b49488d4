"""The network twin: stores replenished by the edge policy, an online channel, DCs, and a choice
of where each online order ships from.

Every store runs a replenishment policy object of its own on its book stock
(``twin.network_stores``: the deployed gateway engine, ``twin.gateway_engine.GatewayPolicy``,
or a reference policy from ``twin.policies``), each day in this order:

1. orders due today arrive (book and shelf; the policy is told of its receipts);
2. the day's online orders (``twin.online_orders``) are routed by the chooser against the
   hub's view (book stock, the ledger's confidence ``edge_runtime.store.confidence``, recent
   conflicts, each store's own forecast, its spread and inbound stock) and picked at once: a
   store line whose units are not really on the shelf is cancelled (a conflict), and the store
   counts the SKU;
3. walk-in demand meets the shelf; what finds none is a store lost sale;
4. unrecorded shrink takes units off the shelf, not off the book (phantom stock);
5. rotating cycle counts set the book to the shelf and feed the confidence score;
6. the store's day close: its policy sees its book stock and observed sales (walk-in sales
   plus units shipped online); on review days it orders, whole packs within capacity
   (``twin.store``).

Everything random (online orders, shrink, the book's starting errors) is drawn once in a
``Scenario``, so the choosers meet the same orders and the same shelves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edge_runtime.store.confidence import DAY_US, confidence, updated_discrepancy
from hub.courier_runs import TARIFFS, CourierRuns
from hub.fulfilment_cost import CostModel, haversine_km
from hub.routing import Candidates, Order, Plan, Router
from hub.run_outlook import RunOutlook
from training.progress import progress_bar
from twin.network_places import DCS, STORES
from twin.network_stores import NetworkStores
from twin.online_orders import OnlineChannel, OnlineOrder
from twin.store import DemandPanel, StoreConfig, sku_parameters

CHOOSERS = ("dc_only", "nearest", "router")
# What a chooser is shown of the stores: the hub's view; or, to bound what better information
# could be worth, each store's real shelf fully trusted, or the walk-in demand that will come.
SIGHTS = ("book", "shelf", "future")


@dataclass(frozen=True)
class ShelfTruth:
    """How far a store's book drifts from its shelf (stated assumptions, docs/routing.md).

    >>> ShelfTruth().count_every_days
    28
    """

    hidden_shrink_share: float = 0.02  # of walk-in demand, lost without a record
    shrink_spread: float = 0.5  # gamma shape of each store x SKU's shrink rate (mean 1)
    count_every_days: int = 28  # each SKU is counted once in this many days, staggered
    recent_conflict_days: int = 7


@dataclass(frozen=True)
class NetworkData:
    """Real daily demand of the network: stores x SKUs x days, with each SKU's unit value.

    >>> days = np.datetime64("2016-04-25") + np.arange(6)
    >>> data = NetworkData(["CA_1", "WI_3"], np.array(["A"]), days, np.full((2, 1, 6), 4.0),
    ...                    unit_value=np.full(1, 5.0))
    >>> data.states, data.units.shape  # stores x SKUs x days
    (['CA', 'WI'], (2, 1, 6))
    """

    store_ids: list[str]
    skus: np.ndarray
    dates: np.ndarray
    units: np.ndarray
    unit_value: np.ndarray

    @property
    def states(self) -> list[str]:
        return [STORES[s].state for s in self.store_ids]


@dataclass(frozen=True)
class Scenario:
    """What every chooser meets: the walk-in demand, the online orders, the shelf's losses.

    >>> days = np.datetime64("2016-04-25") + np.arange(6)
    >>> data = NetworkData(["CA_1", "CA_2"], np.array(["A"]), days, np.full((2, 1, 6), 4.0),
    ...                    unit_value=np.full(1, 5.0))
    >>> sc = Scenario.draw(data, 3, OnlineChannel(share=0.25), ShelfTruth(), StoreConfig(), seed=1)
    >>> [o.day for o in sc.orders], sc.walk_in.shape  # orders of the replay days, out of demand
    ([3, 4, 5], (2, 1, 6))
    >>> float(sc.walk_in[:, :, 3:].sum() + sum(o.qty.sum() for o in sc.orders))
    24.0
    """

    data: NetworkData
    start: int
    walk_in: np.ndarray  # (S, N, T)
    orders: list[OnlineOrder]
    hidden_loss: np.ndarray  # (S, N, days) units the shelf loses unrecorded
    phantom0: np.ndarray  # (S, N) book minus shelf on the first replay day
    discrepancy0: np.ndarray  # (S, N) the counts' weighted discrepancy so far
    last_count0: np.ndarray  # (S, N) day of the last count before the replay

    @classmethod
    def draw(
        cls,
        data: NetworkData,
        start: int,
        channel: OnlineChannel,
        truth: ShelfTruth,
        config: StoreConfig,
        seed: int = 0,
    ) -> Scenario:
        """Draw the online orders and the shelf's errors from ``seed``."""
        rng = np.random.default_rng(seed)
        walk_in, orders = channel.draw(data.units, data.states, rng)
        orders = [o for o in orders if o.day >= start]
        s, n, _ = data.units.shape
        hist = walk_in[:, :, :start].mean(axis=2)
        rate = truth.hidden_shrink_share * rng.gamma(
            truth.shrink_spread, 1 / truth.shrink_spread, (s, n)
        )
        hidden = rng.poisson(rate[:, :, None] * walk_in[:, :, start:])
        every = truth.count_every_days
        since = (np.arange(n)[None, :] + 7 * np.arange(s)[:, None]) % every
        start_stock = np.stack(
            [sku_parameters(_panel(data, k), start, config)[2] for k in range(s)]
        )
        phantom = np.minimum(rng.poisson(rate * hist * since), start_stock)
        previous = rng.poisson(rate * hist * every)
        disc = np.minimum(previous / np.maximum(start_stock, 1.0), 1.0)
        return cls(data, start, walk_in, orders, hidden, phantom, disc, start - since)


def _panel(data: NetworkData, k: int) -> DemandPanel:
    return DemandPanel(data.store_ids[k], data.skus, data.dates, data.units[k])


# A chooser is shown today's courier runs (None under the per-parcel tariff) and prices a
# same-day parcel at what it adds to them; the twin then plans the chosen parcels into them.
Chooser = Callable[[Order, Candidates, CourierRuns | None], Plan]


@dataclass
class Books:
    """Each store x SKU's book (what the ledger and the hub see) and shelf (what is there), and
    the counts behind the ledger's confidence.

    >>> b = Books(np.array([[5.0]]), np.array([[3.0]]), np.zeros((1, 1)), np.ones((1, 1), int),
    ...           np.zeros((1, 1)))
    >>> b.count((0, 0), t=10); float(b.book[0, 0]), float(b.confidence(10)[0, 0].round(3))
    (3.0, 0.806)
    """

    book: np.ndarray
    shelf: np.ndarray
    discrepancy: np.ndarray
    counts: np.ndarray
    last_count: np.ndarray

    def count(self, where, t: int) -> None:
        """A cycle count at ``where`` (a mask or index): the book takes the shelf's figure."""
        for s, n in zip(*np.nonzero(_mask(where, self.book.shape)), strict=True):
            self.discrepancy[s, n] = updated_discrepancy(
                self.discrepancy[s, n],
                int(self.counts[s, n]),
                int(self.shelf[s, n]),
                int(self.book[s, n]),
            )
            self.counts[s, n] += 1
        self.book[where] = self.shelf[where]
        self.last_count[where] = t

    def confidence(self, t: int) -> np.ndarray:
        """The ledger's confidence of every store x SKU on day ``t`` (the edge's own formula)."""
        us = (self.last_count * DAY_US).astype(np.int64)
        return _confidence_each(us, us, self.discrepancy, int(t * DAY_US))


def _mask(where, shape) -> np.ndarray:
    if isinstance(where, np.ndarray) and where.dtype == bool:
        return where
    out = np.zeros(shape, dtype=bool)
    out[where] = True
    return out


_confidence_each = np.vectorize(confidence, otypes=[float])


@dataclass
class FulfilmentRun:
    """What one chooser did: per-order plans and outcomes, and the stores' end figures
    (``NetworkTwin.run`` makes one; its example replays a scenario).

    >>> run = FulfilmentRun("dc_only", orders=3, dc_units=6.0)
    >>> run.store_units, run.direct, run.tariff  # nothing shipped from a store yet
    (0.0, {}, 'runs')
    """

    chooser: str
    orders: int = 0
    lines: int = 0
    cancelled_lines: int = 0
    cancelled_orders: int = 0
    split_orders: int = 0
    same_day_orders: int = 0
    late_orders: int = 0
    store_units: float = 0.0
    dc_units: float = 0.0
    direct: dict[str, float] = field(default_factory=dict)  # shipping, pick, split, late
    # the same plans' shipping had every parcel been priced on its own (the per-parcel tariff)
    shipping_per_parcel: float = 0.0
    vans: int = 0  # store vans sent (under the runs tariff), summed over days
    tariff: str = "runs"
    # what the plans expected of the store terms (risk, lost_sale, markdown_relief), in dollars:
    # against the outcomes, how well the cost model predicts them
    expected: dict[str, float] = field(default_factory=dict)
    cancelled_value: float = 0.0
    store_lost_units: float = 0.0
    store_lost_value: float = 0.0
    markdown_units: float = 0.0
    markdown_value: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    replenishment: str = ""  # the stores' policy


class NetworkTwin:
    """Replays a ``Scenario`` through the stores' policies and one chooser (module docstring).

    >>> from twin.policies import MovingAverageForecaster, OrderUpToPolicy
    >>> days = np.datetime64("2016-04-25") + np.arange(6)
    >>> data = NetworkData(["CA_1", "CA_2"], np.array(["A"]), days, np.full((2, 1, 6), 4.0),
    ...                    unit_value=np.full(1, 5.0))
    >>> sc = Scenario.draw(data, 3, OnlineChannel(share=0.25), ShelfTruth(), StoreConfig(), seed=1)
    >>> twin = NetworkTwin(sc, lambda: OrderUpToPolicy(MovingAverageForecaster(days=3)))
    >>> runs = [twin.run(name, choose) for name, choose in choosers(Router()).items()
    ...         if name in ("nearest", "dc_only")]  # the same orders, two choosers
    >>> [(r.chooser, r.orders, r.store_units, r.dc_units) for r in runs]
    [('dc_only', 3, 0.0, 6.0), ('nearest', 3, 6.0, 0.0)]
    """

    def __init__(
        self,
        scenario: Scenario,
        make_policy: Callable[[], object],
        config: StoreConfig | None = None,
        cost: CostModel | None = None,
        truth: ShelfTruth | None = None,
        tariff: str = "runs",
        run_outlook: bool = True,
    ):
        if tariff not in TARIFFS:
            raise ValueError(f"network twin: tariff={tariff!r}, expected one of {TARIFFS}")
        self.tariff = tariff
        # Whether a chooser's day of runs carries what earlier days' runs took (hub.run_outlook)
        self.run_outlook = run_outlook
        self.sc = scenario
        self.make_policy = make_policy
        self.config = config or StoreConfig()
        self.cost = cost or CostModel()
        self.truth = truth or ShelfTruth()
        ids = [*scenario.data.store_ids, *DCS]
        places = [*(STORES[s] for s in scenario.data.store_ids), *DCS.values()]
        self.loc_ids = np.array(ids, dtype=object)
        self.lat = np.array([p.lat for p in places])
        self.lon = np.array([p.lon for p in places])
        self.is_dc = np.array([i in DCS for i in ids])

    def run(self, name: str, choose: Chooser, sees: str = "book") -> FulfilmentRun:
        """Replay the scenario with ``choose`` routing every online order. ``sees`` is what the
        chooser is shown (``SIGHTS``): the hub's view (``book``: book stock, the ledger's
        confidence, the stores' forecasts); or, as bounds no hub can reach, the real shelves
        with full trust (``shelf``) or the walk-in demand to come, Poisson, in place of the
        stores' forecasts (``future``; their forecast beyond the data's last day)."""
        if sees not in SIGHTS:
            raise ValueError(f"network twin: sees={sees!r}, expected one of {SIGHTS}")
        sc, cfg, data = self.sc, self.config, self.sc.data
        s_n, n_n, t_n = data.units.shape
        days = t_n - sc.start
        panels = [_panel(data, k) for k in range(s_n)]
        stores = NetworkStores(panels, self.make_policy, sc.start, cfg)
        book = stores.start_stock.astype(float)
        b = Books(
            book,
            book - sc.phantom0,
            sc.discrepancy0.copy(),
            np.ones((s_n, n_n), dtype=int),
            sc.last_count0.astype(float),
        )
        on_order = np.zeros((s_n, n_n))
        arrivals = np.zeros((s_n, n_n, days + cfg.lead_time + 1))
        hist = data.units.copy()  # real sales before the replay; the stores' own after
        conflicts = np.zeros((s_n, n_n, days))
        by_day: dict[int, list[OnlineOrder]] = {}
        for o in sc.orders:
            by_day.setdefault(o.day, []).append(o)
        run = FulfilmentRun(
            name, direct={k: 0.0 for k in ("shipping", "pick", "split", "late")}, tariff=self.tariff
        )
        horizon = int(self.cost.markdown_horizon_days)
        outlook = RunOutlook() if self.run_outlook else None
        bar = progress_bar(days, f"network {name}", unit="day")
        for i in range(days):
            bar.update()
            t = sc.start + i
            b.book += arrivals[:, :, i]
            b.shelf += arrivals[:, :, i]
            on_order -= arrivals[:, :, i]
            stores.receive(arrivals[:, :, i])
            ahead = stores.outlook(t, b.book, on_order, hist, max(horizon, cfg.lead_time + 1))
            cover = (-i) % cfg.review_period + cfg.lead_time
            view = {
                "lead": ahead[:, :, :cover].sum(axis=2),
                "inbound": arrivals[:, :, i + 1 : i + cover].sum(axis=2),
                "sell": ahead[:, :, :horizon].sum(axis=2),
                "spread": stores.dispersion(t),
                "conf": b.confidence(t),
                "conflicts": conflicts[:, :, max(0, i - self.truth.recent_conflict_days) : i].sum(
                    axis=2
                ),
            }
            if sees == "future":
                view.update(self._future(t, cover, horizon, ahead))
            shipped = np.zeros((s_n, n_n))
            runs = CourierRuns(self.cost, outlook=outlook) if self.tariff == "runs" else None
            for o in by_day.get(t, []):
                plan = self._fulfil(
                    o, choose, run, b, t, shipped, view, conflicts[:, :, i], sees, runs
                )
                self._plan_parcels(o, plan, run, runs)
            if runs is not None:  # what the day's vans and couriers really carried
                run.vans += runs.vans()
                run.direct["shipping"] += runs.total()
                if outlook is not None:
                    outlook.close_day(runs)
            demand = sc.walk_in[:, :, t]
            sold = np.minimum(b.shelf, demand)
            b.shelf -= sold
            b.book -= sold
            run.store_lost_units += float((demand - sold).sum())
            run.store_lost_value += float(((demand - sold) * data.unit_value).sum())
            hist[:, :, t] = sold + shipped
            b.shelf -= np.minimum(b.shelf, sc.hidden_loss[:, :, i])
            every = self.truth.count_every_days
            b.count((np.arange(n_n)[None, :] + 7 * np.arange(s_n)[:, None] + t) % every == 0, t)
            stores.observe(t, b.book, on_order, hist)
            if i % cfg.review_period == 0:
                q = stores.orders(t, b.book, on_order, hist)
                arrivals[:, :, i + cfg.lead_time] += q
                on_order += q
        bar.close()
        ahead = stores.outlook(t_n, b.book, on_order, hist, horizon)
        excess = np.maximum(b.shelf - ahead.sum(axis=2), 0.0)
        run.markdown_units = float(np.floor(excess).sum())
        run.markdown_value = float((np.floor(excess) * data.unit_value).sum())
        run.replenishment = stores.name
        return run

    def _future(self, t: int, cover: int, horizon: int, ahead: np.ndarray) -> dict:
        """The walk-in demand to come over the lead cover and the markdown horizon (the stores'
        forecast ``ahead`` past the data's last day), with a Poisson spread."""
        come = self.sc.walk_in[:, :, t:]
        have = come.shape[2]

        def over(days: int) -> np.ndarray:
            return come[:, :, :days].sum(axis=2) + ahead[:, :, have:days].sum(axis=2)

        return {"lead": over(cover), "sell": over(horizon), "spread": np.ones(come.shape[:2])}

    def _plan_parcels(self, o: OnlineOrder, plan: Plan, run: FulfilmentRun, runs) -> None:
        """Bill the plan's parcels: each on its own, or, under the runs tariff, its same-day ones
        put on today's runs (a chooser's later orders see them; the runs themselves are billed
        at the day's end, whatever a chooser expected of them). Each is priced on its own too."""
        for sh in plan.shipments:
            k = int(np.flatnonzero(self.loc_ids == sh.location_id)[0])
            km = float(haversine_km(self.lat[k], self.lon[k], o.lat, o.lon))
            units = float(sum(sh.qty))
            alone = float(self.cost.shipping([km], [sh.is_dc], [units]).cost[0])
            run.shipping_per_parcel += alone
            if runs is not None and self.cost.is_local(km, sh.is_dc):
                runs.join(sh.location_id, o.city, km)
                run.direct["shipping"] += self.cost.per_unit * units
            else:
                run.direct["shipping"] += alone

    def _fulfil(
        self, o, choose, run, b: Books, t, shipped, view, conflicts_today, sees="book", runs=None
    ) -> Plan:
        s_n = b.book.shape[0]
        items, qty = o.items, o.qty
        dc = np.full((len(DCS), len(items)), np.inf)
        zeros = np.zeros((len(DCS), len(items)))
        shelf = sees == "shelf"
        stock = (b.shelf if shelf else b.book)[:, items]
        conf = np.ones_like(stock) if shelf else view["conf"][:, items]
        conflicts = np.zeros_like(stock) if shelf else view["conflicts"][:, items]
        cand = Candidates(
            self.loc_ids,
            self.lat,
            self.lon,
            self.is_dc,
            np.vstack([np.maximum(stock, 0.0), dc]),
            np.vstack([conf, zeros + 1.0]),
            np.vstack([conflicts, zeros]),
            np.vstack([view["lead"][:, items], zeros]),
            np.vstack([view["sell"][:, items], zeros]),
            self.sc.data.unit_value[items],
            np.vstack([view["inbound"][:, items], zeros]),
            np.vstack([view["spread"][:, items], zeros + 1.0]),
        )
        order = Order(
            o.order_id, self.sc.data.skus[items], qty, o.lat, o.lon, o.promised_days, o.city
        )
        plan = choose(order, cand, runs)
        run.orders += 1
        run.lines += len(items)
        for k in ("pick", "split", "late"):  # shipping is billed by ``_plan_parcels``
            run.direct[k] += plan.components[k]
        for k in ("risk", "lost_sale", "markdown_relief"):
            run.expected[k] = run.expected.get(k, 0.0) + plan.components[k]
        for r in plan.reasons:
            run.reasons[str(r)] = run.reasons.get(str(r), 0) + 1
        cancelled = 0
        for sh in plan.shipments:
            if sh.is_dc:
                run.dc_units += float(sum(sh.qty))
                continue
            s = int(np.flatnonzero(self.loc_ids[:s_n] == sh.location_id)[0])
            for line, q in zip(sh.lines, sh.qty, strict=True):
                n = items[line]
                if b.shelf[s, n] >= q:
                    b.shelf[s, n] -= q
                    b.book[s, n] -= q
                    shipped[s, n] += q
                    run.store_units += q
                else:  # promised from stock that was not there: the line is cancelled
                    cancelled += 1
                    conflicts_today[s, n] += 1
                    run.cancelled_value += self.cost.cancel_line
                    b.count((s, n), t)  # a failed pick: the store counts the SKU
        run.cancelled_lines += cancelled
        run.cancelled_orders += cancelled > 0
        run.split_orders += plan.kind == "split"
        run.same_day_orders += plan.delivery_days == 0 and not cancelled
        run.late_orders += plan.components["late"] > 0
        return plan


def choosers(router: Router) -> dict[str, Chooser]:
    """The three ways to fulfil an order the twin compares, all priced by ``router.cost``."""
    return {"dc_only": router.dc_only, "nearest": router.nearest_with_stock, "router": router.plan}


def summary(runs: dict[str, FulfilmentRun], cost: CostModel) -> dict[str, dict[str, float]]:
    """Per chooser: rates, units and the cost per order, the stores' losses counted against
    DC-only (which takes nothing from a store)."""
    ref = runs["dc_only"]
    out = {}
    for name, r in runs.items():
        lost = cost.store_margin * (r.store_lost_value - ref.store_lost_value)
        markdown = cost.markdown_depth * (r.markdown_value - ref.markdown_value)
        direct = sum(r.direct.values())
        total = direct + r.cancelled_value + lost + markdown
        per = max(r.orders, 1)
        # The same plans with every parcel priced on its own: the per-parcel tariff's bill.
        per_parcel = total - r.direct["shipping"] + r.shipping_per_parcel
        out[name] = {
            "orders": r.orders,
            "lines": r.lines,
            "tariff": r.tariff,
            "cost_per_order": round(total / per, 4),
            "cost_per_order_priced_per_parcel": round(per_parcel / per, 4),
            "direct_cost_per_order": round(direct / per, 4),
            "shipping_cost_per_order": round(r.direct["shipping"] / per, 4),
            "shipping_per_parcel_per_order": round(r.shipping_per_parcel / per, 4),
            "store_vans": r.vans,
            "cancellation_cost_per_order": round(r.cancelled_value / per, 4),
            "store_lost_sale_cost_per_order": round(lost / per, 4),
            "markdown_cost_per_order": round(markdown / per, 4),
            "expected_per_order": {k: round(v / per, 4) for k, v in r.expected.items()},
            "cancellation_rate": round(r.cancelled_orders / per, 5),
            "cancelled_lines": r.cancelled_lines,
            "split_rate": round(r.split_orders / per, 5),
            "same_day_share": round(r.same_day_orders / per, 5),
            "late_share": round(r.late_orders / per, 5),
            "store_units_shipped": r.store_units,
            "dc_units_shipped": r.dc_units,
            "store_lost_units": r.store_lost_units,
            "store_lost_units_caused": r.store_lost_units - ref.store_lost_units,
            "markdown_units": r.markdown_units,
            "reasons": dict(sorted(r.reasons.items())),
        }
    return out
