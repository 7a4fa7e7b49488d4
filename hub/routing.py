"""Where an online order is fulfilled: one store, the distribution centre, or a split.

The router prices every assignment of the order's lines to a short list of locations (the
nearest stores that hold any line, and the nearest DC) at once, as numpy arrays, and keeps the
cheapest. A plan's expected cost (``hub.fulfilment_cost.CostModel`` for every parameter):

- shipping per shipment, by distance and units (local courier or zone-priced parcel);
- picking per line (a store's associates cost more than the DC's);
- a split penalty per shipment beyond the first;
- lateness against the promised date;
- the risk the units are not on the shelf (``hub.store_risk``: ledger confidence, recent
  conflicts, how deep the stock is) times the cost of a cancelled line;
- the store's own walk-in sales lost before its next delivery (``hub.store_risk``);
- minus markdown relief: the units taken that the store was expected to leave unsold over the
  markdown horizon (``hub.store_risk``), so mark down.

The plan says why (``hub.route_reasons.RouteReason``), by comparing itself with what an
order-management system does by default: the nearest store holding the whole order, else each
line from its nearest store with stock, else the DC (``Router.nearest_with_stock``).

>>> cand = Candidates.build(
...     ids=["S_near", "S_far", "DC"], lat=[34.05, 34.2, 34.0], lon=[-118.25, -118.4, -117.4],
...     is_dc=[False, False, True], atp=[[1.0], [30.0], [np.inf]], confidence=[[0.6], [0.95], [1.0]],
...     lead_demand=[[2.0], [2.0], [0.0]], sell_through=[[20.0], [10.0], [0.0]], unit_value=[5.0])
>>> order = Order("o1", np.array(["A"]), np.array([1.0]), lat=34.06, lon=-118.3, promised_days=1)
>>> plan = Router().plan(order, cand)
>>> [s.location_id for s in plan.shipments], [str(r) for r in plan.reasons]
(['S_far'], ['SHIP_FROM_STORE', 'SAME_DAY', 'STORE_DEMAND_PROTECTED', 'STOCK_RISK_AVOIDED', 'MARKDOWN_RELIEF'])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hub.courier_runs import CourierRuns
from hub.fulfilment_cost import CostModel, haversine_km
from hub.route_reasons import RouteReason
from hub.store_risk import extra_lost_units, markdown_units_relieved, not_there_probability

COMPONENTS = ("shipping", "pick", "split", "late", "risk", "lost_sale", "markdown_relief")
_EPS = 1e-6


def _matrix(values, rows: int, cols: int, name: str) -> np.ndarray:
    out = np.asarray(values, dtype=float)
    if out.shape != (rows, cols):
        raise ValueError(f"candidates.{name}: shape {out.shape}, expected ({rows}, {cols})")
    return out


@dataclass(frozen=True)
class Candidates:
    """What the router knows of each location for one order's lines.

    Rows are locations (stores and DCs), columns the order's lines. ``atp`` is the book's
    available-to-promise (``inf`` for a DC that always holds the line); ``lead_demand`` the
    store's expected walk-in units of the SKU until the delivery its next order brings;
    ``inbound`` the units already on their way that arrive before then (they meet that demand
    too; none when not given); ``sell_through`` its expected sales before the stock ages (the
    markdown horizon); ``conflicts`` recent conflicts; ``dispersion`` the variance of the
    store's demand over its mean (from its forecast's P90; Poisson, 1, when not given).

    >>> cand = Candidates.build(ids=["S1", "DC"], lat=[34.05, 34.0], lon=[-118.25, -117.4],
    ...     is_dc=[False, True], atp=[[5.0], [np.inf]], confidence=[[1.0], [1.0]],
    ...     lead_demand=[[0.0], [0.0]], sell_through=[[0.0], [0.0]], unit_value=[5.0])
    >>> cand.atp.shape, cand.without({"S1"}).ids.tolist()  # S1 refused: routed around
    ((2, 1), ['DC'])
    """

    ids: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    is_dc: np.ndarray
    atp: np.ndarray
    confidence: np.ndarray
    conflicts: np.ndarray
    lead_demand: np.ndarray
    sell_through: np.ndarray
    unit_value: np.ndarray
    inbound: np.ndarray | None = None
    dispersion: np.ndarray | None = None

    @classmethod
    def build(
        cls,
        ids,
        lat,
        lon,
        is_dc,
        atp,
        confidence,
        lead_demand,
        sell_through,
        unit_value,
        conflicts=None,
        inbound=None,
        dispersion=None,
    ) -> Candidates:
        """Arrays from lists, shapes checked (one line per wrong input)."""
        m, n = len(ids), len(unit_value)
        conflicts = np.zeros((m, n)) if conflicts is None else conflicts
        inbound = None if inbound is None else _matrix(inbound, m, n, "inbound")
        dispersion = None if dispersion is None else _matrix(dispersion, m, n, "dispersion")
        return cls(
            np.asarray(ids, dtype=object),
            np.asarray(lat, dtype=float),
            np.asarray(lon, dtype=float),
            np.asarray(is_dc, dtype=bool),
            _matrix(atp, m, n, "atp"),
            _matrix(confidence, m, n, "confidence"),
            _matrix(conflicts, m, n, "conflicts"),
            _matrix(lead_demand, m, n, "lead_demand"),
            _matrix(sell_through, m, n, "sell_through"),
            np.asarray(unit_value, dtype=float),
            inbound,
            dispersion,
        )

    def without(self, ids: set[str]) -> Candidates:
        """The same candidates minus some locations (a store that refused)."""
        keep = np.array([i not in ids for i in self.ids], dtype=bool)
        inbound, spread = (None if a is None else a[keep] for a in (self.inbound, self.dispersion))
        rows = (getattr(self, f)[keep] for f in _ROW_FIELDS)
        return Candidates(*rows, self.unit_value, inbound, spread)


_ROW_FIELDS = (
    "ids",
    "lat",
    "lon",
    "is_dc",
    "atp",
    "confidence",
    "conflicts",
    "lead_demand",
    "sell_through",
)


@dataclass(frozen=True)
class Order:
    """An online order: SKUs and quantities per line, where it goes, days until it is promised.

    >>> cand = Candidates.build(ids=["S1", "S2", "DC"], lat=[34.05, 34.2, 34.0],
    ...     lon=[-118.25, -118.4, -117.4], is_dc=[False, False, True],
    ...     atp=[[5.0, 0.0], [0.0, 5.0], [np.inf, np.inf]], confidence=[[1.0, 1.0]] * 3,
    ...     lead_demand=[[0.0, 0.0]] * 3, sell_through=[[0.0, 0.0]] * 3, unit_value=[5.0, 5.0])
    >>> order = Order("o2", np.array(["A", "B"]), np.array([1.0, 1.0]), lat=34.06, lon=-118.3)
    >>> plan = Router().plan(order, cand)  # each store has one line: the DC ships both
    >>> plan.kind, [str(r) for r in plan.reasons]
    ('dc', ['SHIP_FROM_DC', 'FEWER_PARCELS', 'CHEAPER_SHIPPING'])
    """

    order_id: str
    skus: np.ndarray
    qty: np.ndarray
    lat: float
    lon: float
    promised_days: int = 2
    zone: str | None = None  # the delivery zone (city) whose courier runs a parcel can join


@dataclass(frozen=True)
class Shipment:
    """One location's part of a plan.

    >>> cand = Candidates.build(ids=["S1"], lat=[34.05], lon=[-118.25], is_dc=[False],
    ...     atp=[[5.0]], confidence=[[1.0]], lead_demand=[[0.0]], sell_through=[[0.0]],
    ...     unit_value=[5.0])
    >>> order = Order("o1", np.array(["A"]), np.array([2.0]), lat=34.06, lon=-118.3)
    >>> s = Router().plan(order, cand).shipments[0]
    >>> s.location_id, s.is_dc, s.skus, s.qty, s.days
    ('S1', False, ('A',), (2.0,), 0)
    """

    location_id: str
    is_dc: bool
    lines: tuple[int, ...]  # the order's line indexes shipped from here
    skus: tuple[str, ...]
    qty: tuple[float, ...]
    km: float
    days: int


@dataclass
class Plan:
    """Where each line ships from, the expected cost by component, and the reason codes.

    >>> cand = Candidates.build(ids=["S1", "DC"], lat=[34.05, 34.0], lon=[-118.25, -117.4],
    ...     is_dc=[False, True], atp=[[0.0], [np.inf]], confidence=[[1.0], [1.0]],
    ...     lead_demand=[[0.0], [0.0]], sell_through=[[0.0], [0.0]], unit_value=[5.0])
    >>> plan = Router().plan(Order("o1", np.array(["A"]), np.array([1.0]), 34.06, -118.3), cand)
    >>> plan.kind, plan.delivery_days, sorted(plan.components)[:3]
    ('dc', 1, ['late', 'lost_sale', 'markdown_relief'])
    """

    order_id: str
    shipments: list[Shipment]
    cost: float
    components: dict[str, float]
    reasons: list[RouteReason] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if len(self.shipments) > 1:
            return "split"
        return "dc" if self.shipments[0].is_dc else "store"

    @property
    def delivery_days(self) -> int:
        return max(s.days for s in self.shipments)


class NoPlan(ValueError):
    """No location can ship a line of the order (no store has it and no DC is a candidate).

    >>> cand = Candidates.build(ids=["S1"], lat=[34.05], lon=[-118.25], is_dc=[False],
    ...     atp=[[0.0]], confidence=[[1.0]], lead_demand=[[0.0]], sell_through=[[0.0]],
    ...     unit_value=[5.0])
    >>> try:
    ...     Router().plan(Order("o3", np.array(["A"]), np.array([1.0]), 34.0, -118.0), cand)
    ... except NoPlan as err:
    ...     print(err)
    order o3: no store holds a line and no DC is a candidate
    """


@dataclass
class _Priced:
    """Component costs of C assignments (each (C,)), with what they were computed from."""

    assign: np.ndarray  # (C, L) candidate index per line
    parts: dict[str, np.ndarray]
    units: np.ndarray  # (C, M) units shipped per location
    days: np.ndarray  # (M,)

    @property
    def total(self) -> np.ndarray:
        return (
            sum(self.parts[k] for k in COMPONENTS if k != "markdown_relief")
            - self.parts["markdown_relief"]
        )


@dataclass
class Router:
    """Chooses the cheapest plan over the ``max_stores`` nearest stores with stock and the
    nearest DC, enumerating at most ``max_combos`` assignments of lines to locations.

    >>> cand = Candidates.build(ids=["S1", "DC"], lat=[34.05, 34.0], lon=[-118.25, -117.4],
    ...     is_dc=[False, True], atp=[[5.0], [np.inf]], confidence=[[1.0], [1.0]],
    ...     lead_demand=[[0.0], [0.0]], sell_through=[[0.0], [0.0]], unit_value=[5.0])
    >>> order = Order("o1", np.array(["A"]), np.array([1.0]), lat=34.06, lon=-118.3)
    >>> router = Router()
    >>> router.plan(order, cand).kind, router.dc_only(order, cand).kind  # chosen, and the fallback
    ('store', 'dc')
    """

    cost: CostModel = field(default_factory=CostModel)
    max_stores: int = 6
    max_combos: int = 4096
    # Drops a store's van to a zone is expected to carry today when the day's runs have no
    # outlook (``CourierRuns.expected_fill``: what earlier days' runs carried to the zone, less
    # other stores' parcels there today). A same-day parcel is priced at no more than a stop
    # plus a van's run shared over that fill even before the van pays (the first parcels of a
    # day would otherwise each pay a courier trip of their own and go elsewhere, so few vans
    # would fill); 0: the marginal cost given earlier orders only. A full van (the default
    # ``run_drops``, 40) was chosen on the validation slice over 0 (docs/records/routing.md);
    # the twin bills what the vans really carried either way.
    run_fill: float = 40.0

    def plan(self, order: Order, cand: Candidates, runs: CourierRuns | None = None) -> Plan:
        """The cheapest plan for ``order``, with its reasons. With ``runs`` (today's courier
        runs), a same-day parcel to the order's zone is priced at what it adds to them."""
        qty = np.asarray(order.qty, dtype=float)
        if qty.ndim != 1 or len(qty) == 0 or (qty <= 0).any():
            raise ValueError(f"order {order.order_id}: quantities must be positive, got {qty}")
        km = haversine_km(cand.lat, cand.lon, order.lat, order.lon)
        short = self._short_list(cand, km, qty)
        if not len(short):
            raise NoPlan(f"order {order.order_id}: no store holds a line and no DC is a candidate")
        line = self._line_costs(cand, qty, short)
        assign = _assignments(len(short), len(qty))
        priced = self._price(assign, line, cand, km, qty, short, order, runs)
        best = int(np.argmin(priced.total))
        if not np.isfinite(priced.total[best]):
            raise NoPlan(f"order {order.order_id}: no candidate location can ship every line")
        plan = self._plan_of(order, cand, km, short, priced, best)
        default = self.nearest_with_stock(order, cand, runs)
        plan.reasons = self._reasons(plan, default, cand, short, qty)
        return plan

    def nearest_with_stock(
        self, order: Order, cand: Candidates, runs: CourierRuns | None = None
    ) -> Plan:
        """The default of order-management systems: the nearest store holding every line, else
        each line from its nearest store with stock, else the nearest DC (priced alike)."""
        qty = np.asarray(order.qty, dtype=float)
        km = haversine_km(cand.lat, cand.lon, order.lat, order.lon)
        has = (cand.atp >= qty[None, :]) & ~cand.is_dc[:, None]
        stores = np.flatnonzero(has.all(axis=1))
        if len(stores):
            pick = np.full(len(qty), stores[np.argmin(km[stores])])
        else:
            far = np.where(has, km[:, None], np.inf)
            pick = np.argmin(far, axis=0)
            dcs = np.flatnonzero(cand.is_dc)
            if not len(dcs) and not np.isfinite(far.min(axis=0)).all():
                raise NoPlan(f"order {order.order_id}: no store has every line and no DC")
            if len(dcs):
                pick = np.where(np.isfinite(far.min(axis=0)), pick, dcs[np.argmin(km[dcs])])
        short = np.unique(pick)
        assign = np.searchsorted(short, pick)[None, :]
        line = self._line_costs(cand, qty, short)
        priced = self._price(assign, line, cand, km, qty, short, order, runs)
        plan = self._plan_of(order, cand, km, short, priced, 0)
        plan.reasons = [*_shape(plan), RouteReason.NEAREST_WITH_STOCK]
        return plan

    def dc_only(self, order: Order, cand: Candidates, runs: CourierRuns | None = None) -> Plan:
        """Every line from the nearest DC."""
        qty = np.asarray(order.qty, dtype=float)
        km = haversine_km(cand.lat, cand.lon, order.lat, order.lon)
        dcs = np.flatnonzero(cand.is_dc)
        if not len(dcs):
            raise NoPlan(f"order {order.order_id}: no DC among the candidates")
        short = dcs[[np.argmin(km[dcs])]]
        assign = np.zeros((1, len(qty)), dtype=int)
        line = self._line_costs(cand, qty, short)
        priced = self._price(assign, line, cand, km, qty, short, order, runs)
        plan = self._plan_of(order, cand, km, short, priced, 0)
        plan.reasons = _shape(plan)
        return plan

    # ---- the arithmetic ----------------------------------------------------------------

    def _short_list(self, cand: Candidates, km: np.ndarray, qty: np.ndarray) -> np.ndarray:
        """The nearest stores holding at least one line, then the nearest DC."""
        lines = len(qty)
        stores = np.flatnonzero(~cand.is_dc & (cand.atp >= qty[None, :]).any(axis=1))
        room = self.max_stores
        while room > 1 and (room + 1) ** lines > self.max_combos:
            room -= 1
        stores = stores[np.argsort(km[stores], kind="stable")][:room]
        dcs = np.flatnonzero(cand.is_dc)
        dc = dcs[[np.argmin(km[dcs])]] if len(dcs) else dcs
        return np.concatenate([stores, dc]).astype(int)

    def _line_costs(
        self, cand: Candidates, qty: np.ndarray, rows: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Per (short-listed location, line): pick, risk, lost sale, relief; inf if short."""
        c = self.cost
        is_dc = cand.is_dc[rows][:, None]
        atp = cand.atp[rows]
        store_atp = np.where(is_dc, qty, atp)  # a DC's figure takes no part in the store terms
        value = cand.unit_value[None, :]
        risk = not_there_probability(
            cand.confidence[rows],
            cand.conflicts[rows],
            store_atp,
            qty,
            c.conflict_decay,
            c.confidence_power,
        )
        inbound = 0.0 if cand.inbound is None else np.where(is_dc, 0.0, cand.inbound[rows])
        spread = 1.0 if cand.dispersion is None else cand.dispersion[rows]
        lead = np.where(is_dc, 0.0, cand.lead_demand[rows])
        stock = store_atp + inbound
        lost = extra_lost_units(lead, stock, qty, spread)
        sell = np.where(is_dc, 0.0, cand.sell_through[rows])
        relief = markdown_units_relieved(sell, stock, qty, spread) * c.markdown_depth * value
        feasible = atp >= qty[None, :]
        zero = np.zeros_like(atp)
        return {
            "pick": np.where(feasible, c.pick(is_dc) + zero, np.inf),
            "risk": np.where(is_dc, 0.0, risk * c.cancel_line),
            "lost_sale": np.where(is_dc, 0.0, lost * c.store_margin * value),
            "markdown_relief": np.where(is_dc, 0.0, relief),
        }

    def _price(self, assign, line, cand, km, qty, rows, order: Order, runs) -> _Priced:
        c = self.cost
        m, lines = len(rows), len(qty)
        cols = np.arange(lines)
        onehot = assign[:, :, None] == np.arange(m)[None, None, :]  # (C, L, M)
        units = (onehot * qty[None, :, None]).sum(axis=1)  # (C, M)
        used = units > 0
        courier = self._courier_prices(runs, order.zone, cand.ids[rows], km[rows], cand.is_dc[rows])
        ship = c.shipping(km[rows][None, :], cand.is_dc[rows][None, :], units, courier)
        days = ship.days[0]
        late = np.maximum(np.where(used, days[None, :], 0).max(axis=1) - order.promised_days, 0)
        parts = {k: line[k][assign, cols].sum(axis=1) for k in line}
        parts["shipping"] = np.where(used, ship.cost, 0.0).sum(axis=1)
        parts["split"] = (used.sum(axis=1) - 1) * c.split_penalty
        parts["late"] = late * c.late_per_day
        return _Priced(assign, parts, units, days)

    def _courier_prices(self, runs, zone, ids, km, is_dc) -> np.ndarray | None:
        """Each location's price of a same-day parcel to ``zone`` given today's runs (None:
        its own courier trip, the per-parcel tariff)."""
        if runs is None or zone is None:
            return None
        c = self.cost
        local = c.is_local(km, is_dc)
        out = c.courier(np.asarray(km, dtype=float))
        for j in np.flatnonzero(local):
            origin, dist = str(ids[j]), float(km[j])
            price = runs.marginal(origin, zone, dist)
            fill = runs.expected_fill(origin, zone)
            fill = self.run_fill if fill is None else min(fill, c.run_drops)
            if fill > 0:
                price = min(price, c.run_drop + runs.run_cost(origin, zone, dist) / fill)
            out[j] = price
        return out[None, :]

    def _plan_of(self, order, cand, km, rows, priced: _Priced, best: int) -> Plan:
        assign = priced.assign[best]
        shipments = []
        for j in np.unique(assign):
            lines = tuple(int(i) for i in np.flatnonzero(assign == j))
            loc = rows[j]
            shipments.append(
                Shipment(
                    str(cand.ids[loc]),
                    bool(cand.is_dc[loc]),
                    lines,
                    tuple(str(order.skus[i]) for i in lines),
                    tuple(float(order.qty[i]) for i in lines),
                    round(float(km[loc]), 1),
                    int(priced.days[j]),
                )
            )
        components = {k: round(float(priced.parts[k][best]), 4) for k in COMPONENTS}
        return Plan(order.order_id, shipments, round(float(priced.total[best]), 4), components)

    def _reasons(self, plan: Plan, default: Plan, cand, rows, qty) -> list[RouteReason]:
        reasons = _shape(plan)
        if plan.delivery_days == 0:
            reasons.append(RouteReason.SAME_DAY)
        stocked = ((cand.atp >= qty[None, :]) & ~cand.is_dc[:, None]).any(axis=0)
        if not stocked.all():
            reasons.append(RouteReason.NO_STORE_STOCK)
        if _where(plan) == _where(default):
            return [*reasons, RouteReason.NEAREST_WITH_STOCK]
        mine, theirs = plan.components, default.components
        if theirs["lost_sale"] - mine["lost_sale"] > _EPS:
            reasons.append(RouteReason.STORE_DEMAND_PROTECTED)
        if theirs["risk"] - mine["risk"] > _EPS:
            reasons.append(RouteReason.STOCK_RISK_AVOIDED)
            ids = list(cand.ids)
            if any(
                cand.conflicts[ids.index(s.location_id), list(s.lines)].sum() > 0
                for s in default.shipments
            ):
                reasons.append(RouteReason.RECENT_CONFLICTS_AVOIDED)
        if mine["markdown_relief"] - theirs["markdown_relief"] > _EPS:
            reasons.append(RouteReason.MARKDOWN_RELIEF)
        if len(plan.shipments) < len(default.shipments):
            reasons.append(RouteReason.FEWER_PARCELS)
        direct = ("shipping", "pick", "split")
        if sum(mine[k] for k in direct) < sum(theirs[k] for k in direct) - _EPS:
            reasons.append(RouteReason.CHEAPER_SHIPPING)
        return reasons


def _assignments(locations: int, lines: int) -> np.ndarray:
    """Every assignment of ``lines`` lines to ``locations`` locations, (locations**lines, lines)."""
    grids = np.indices((locations,) * lines).reshape(lines, -1).T
    return grids.astype(np.int64)


def _shape(plan: Plan) -> list[RouteReason]:
    kind = plan.kind
    reasons = [
        {
            "split": RouteReason.SPLIT_SHIPMENT,
            "dc": RouteReason.SHIP_FROM_DC,
            "store": RouteReason.SHIP_FROM_STORE,
        }[kind]
    ]
    if any(s.days > 0 for s in plan.shipments) and plan.components["late"] > 0:
        reasons.append(RouteReason.LATE_AGAINST_PROMISE)
    return reasons


def _where(plan: Plan) -> set[tuple[str, tuple[int, ...]]]:
    return {(s.location_id, s.lines) for s in plan.shipments}
