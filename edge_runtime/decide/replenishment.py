"""Replenishment trigger: periodic-review order-up-to with safety stock, pack sizes, MOQ, capacity.

Rules, per SKU, at each review (vectorised over SKUs by :func:`order_quantities`):

1. Protection period ``P = lead_time_days + review_days``.
2. Order-up-to level ``S = mean_daily * P + z * sigma_daily * sqrt(P)`` where ``sigma_daily`` is
   the forecast error's daily standard deviation and ``z`` the service-level factor
   (:func:`order_quantities`); or ``S = mean_daily * P + buffer`` with a per-SKU buffer sized by
   marginal analysis (:func:`order_quantities_with_buffer`, :mod:`edge_runtime.decide.service_level`).
3. Inventory position ``IP = ATP + on_order``; raw need ``S - IP``; nothing when ``<= 0``.
4. Round the need **up** to whole packs; raise it to the minimum order quantity (itself rounded up
   to whole packs).
5. Cap by capacity: ``IP + qty`` never exceeds ``capacity`` (shelf + backroom); the cap is rounded
   **down** to whole packs. If the capped quantity falls below the MOQ there is no order rather
   than one the supplier would refuse.

:class:`Replenisher` adds the open-order rule: no second trigger for a SKU while its order is open;
a receipt for the SKU (or for the order id) closes it.

>>> import numpy as np
>>> q = order_quantities(mean_daily=np.array([10.0]), sigma_daily=np.array([3.0]),
...     atp=np.array([12.0]), on_order=np.array([0.0]), lead_time_days=2, review_days=1,
...     z=1.645, pack_size=np.array([6.0]), moq=np.array([12.0]), capacity=np.array([100.0]))
>>> float(q.order_up_to[0]).__round__(2), float(q.quantity[0])
(38.55, 30.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_runtime.messages import ReasonCode


@dataclass(frozen=True)
class OrderPlan:
    """Per-SKU numbers behind a replenishment decision (arrays aligned with the inputs).

    >>> plan = order_quantities_with_buffer(np.array([10.0]), np.array([5.0]), atp=np.array([40.0]),
    ...                                     lead_time_days=2, review_days=7, pack_size=6.0)
    >>> plan.order_up_to.tolist(), plan.safety_stock.tolist(), plan.quantity.tolist()
    ([95.0], [5.0], [60.0])
    >>> plan.capped.tolist(), plan.below_moq.tolist()
    ([False], [False])
    """

    order_up_to: np.ndarray
    safety_stock: np.ndarray
    inventory_position: np.ndarray
    quantity: np.ndarray  # 0 where no order
    capped: np.ndarray  # bool: capacity reduced the quantity
    below_moq: np.ndarray  # bool: capacity left less than the MOQ, so no order


def _arr(x, n: int, default: float) -> np.ndarray:
    if x is None:
        return np.full(n, default, dtype=np.float64)
    a = np.asarray(x, dtype=np.float64)
    return np.broadcast_to(a, (n,)).astype(np.float64)


def order_quantities(
    mean_daily: np.ndarray,
    sigma_daily: np.ndarray,
    atp: np.ndarray,
    on_order: np.ndarray | None = None,
    *,
    lead_time_days: float,
    review_days: float = 1.0,
    z: float = 1.645,
    pack_size: np.ndarray | float | None = None,
    moq: np.ndarray | float | None = None,
    capacity: np.ndarray | float | None = None,
) -> OrderPlan:
    """Apply the module's rules 1-5 to every SKU at once."""
    mean_daily = np.asarray(mean_daily, dtype=np.float64)
    period = _protection_period(lead_time_days, review_days)
    safety = z * _arr(sigma_daily, mean_daily.shape[0], 0.0) * np.sqrt(period)
    return _plan(mean_daily * period + safety, safety, atp, on_order, pack_size, moq, capacity)


def order_quantities_with_buffer(
    mean_daily: np.ndarray,
    buffer: np.ndarray,
    atp: np.ndarray,
    on_order: np.ndarray | None = None,
    *,
    lead_time_days: float,
    review_days: float = 1.0,
    pack_size: np.ndarray | float | None = None,
    moq: np.ndarray | float | None = None,
    capacity: np.ndarray | float | None = None,
) -> OrderPlan:
    """Rules 1 and 3-5 with the safety stock given per SKU instead of ``z * sigma * sqrt(P)``:
    ``S = mean_daily * P + buffer`` (e.g. :func:`edge_runtime.decide.service_level.buffer_exceeded_every`,
    which sizes each SKU's buffer by the lost sales a unit of it saves).

    >>> plan = order_quantities_with_buffer(np.array([10.0, 10.0]), np.array([5.0, 200.0]),
    ...     atp=np.array([40.0, 40.0]), lead_time_days=2, review_days=7, pack_size=6.0)
    >>> plan.order_up_to.tolist(), plan.quantity.tolist()
    ([95.0, 290.0], [60.0, 252.0])
    """
    mean_daily = np.asarray(mean_daily, dtype=np.float64)
    period = _protection_period(lead_time_days, review_days)
    safety = _arr(buffer, mean_daily.shape[0], 0.0)
    return _plan(mean_daily * period + safety, safety, atp, on_order, pack_size, moq, capacity)


def _protection_period(lead_time_days: float, review_days: float) -> float:
    if lead_time_days <= 0 or review_days < 0:
        raise ValueError(
            f"need lead_time_days > 0 and review_days >= 0, got {lead_time_days}, {review_days}"
        )
    return lead_time_days + review_days


def _plan(s_level, safety, atp, on_order, pack_size, moq, capacity) -> OrderPlan:
    """Rules 3-5 (position, packs and MOQ, capacity) for order-up-to levels ``s_level``."""
    n = s_level.shape[0]
    pack = _arr(pack_size, n, 1.0)
    if np.any(pack <= 0):
        raise ValueError(f"pack_size must be > 0 (SKU index {int(np.argmin(pack))})")
    moq_units = np.ceil(_arr(moq, n, 0.0) / pack) * pack
    cap = _arr(capacity, n, np.inf)
    position = _arr(atp, n, 0.0) + _arr(on_order, n, 0.0)
    need = s_level - position
    qty = np.where(need > 0, np.maximum(np.ceil(need / pack - 1e-9) * pack, moq_units), 0.0)
    room = np.floor(np.maximum(cap - position, 0.0) / pack) * pack
    capped = qty > room
    qty = np.minimum(qty, room)
    below_moq = (need > 0) & (qty < np.maximum(moq_units, pack))
    qty = np.where(below_moq, 0.0, qty)
    return OrderPlan(s_level, safety, position, qty, capped & (qty > 0), below_moq)


@dataclass(frozen=True)
class OrderTrigger:
    """One replenishment trigger, with the numbers behind it.

    >>> r = Replenisher(lead_time_days=2, items={"a": {"pack_size": 6}})
    >>> t = r.review(["a"], np.array([5.0]), np.array([2.0]), np.array([3.0]))[0]
    >>> t.sku, t.quantity, t.reason_codes  # whole packs up to the order-up-to level
    ('a', 18.0, ('BELOW_ORDER_UP_TO',))
    """

    sku: str
    quantity: float
    order_up_to: float
    safety_stock: float
    inventory_position: float
    reason_codes: tuple[str, ...]

    def to_message(
        self, store_id: str, model_version: str, event_time=None, evidence=None, **stock
    ):
        """The outgoing ``ReplenishmentAlert``; ``evidence`` adds to the trigger's numbers,
        ``stock`` may add atp, on_hand, reserved (and any other field of the message).

        >>> t = OrderTrigger("A", 24.0, 30.5, 6.5, 4.0, ("BELOW_ORDER_UP_TO",))
        >>> m = t.to_message("S1", "m1", atp=4.0)
        >>> m.recommended_qty, m.order_up_to, m.evidence["safety_stock"]
        (24, 30.5, 6.5)
        """
        from edge_runtime.messages import ReplenishmentAlert

        return ReplenishmentAlert(
            store_id=store_id,
            sku=self.sku,
            event_time=event_time,
            model_version=model_version,
            recommended_qty=round(self.quantity),
            order_up_to=self.order_up_to,
            reason_codes=list(self.reason_codes),
            evidence={
                "safety_stock": self.safety_stock,
                "inventory_position": self.inventory_position,
                **(evidence or {}),
            },
            **stock,
        )


@dataclass
class OpenOrder:
    """An order triggered and not yet received (``order_id``: once one came back for it).

    >>> r = Replenisher(lead_time_days=2)
    >>> _ = r.review(["a"], np.array([5.0]), np.array([2.0]), np.array([3.0]))
    >>> r.open_orders["a"]  # id None: no order id has come back for it yet
    OpenOrder(sku='a', quantity=18.0, order_id=None)
    """

    sku: str
    quantity: float
    order_id: str | None = None


class Replenisher:
    """Order-up-to triggers with the open-order rule (see the module docstring for the rules).

    >>> import numpy as np
    >>> r = Replenisher(lead_time_days=2, review_days=1)
    >>> [t.sku for t in r.review(["a", "b"], np.array([5.0, 1.0]), np.array([2.0, 1.0]),
    ...                          np.array([3.0, 50.0]))]
    ['a']
    >>> r.review(["a"], np.array([5.0]), np.array([2.0]), np.array([3.0]))  # a is open: no duplicate
    []
    >>> r.receive("a", 20.0)
    True
    >>> "a" in r.open_orders
    False
    """

    def __init__(
        self,
        lead_time_days: float,
        review_days: float = 1.0,
        z: float = 1.645,
        items: dict[str, dict[str, float]] | None = None,
    ):
        self.lead_time_days = lead_time_days
        self.review_days = review_days
        self.z = z
        # Per-SKU master data: pack_size, moq, capacity (defaults 1, 0, unlimited).
        self.items = items or {}
        self.open_orders: dict[str, OpenOrder] = {}
        # Orders opened, changed or closed (None) since the last ``take_changes``: what the
        # gateway writes to the ``open_orders`` table in the transaction that decided them.
        self._changes: dict[str, OpenOrder | None] = {}

    def take_changes(self) -> dict[str, tuple[float, str | None] | None]:
        """Orders opened or changed (quantity, order id) or closed (None) since the last call.

        >>> r = Replenisher(lead_time_days=2)
        >>> _ = r.review(["a"], np.array([5.0]), np.array([2.0]), np.array([3.0]))
        >>> r.take_changes(), r.take_changes()
        ({'a': (18.0, None)}, {})
        """
        changes, self._changes = self._changes, {}
        return {k: None if o is None else (o.quantity, o.order_id) for k, o in changes.items()}

    def restore(self, orders: dict[str, tuple[float, str | None]]) -> None:
        """Open orders as committed (after a restart or a rollback); pending changes dropped."""
        self.open_orders = {sku: OpenOrder(sku, q, oid) for sku, (q, oid) in orders.items()}
        self._changes = {}

    def _item_array(self, skus: list[str], key: str, default: float) -> np.ndarray:
        items = self.items
        if not items:  # no master data (the gateway's case): a day's close reviews every SKU
            return np.full(len(skus), default, dtype=np.float64)
        return np.fromiter(
            (items.get(s, {}).get(key, default) for s in skus), dtype=np.float64, count=len(skus)
        )

    def review(
        self,
        skus: list[str],
        mean_daily: np.ndarray,
        sigma_daily: np.ndarray,
        atp: np.ndarray,
        on_order: np.ndarray | None = None,
        buffer: np.ndarray | None = None,
    ) -> list[OrderTrigger]:
        """Review ``skus``; returns new triggers (none for SKUs with an open order). With
        ``buffer`` (units per SKU) the safety stock is that buffer instead of ``z * sigma``."""
        limits = {
            "lead_time_days": self.lead_time_days,
            "review_days": self.review_days,
            "pack_size": self._item_array(skus, "pack_size", 1.0),
            "moq": self._item_array(skus, "moq", 0.0),
            "capacity": self._item_array(skus, "capacity", np.inf),
        }
        if buffer is None:
            plan = order_quantities(mean_daily, sigma_daily, atp, on_order, z=self.z, **limits)
        else:
            plan = order_quantities_with_buffer(mean_daily, buffer, atp, on_order, **limits)
        triggers = []
        for i in np.flatnonzero(plan.quantity > 0).tolist():
            sku = skus[i]
            if sku in self.open_orders:
                continue
            reasons = [ReasonCode.BELOW_ORDER_UP_TO]
            if plan.capped[i]:
                reasons.append(ReasonCode.CAPPED_BY_CAPACITY)
            trig = OrderTrigger(
                sku,
                float(plan.quantity[i]),
                float(plan.order_up_to[i]),
                float(plan.safety_stock[i]),
                float(plan.inventory_position[i]),
                tuple(reasons),
            )
            self.open_orders[sku] = self._changes[sku] = OpenOrder(sku, trig.quantity)
            triggers.append(trig)
        return triggers

    def assign_order_id(self, sku: str, order_id: str) -> None:
        """Record the purchase-order id the ordering system gave the open order for ``sku``."""
        if sku not in self.open_orders:
            raise KeyError(f"no open order for SKU {sku!r}")
        self.open_orders[sku].order_id = order_id
        self._changes[sku] = self.open_orders[sku]

    def receive(self, sku: str, quantity: float, order_id: str | None = None) -> bool:
        """A receipt for ``sku`` (or for ``order_id``) closes its open order; True if one closed."""
        order = self.open_orders.get(sku)
        if order is None:
            return False
        if order_id is not None and order.order_id is not None and order.order_id != order_id:
            return False  # a receipt for another order of this SKU
        del self.open_orders[sku]
        self._changes[sku] = None
        return True
