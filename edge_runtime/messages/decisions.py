"""Messages that carry a decision: the alerts (stock-out, replenishment, anomaly) and the ledger's
conflicts, and the stable ids a decision made again keeps (:func:`with_decision_ids`).
"""

from __future__ import annotations

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


def _decision_kind(m: Message) -> str:
    """The kind part of a decision's identity: what was decided, finer than the topic where
    one event can make two decisions of a topic (a theft and a shrink, two conflict rules)."""
    if isinstance(m, AnomalyAlert):
        return f"anomaly/{m.anomaly_type}"
    if isinstance(m, ConflictMessage):
        return f"conflict/{m.reason_codes[0] if m.reason_codes else m.rule}"
    return m.kind


def with_decision_ids(messages: list[Message], occasion: str | None = None) -> list[Message]:
    """``messages`` with each decision (alert, conflict) under its :func:`decision_id`: the
    epoch is its ``cause_event_id``, else ``occasion`` (what made the decisions without a
    single cause, e.g. ``bundle:<version>@<clock>``), else its ``event_time`` (a detector's
    conclusion at a time the events fix). Other kinds (state, uplink) keep their own id.
    Each decision is a copy: a day's close builds its decisions with their ids instead
    (:func:`occasion_id`).

    >>> a = StockoutAlert(store_id="S1", sku="A", model_version="m", probability=1.0,
    ...                   cause_event_id="e7")
    >>> [m.message_id for m in with_decision_ids([a], "x")] == [decision_id("S1", "stockout",
    ...     "A", "e7")]
    True
    """
    out = []
    for m in messages:
        if isinstance(m, _DECISIONS):
            epoch = m.cause_event_id or occasion or f"at:{m.event_time}"
            m = _with_message_id(m, decision_id(m.store_id, _decision_kind(m), m.sku, epoch))
        out.append(m)
    return out


def occasion_id(
    store_id: str, kind: str, sku: str, cause_event_id: str | None, occasion: str | None
) -> dict[str, str]:
    """The ``message_id`` argument of a decision built for ``occasion`` (e.g. ``close:<day>``):
    its :func:`decision_id`, the epoch its cause, else the occasion, as
    :func:`with_decision_ids` gives it; nothing without an occasion (the caller gives the id).
    ``kind``: what :func:`with_decision_ids` names the decision by (``anomaly/<type>`` for an
    anomaly alert, else its kind).

    >>> a = StockoutAlert(store_id="S1", sku="A", model_version="m", probability=1.0,
    ...                   **occasion_id("S1", "stockout", "A", None, "close:2026-01-07"))
    >>> with_decision_ids([a], "close:2026-01-07")[0].message_id == a.message_id
    True
    >>> occasion_id("S1", "stockout", "A", "e7", None)
    {}
    """
    if occasion is None:
        return {}
    return {"message_id": decision_id(store_id, kind, sku, cause_event_id or occasion)}


_DECISIONS = (Alert, ConflictMessage)
_set = object.__setattr__


def _with_message_id(m: Message, message_id: str) -> Message:
    """``m.model_copy(update={"message_id": message_id})``, without the parts of pydantic's
    generic copy that these models do not use (extra fields are forbidden, there are no
    private attributes). Why: every decision of an ingest gets its id here, inside the
    transaction (a day's close builds its own with their ids instead)."""
    out = m.__class__.__new__(m.__class__)
    fields = m.__dict__.copy()
    fields["message_id"] = message_id
    _set(out, "__dict__", fields)
    _set(out, "__pydantic_extra__", None)
    _set(out, "__pydantic_fields_set__", m.__pydantic_fields_set__ | {"message_id"})
    _set(out, "__pydantic_private__", None)
    return out
