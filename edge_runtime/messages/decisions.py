"""Messages that carry a decision: the alerts (stock-out, replenishment, anomaly) and the ledger's
conflicts, and the stable id each is built with, the same when a decision is made again
(:func:`decision_message_id`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar, Literal

from pydantic import Field

from edge_runtime.messages.envelope import Message, UtcTime
from edge_runtime.messages.message_ids import decision_id
from edge_runtime.messages.reason_codes import Reason

Evidence = dict[str, float | int | str | bool | None]


class Alert(Message):
    """Common numbers behind a decision; each alert kind adds its own.

    >>> a = ReplenishmentAlert(store_id="S1", sku="A", model_version="m", recommended_qty=12,
    ...     reorder_point=3, order_up_to=14, atp=2, on_hand=2, reserved=0)
    >>> a.kind, a.topic("shelfcast")
    ('replenishment', 'shelfcast/S1/alerts/replenishment')
    """

    probability: float | None = Field(
        None, ge=0.0, le=1.0, description="probability the condition occurs within the horizon"
    )
    horizon_hours: float | None = Field(
        None, ge=0.0, description="horizon of the probability (replenishment lead time), hours"
    )
    expected_stockout_time: UtcTime | None = Field(
        None, description="expected time available stock reaches zero, if predicted"
    )
    recommended_qty: int | None = Field(None, ge=0, description="units to order, if any")
    atp: float | None = Field(None, description="available-to-promise at decision time")
    on_hand: float | None = Field(None, description="on-hand units at decision time")
    reserved: float | None = Field(None, description="reserved units at decision time")
    confidence: float | None = Field(
        None, ge=0.0, le=1.0, description="ledger confidence score of the SKU's stock figure"
    )
    reason_codes: list[Reason] = Field(
        default_factory=list, description="machine-readable reasons (ReasonCode), e.g. ATP_ZERO"
    )
    evidence: Evidence = Field(
        default_factory=dict, description="the numbers the reasons rest on (name -> value)"
    )


class StockoutAlert(Alert):
    """Available stock is out, or predicted to run out within the horizon.

    >>> from datetime import datetime, timedelta, timezone
    >>> at = datetime(2026, 1, 5, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    >>> a = StockoutAlert(store_id="S1", sku="A", event_time=at, model_version="m", probability=0.8,
    ...                   reason_codes=["FORECAST_RISK"])
    >>> a.topic("shelfcast"), a.to_dict()["event_time"]  # every time is sent in UTC
    ('shelfcast/S1/alerts/stockout', '2026-01-05T09:30:00+00:00')
    """

    TOPIC: ClassVar[str] = "alerts/stockout"
    kind: Literal["stockout"] = Field("stockout", description="message kind; also fixes the topic")
    probability: float = Field(ge=0.0, le=1.0, description="probability of a stock-out")
    warning: Literal["intraday"] | None = Field(
        None,
        description="intraday = the intraday warning: P(out of stock within horizon_hours and "
        "before closing), made once per complete hour; null for the stock and day-close "
        "forecast decisions (ATP_ZERO, ON_HAND_ZERO, FORECAST_RISK)",
    )
    episode: Literal["open", "cleared"] | None = Field(
        None,
        description="intraday warnings: open = first alert of a stock-out episode (one per "
        "episode), cleared = the episode ended (reason STOCK_RETURNED or RISK_FELL)",
    )
    hour_start: UtcTime | None = Field(
        None, description="intraday warnings: start of the complete hour the prediction is for"
    )


class ReplenishmentAlert(Alert):
    """Order now: stock fell to the reorder point (order-up-to policy).

    >>> a = ReplenishmentAlert(store_id="S1", sku="A", model_version="m", recommended_qty=12,
    ...                        order_up_to=14, atp=2)
    >>> a.to_dict()["recommended_qty"], a.to_dict()["order_up_to"]
    (12, 14.0)
    >>> ReplenishmentAlert(store_id="S1", sku="A", model_version="m", recommended_qty=-1)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for ReplenishmentAlert
    ...
    """

    TOPIC: ClassVar[str] = "alerts/replenishment"
    kind: Literal["replenishment"] = Field(
        "replenishment", description="message kind; also fixes the topic"
    )
    recommended_qty: int = Field(ge=0, description="units to order (pack size and MOQ applied)")
    reorder_point: float | None = Field(None, description="reorder point s of the policy")
    order_up_to: float | None = Field(None, description="order-up-to level S of the policy")


class AnomalyAlert(Alert):
    """Theft, shrink or phantom inventory suspected.

    >>> a = AnomalyAlert(store_id="S1", sku="A", model_version="rules-1", anomaly_type="theft",
    ...                  score=0.9, units=2, reason_codes=["EXIT_GATE_WITHOUT_SALE"])
    >>> a.topic("shelfcast"), a.units
    ('shelfcast/S1/alerts/anomaly', 2.0)
    """

    TOPIC: ClassVar[str] = "alerts/anomaly"
    kind: Literal["anomaly"] = Field("anomaly", description="message kind; also fixes the topic")
    anomaly_type: Literal["theft", "shrink", "phantom", "other"] = Field(
        description="what is suspected"
    )
    score: float = Field(description="anomaly score (higher is more anomalous)")
    units: float | None = Field(None, description="units unexplained by the ledger")


class ConflictMessage(Message):
    """Two requests competed for the last units; the ledger's stated rule decided.

    >>> c = ConflictMessage(store_id="S1", sku="A", model_version="m", rule="first-committed-wins",
    ...                     winner_event_id="r1", loser_event_id="r2", qty_requested=3,
    ...                     qty_granted=1)
    >>> c.topic("shelfcast"), c.to_dict()["qty_granted"]
    ('shelfcast/S1/conflicts', 1.0)
    """

    TOPIC: ClassVar[str] = "conflicts"
    kind: Literal["conflict"] = Field("conflict", description="message kind; also fixes the topic")
    rule: str = Field(description="the rule that decided, e.g. first-committed-wins")
    winner_event_id: str | None = Field(None, description="event that got the units")
    loser_event_id: str | None = Field(None, description="event refused or cut short")
    qty_requested: float | None = Field(None, description="units the loser asked for")
    qty_granted: float | None = Field(None, description="units the loser got")
    reason_codes: list[Reason] = Field(
        default_factory=list, description="machine-readable reasons (ReasonCode)"
    )
    evidence: Evidence = Field(default_factory=dict, description="numbers behind it")


def decision_message_id(
    store_id: str,
    kind: str,
    sku: str | None,
    cause_event_id: str | None,
    occasion: str | None = None,
    event_time: datetime | None = None,
) -> str:
    """The ``message_id`` a decision (alert, conflict) is built with: its :func:`decision_id`,
    the epoch its ``cause_event_id``, else ``occasion`` (what made the decisions without a
    single cause: ``close:<day>``, ``bundle:<version>@<clock>``), else ``at:<event_time>`` in
    UTC (a detector's conclusion at a time the events fix). ``kind``: ``anomaly/<type>`` for an
    anomaly alert, ``conflict/<first reason code>`` for a conflict (one event can make two
    decisions of a topic: a theft and a shrink, two conflict rules), else the message kind.

    >>> a = StockoutAlert(store_id="S1", sku="A", model_version="m", probability=1.0,
    ...     message_id=decision_message_id("S1", "stockout", "A", None, "close:2026-01-07"))
    >>> a.message_id == decision_id("S1", "stockout", "A", "close:2026-01-07")
    True
    >>> decision_message_id("S1", "stockout", "A", "e7", "close:2026-01-07") == decision_id(
    ...     "S1", "stockout", "A", "e7")
    True
    """
    at = event_time and event_time.astimezone(UTC)  # the time as the message holds it
    return decision_id(store_id, kind, sku, cause_event_id or occasion or f"at:{at}")
