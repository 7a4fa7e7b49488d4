"""``POST /v1/orders``: plan an online order across the network, reserve it in the stores,
re-route when a store refuses, and publish the decision.

The plan comes from ``hub.routing.Router`` over what the hub's live view knows: each store's
book (ATP), whether it is online, its ledger confidence (times freshness), a conflict on the SKU
in the last ``RECENT_CONFLICT_S``, and the store's reorder point (from its replenishment alerts)
as its expected demand over its lead time. Each store line is reserved as an ordinary
``reservation`` event; the store's last-unit rule decides. A store that grants less than asked
(or does not answer, or is offline by then) is dropped, what it did grant is released, and the
order is planned again without it, at most ``MAX_ATTEMPTS`` times. The decision is published
on ``<prefix>._hub.order_decision`` (stream ``SHELFCAST_DECISIONS``) as an ``OrderDecision``.
An ``order_id`` is decided once (``hub.order_book``): a resend gets the first decision back. A
store that answers after the hub stopped waiting has its late grant released (``hub.api``).

>>> OrderRequest(order_id="web1", lines=[{"sku": "A", "qty": 1}],
...              delivery={"lat": 34.05, "lon": -118.24}, promised_date="2026-01-05").lines[0].qty
1
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.fulfilment_cost import CostModel
from hub.network_map import NetworkMap
from hub.order_book import fingerprint
from hub.route_reasons import RouteReason
from hub.routing import Candidates, NoPlan, Order, Plan, Router

SCHEMA_VERSION = 1
MAX_ATTEMPTS = 3
RECENT_CONFLICT_S = 7 * 86400.0
DECISION_KIND = "order_decision"


class OrderLine(BaseModel):
    """One line of an online order.

    >>> from pydantic import ValidationError
    >>> try:
    ...     OrderLine(sku="A", qty=0)
    ... except ValidationError as err:
    ...     print(err.errors()[0]["loc"], err.errors()[0]["type"])
    ('qty',) greater_than
    """

    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=128)
    qty: int = Field(gt=0, le=10_000)


class Delivery(BaseModel):
    """Where the order goes (WGS84).

    >>> from pydantic import ValidationError
    >>> try:
    ...     Delivery(lat=34.05, lon=-218.24)
    ... except ValidationError as err:
    ...     print(err.errors()[0]["loc"], err.errors()[0]["type"])
    ('lon',) greater_than_equal
    """

    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class OrderRequest(BaseModel):
    """An online order to plan and reserve.

    >>> from pydantic import ValidationError
    >>> try:
    ...     OrderRequest(order_id="web1", lines=[{"sku": "A", "qty": 1}, {"sku": "A", "qty": 2}],
    ...                  delivery={"lat": 34.05, "lon": -118.24}, promised_date="2026-01-05")
    ... except ValidationError as err:
    ...     print(err.errors()[0]["msg"])
    Value error, each SKU may appear on one line only (add the quantities)
    """

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    lines: list[OrderLine] = Field(min_length=1, max_length=20)
    delivery: Delivery
    promised_date: date = Field(description="the date promised to the customer")

    @field_validator("lines")
    @classmethod
    def _one_line_per_sku(cls, lines: list[OrderLine]) -> list[OrderLine]:
        skus = [line.sku for line in lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each SKU may appear on one line only (add the quantities)")
        return lines


class ShippedLine(BaseModel):
    """A line of a shipment and what its location granted (a DC grants without asking).

    >>> line = ShippedLine(sku="A", qty=3, granted=2)  # the store had two of the three units
    >>> line.qty - line.granted
    1.0
    """

    sku: str
    qty: float
    granted: float


class ShipmentOut(BaseModel):
    """One location's part of the plan.

    >>> s = ShipmentOut(location_id="DC1", kind="dc", km=83.2, transit_days=1,
    ...                 lines=[ShippedLine(sku="A", qty=1, granted=1)])
    >>> s.model_dump()["transit_days"], s.lines[0].granted
    (1, 1.0)
    """

    location_id: str
    kind: Literal["store", "dc"]
    km: float
    transit_days: int = Field(description="0: delivered today (local courier)")
    lines: list[ShippedLine]


class OrderDecision(BaseModel):
    """The hub's decision for an online order: the API's answer and the JetStream message."""

    model_config = ConfigDict(populate_by_name=True)
    schema_version: int = Field(SCHEMA_VERSION, alias="schema", description="schema version")
    kind: Literal["order_decision"] = DECISION_KIND
    message_id: str = Field(description="unique id; Nats-Msg-Id of the message")
    order_id: str
    created_at: datetime
    status: Literal["reserved", "unfulfillable"]
    plan_kind: Literal["store", "dc", "split"] | None
    shipments: list[ShipmentOut]
    promised_date: date
    delivery_days: int | None = Field(description="days until the last shipment arrives")
    cost: float | None = Field(description="expected cost of the plan (dollars)")
    cost_components: dict[str, float] = Field(description="shipping, pick, split, late, risk, ...")
    reason_codes: list[RouteReason] = Field(description="why (RouteReason)")
    refused_by: list[str] = Field(description="stores that refused and were routed around")
    store_conflicts: list[dict[str, Any]] = Field(
        default_factory=list,
        description="the conflicts of the stores that cut a line short (their last-unit rule), "
        "as each store's ledger reported them",
    )
    attempts: int
    detail: str | None = None


class OrderDesk:
    """Plans, reserves and re-routes orders for one hub API process."""

    def __init__(self, runtime: Any, network: NetworkMap, cost: CostModel | None = None):
        self.rt = runtime
        self.network = network
        self.router = Router(cost or CostModel())
        self.conflicts: list[dict[str, Any]] = []  # what the stores reported, every attempt

    async def take(self, req: OrderRequest) -> tuple[dict[str, Any], bool]:
        """The order's decision (JSON), decided and published once per ``order_id``; and
        whether it was decided before (a resend gets the first decision back)."""
        book = self.rt.orders
        digest = fingerprint(req.model_dump(mode="json"))
        claim = await book.claim(req.order_id, digest)
        if claim.decision is not None:
            return claim.decision, True
        try:
            decision = await self.decide(req)
            await self.rt.publish_decision(decision)
        except BaseException:
            await book.abandon(req.order_id, claim.revision)
            raise
        body = decision.model_dump(mode="json", by_alias=True)
        await book.settle(req.order_id, digest, claim.revision, body)
        return body, False

    async def decide(self, req: OrderRequest) -> OrderDecision:
        today = datetime.now(UTC).date()
        order = Order(
            req.order_id,
            np.array([line.sku for line in req.lines], dtype=object),
            np.array([float(line.qty) for line in req.lines]),
            req.delivery.lat,
            req.delivery.lon,
            max((req.promised_date - today).days, 0),
        )
        refused: list[str] = []
        extra: list[RouteReason] = []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            cand, skipped = self.candidates(order, exclude=set(refused))
            if skipped:
                extra.append(RouteReason.STORE_OFFLINE_SKIPPED)
            try:
                plan = self.router.plan(order, cand)
            except NoPlan as err:
                return self._decision(req, None, {}, refused, attempt, extra, str(err))
            tag = f"a{attempt}"  # each attempt's reservations are new events at the store
            granted, short = await self._reserve(req, plan, tag)
            if not short:
                if refused:
                    extra.append(RouteReason.REROUTED_AFTER_REFUSAL)
                return self._decision(req, plan, granted, refused, attempt, extra)
            refused += short
            for (store, sku), qty in granted.items():
                await self.rt.release_at(req.order_id, store, sku, qty, tag)
        detail = f"stores {', '.join(refused)} refused; no plan after {MAX_ATTEMPTS} attempts"
        return self._decision(req, None, {}, refused, MAX_ATTEMPTS, extra, detail)

    def candidates(self, order: Order, exclude: set[str]) -> tuple[Candidates, bool]:
        """The located online stores (minus ``exclude``) and DCs, from the live view; also
        whether an offline store had stock for a line."""
        view, now = self.rt.view, datetime.now(UTC).timestamp()
        rows: list[dict[str, Any]] = []
        skipped = False
        figures = [
            {s["store_id"]: s for s in view.availability(sku)["stores"]} for sku in order.skus
        ]
        for sid, site in sorted(self.network.stores.items()):
            if sid in exclude:
                continue
            figs = [f.get(sid) for f in figures]
            if not view.online(sid):
                has = any(f and f["atp"] >= q for f, q in zip(figs, order.qty, strict=True))
                skipped = skipped or has
                continue
            rows.append(_store_row(site, figs, view.by_sku, order.skus, now))
        for did, site in sorted(self.network.dcs.items()):
            n = len(order.skus)
            rows.append(
                {
                    "id": did,
                    "lat": site.lat,
                    "lon": site.lon,
                    "dc": True,
                    "atp": [np.inf] * n,
                    "conf": [1.0] * n,
                    "conflicts": [0.0] * n,
                    "lead": [0.0] * n,
                }
            )
        n = len(order.skus)
        cand = Candidates.build(
            ids=[r["id"] for r in rows],
            lat=[r["lat"] for r in rows],
            lon=[r["lon"] for r in rows],
            is_dc=[r["dc"] for r in rows],
            atp=np.array([r["atp"] for r in rows]).reshape(len(rows), n),
            confidence=np.array([r["conf"] for r in rows]).reshape(len(rows), n),
            conflicts=np.array([r["conflicts"] for r in rows]).reshape(len(rows), n),
            lead_demand=np.array([r["lead"] for r in rows]).reshape(len(rows), n),
            sell_through=np.full((len(rows), n), np.inf),  # no sell-through feed yet
            unit_value=np.zeros(n),  # no price feed: lost sales and markdowns cost 0 here
        )
        return cand, skipped

    async def _reserve(self, req: OrderRequest, plan: Plan, tag: str):
        """Reserve every store line at once; the stores that fell short (or did not answer)."""
        asks = [
            (s.location_id, sku, qty)
            for s in plan.shipments
            if not s.is_dc
            for sku, qty in zip(s.skus, s.qty, strict=True)
        ]
        answers = await asyncio.gather(
            *(self.rt.reserve_at(req.order_id, store, sku, qty, tag) for store, sku, qty in asks)
        )
        granted: dict[tuple[str, str], float] = {}
        short: list[str] = []
        for (store, sku, qty), (got, conflict) in zip(asks, answers, strict=True):
            if conflict is not None:
                self.conflicts.append({"store_id": store, "sku": sku, **conflict})
            if got is not None and got > 0:
                granted[(store, sku)] = got
            if got is None or got < qty:
                short.append(store)
        return granted, sorted(set(short))

    def _decision(self, req, plan: Plan | None, granted, refused, attempts, extra, detail=None):
        shipments = []
        if plan is not None:
            for s in plan.shipments:
                lines = [
                    ShippedLine(
                        sku=sku,
                        qty=q,
                        granted=q if s.is_dc else granted.get((s.location_id, sku), 0),
                    )
                    for sku, q in zip(s.skus, s.qty, strict=True)
                ]
                shipments.append(
                    ShipmentOut(
                        location_id=s.location_id,
                        kind="dc" if s.is_dc else "store",
                        km=s.km,
                        transit_days=s.days,
                        lines=lines,
                    )
                )
        reasons = [*(plan.reasons if plan else []), *dict.fromkeys(extra)]
        return OrderDecision(
            message_id=str(uuid.uuid4()),
            order_id=req.order_id,
            created_at=datetime.now(UTC),
            status="reserved" if plan is not None else "unfulfillable",
            plan_kind=plan.kind if plan else None,
            shipments=shipments,
            promised_date=req.promised_date,
            delivery_days=plan.delivery_days if plan else None,
            cost=plan.cost if plan else None,
            cost_components=plan.components if plan else {},
            reason_codes=reasons,
            refused_by=refused,
            store_conflicts=self.conflicts,
            attempts=attempts,
            detail=detail,
        )


def _store_row(site, figs, by_sku, skus, now: float) -> dict[str, Any]:
    conflicts = []
    for fig in figs:
        last = (fig or {}).get("last_conflict") or {}
        at = last.get("created_at")
        recent = (
            at is not None and now - datetime.fromisoformat(at).timestamp() <= RECENT_CONFLICT_S
        )
        conflicts.append(1.0 if recent else 0.0)
    lead = [
        float((by_sku.get(sku, {}).get(site.site_id) or {}).get("reorder_point") or 0.0)
        for sku in skus
    ]
    return {
        "id": site.site_id,
        "lat": site.lat,
        "lon": site.lon,
        "dc": False,
        "atp": [max(float(f["atp"]), 0.0) if f else 0.0 for f in figs],
        "conf": [float(f["confidence"]) if f else 0.0 for f in figs],
        "conflicts": conflicts,
        "lead": lead,
    }
