"""Why the router chose a fulfilment plan: the one enumeration of its reason codes.

Every plan carries the codes of what it is (where it ships from) and, when it is not the plan an
order-management system would pick by default (the nearest store with stock), of what made the
difference. The same codes reach the API's answer, the JetStream decision message and the docs.

>>> RouteReason.SPLIT_SHIPMENT.value, RouteReason.SPLIT_SHIPMENT.meaning.split(":")[0]
('SPLIT_SHIPMENT', 'shape')
"""

from __future__ import annotations

from enum import StrEnum


class RouteReason(StrEnum):
    """Reason codes of a fulfilment plan (UPPER_SNAKE, stable across versions).

    >>> RouteReason("FEWER_PARCELS").meaning
    'choice: fewer shipments than the nearest-with-stock plan'
    """

    SHIP_FROM_STORE = "SHIP_FROM_STORE"
    SHIP_FROM_DC = "SHIP_FROM_DC"
    SPLIT_SHIPMENT = "SPLIT_SHIPMENT"
    SAME_DAY = "SAME_DAY"
    LATE_AGAINST_PROMISE = "LATE_AGAINST_PROMISE"
    NEAREST_WITH_STOCK = "NEAREST_WITH_STOCK"
    NO_STORE_STOCK = "NO_STORE_STOCK"
    STORE_DEMAND_PROTECTED = "STORE_DEMAND_PROTECTED"
    STOCK_RISK_AVOIDED = "STOCK_RISK_AVOIDED"
    RECENT_CONFLICTS_AVOIDED = "RECENT_CONFLICTS_AVOIDED"
    MARKDOWN_RELIEF = "MARKDOWN_RELIEF"
    FEWER_PARCELS = "FEWER_PARCELS"
    CHEAPER_SHIPPING = "CHEAPER_SHIPPING"
    STORE_OFFLINE_SKIPPED = "STORE_OFFLINE_SKIPPED"
    REROUTED_AFTER_REFUSAL = "REROUTED_AFTER_REFUSAL"

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS: dict[RouteReason, str] = {
    RouteReason.SHIP_FROM_STORE: "shape: every line ships from one store",
    RouteReason.SHIP_FROM_DC: "shape: every line ships from the distribution centre",
    RouteReason.SPLIT_SHIPMENT: "shape: the lines ship from more than one location",
    RouteReason.SAME_DAY: "delivery: every shipment is a local courier run, delivered today",
    RouteReason.LATE_AGAINST_PROMISE: "delivery: no plan worth its cost meets the promised date",
    RouteReason.NEAREST_WITH_STOCK: "choice: the plan is the nearest store with stock (the default)",
    RouteReason.NO_STORE_STOCK: "choice: no online store had a line available; the DC ships it",
    RouteReason.STORE_DEMAND_PROTECTED: (
        "choice: the nearest store's last units are worth more to its own shoppers over its "
        "lead time than the shipping saved"
    ),
    RouteReason.STOCK_RISK_AVOIDED: (
        "choice: the nearest store's figure is too likely not to be on the shelf (low ledger "
        "confidence, few units)"
    ),
    RouteReason.RECENT_CONFLICTS_AVOIDED: (
        "choice: the nearest store had recent conflicts on the SKU (promises it could not keep)"
    ),
    RouteReason.MARKDOWN_RELIEF: (
        "choice: a chosen store holds stock it is likely not to sell before it ages; shipping "
        "it avoids more markdown than the nearest-with-stock plan would"
    ),
    RouteReason.FEWER_PARCELS: "choice: fewer shipments than the nearest-with-stock plan",
    RouteReason.CHEAPER_SHIPPING: "choice: cheaper shipping than the nearest-with-stock plan",
    RouteReason.STORE_OFFLINE_SKIPPED: (
        "input: a store with the stock was offline; its figure was not promised"
    ),
    RouteReason.REROUTED_AFTER_REFUSAL: (
        "reservation: a store refused (its last-unit rule); the order was routed again without it"
    ),
}
