"""Every machine-readable reason a decision gives (``reason_codes``), and the field type that
reads them in any case.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BeforeValidator


class ReasonCode(StrEnum):
    """Every machine-readable reason a decision gives (``reason_codes``), UPPER_SNAKE.

    >>> ReasonCode("ATP_ZERO") is ReasonCode.ATP_ZERO, str(ReasonCode.BELOW_ORDER_UP_TO)
    (True, 'BELOW_ORDER_UP_TO')
    >>> ReasonCode.ON_HAND_ZERO.meaning
    'stock-out: no units on hand'
    """

    meaning: str

    def __new__(cls, value: str, meaning: str) -> ReasonCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning  # what docs/messages.md says of it
        return member

    ATP_ZERO = (
        "ATP_ZERO",
        "stock-out: nothing is available to promise (units on hand are all reserved)",
    )
    ON_HAND_ZERO = "ON_HAND_ZERO", "stock-out: no units on hand"
    FORECAST_RISK = (
        "FORECAST_RISK",
        "stock-out predicted: the forecast demand over the horizon may exceed what is available",
    )
    ATP_AT_REORDER_POINT = (
        "ATP_AT_REORDER_POINT",
        "replenishment (rules policy): available stock fell to the reorder point",
    )
    BELOW_ORDER_UP_TO = (
        "BELOW_ORDER_UP_TO",
        "replenishment (forecast policy): the inventory position is below the order-up-to level",
    )
    CAPPED_BY_CAPACITY = (
        "CAPPED_BY_CAPACITY",
        "replenishment: the quantity was cut to the shelf/backroom capacity",
    )
    RESERVATION_SHORT = (
        "RESERVATION_SHORT",
        "conflict: a reservation got fewer units than it asked for",
    )
    RESERVED_UNITS_GONE = (
        "RESERVED_UNITS_GONE",
        "conflict: units reserved for orders left the shelf (sold, damaged): fewer are covered",
    )
    SOLD_BEYOND_BOOK = (
        "SOLD_BEYOND_BOOK",
        "conflict: an event took on-hand below zero (reported once per episode)",
    )
    EXIT_GATE_WITHOUT_SALE = (
        "EXIT_GATE_WITHOUT_SALE",
        "anomaly: a tag left through the exit gate with no matching sale",
    )
    SHELF_REMOVAL_WITHOUT_SALE = (
        "SHELF_REMOVAL_WITHOUT_SALE",
        "anomaly: units left the shelf (weight, units) and no sale followed in time",
    )
    PROBABLE_MISSCAN = (
        "PROBABLE_MISSCAN",
        "anomaly: a removal matched a sale of another SKU (scanned as the wrong item)",
    )
    SHRINK_BEYOND_HISTORY = (
        "SHRINK_BEYOND_HISTORY",
        "anomaly: a count's or write-off's shrink is far beyond the SKU's history",
    )
    NO_SALES_IMPLAUSIBLE_FOR_FORECAST = (
        "NO_SALES_IMPLAUSIBLE_FOR_FORECAST",
        "anomaly (phantom): no sales for so long the forecast makes it implausible with stock",
    )
    ANOMALY_MODEL_FLAGGED = (
        "ANOMALY_MODEL_FLAGGED",
        "anomaly: the bundle's anomaly model scored the SKU's last closed day as anomalous "
        "(evidence.anomaly_score below 0); it strengthens the detector's evidence",
    )
    INTRADAY_SELL_OUT_RISK = (
        "INTRADAY_SELL_OUT_RISK",
        "stock-out warning (intraday model): today's sales against the SKU's intraday profile "
        "and past sell-outs say the shelf may empty within the horizon",
    )
    STOCK_RETURNED = (
        "STOCK_RETURNED",
        "stock-out warning cleared: the shelf is in stock again after the stock-out",
    )
    RISK_FELL = (
        "RISK_FELL",
        "stock-out warning cleared: the shelf stayed in stock and the risk fell below the "
        "threshold less the hysteresis",
    )

    def __repr__(self) -> str:  # shown as the text it is on the wire
        return repr(self.value)


def _upper(value: object) -> object:
    # Messages from before the enumeration wrote some codes in lower case.
    return value.upper() if isinstance(value, str) else value


Reason = Annotated[ReasonCode, BeforeValidator(_upper)]
