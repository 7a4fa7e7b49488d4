"""The one schema of every message the gateway sends: MQTT payloads, API responses and docs/messages.md.

Every outgoing message is JSON with a ``schema`` version, a unique ``message_id`` (consumers
de-duplicate on it: delivery is at-least-once; a decision's id is derived from what it decided,
:func:`decision_id`, so it stays the same across gateway restarts), ``kind``, ``store_id``, ``sku``, ``event_time`` (the
event time of what caused it), ``model_version`` and, for alerts, the numbers behind the decision.

>>> from datetime import datetime, timezone
>>> alert = StockoutAlert(store_id="S1", sku="A-1", event_time=datetime(2026, 1, 5, 9, 30,
...     tzinfo=timezone.utc), model_version="rules-1", probability=1.0, horizon_hours=0.0,
...     atp=0, on_hand=0, reserved=0, reason_codes=["ATP_ZERO"])
>>> alert.topic("shelfcast")
'shelfcast/S1/alerts/stockout'
>>> parse_message(alert.to_json()).sku
'A-1'

``python -m edge_runtime.messages`` prints the consumer documentation;
``python -m edge_runtime.messages docs/messages.md`` rewrites that page's generated section.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from json.encoder import encode_basestring_ascii
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
)

from edge_runtime.build_info import VERSION

SCHEMA_VERSION = 1
"""Bumped on any incompatible change; additive fields keep the number."""

GZIP_MAGIC = b"\x1f\x8b"
Evidence = dict[str, float | int | str | bool | None]


DECISION_NAMESPACE = uuid.UUID("5b1c0f6e-3c39-4f5e-9a51-2f0d8e7c4a10")
"""Fixed forever: changing it changes every decision's ``message_id``."""


_NAMESPACE_SHA1 = hashlib.sha1(DECISION_NAMESPACE.bytes)  # uuid5's hash, namespace fed


def _uuid_text(raw: bytes, version: int) -> str:
    """``str(uuid.UUID(bytes=raw[:16], version=version))`` without building a UUID object:
    every message gets an id and every decision a UUID-5, in the per-event path."""
    b = bytearray(raw[:16])
    b[6] = (b[6] & 0x0F) | (version << 4)
    b[8] = (b[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _new_id() -> str:
    return _uuid_text(os.urandom(16), 4)  # what uuid.uuid4() draws


_KEY_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def _json_text(value: object) -> str:
    """``value`` as compact ASCII JSON (``json.dumps(value, ensure_ascii=True, separators=...)``).

    >>> _json_text("A"), _json_text(None), _json_text(3)
    ('"A"', 'null', '3')
    """
    if type(value) is str:
        return encode_basestring_ascii(value)
    return "null" if value is None else _KEY_ENCODER.encode(value)


def decision_id(store_id: str, kind: str, sku: str | None, epoch: str) -> str:
    """The ``message_id`` of a decision: a UUID-5 of the store, the SKU, the decision's kind and
    its epoch, so the same decision made again (after a restart, a rolled-back transaction, a
    redelivered event) carries the same id and consumers de-duplicate it.

    The epoch is what starts the decision: the ``event_id`` of the event whose state change
    made it (for a stock-out, the event that took the SKU across the threshold; for a
    replenishment trigger, the event that opened the order), or, for decisions no single event
    made, the occasion (``close:<day>`` for a store day's close, ``bundle:<version>@<clock>``
    for a bundle swap). Two episodes of one SKU start at different events, so they get
    different ids.

    >>> decision_id("S1", "stockout", "A", "e7") == decision_id("S1", "stockout", "A", "e7")
    True
    >>> decision_id("S1", "stockout", "A", "e7") == decision_id("S1", "stockout", "A", "e8")
    False
    """
    # The JSON text of [store_id, kind, sku, epoch], compact and ASCII, spelled out: json.dumps
    # with options builds an encoder per call, most of this function's cost at a day's close.
    key = f"[{_json_text(store_id)},{_json_text(kind)},{_json_text(sku)},{_json_text(epoch)}]"
    digest = _NAMESPACE_SHA1.copy()  # uuid.uuid5(DECISION_NAMESPACE, key), without the objects
    digest.update(key.encode())
    return _uuid_text(digest.digest(), 5)


def _now() -> datetime:
    return datetime.now(UTC)


def _to_utc(when: datetime) -> datetime:
    return when.astimezone(UTC)


UtcTime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
]
"""Every time of every message: taken with any offset, sent in UTC as ``+00:00`` (the form the
API's stock times use), so one instant always reads the same whichever event or clock it came
from."""


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


class Message(BaseModel):
    """Fields every outgoing message carries.

    >>> m = GatewayState(store_id="S1", status="online", model_version="rules-1")
    >>> m.to_dict()["schema"], m.kind, m.retain
    (1, 'state', True)
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    TOPIC: ClassVar[str] = ""
    retain: ClassVar[bool] = False
    compressed: ClassVar[bool] = False  # the wire payload is gzip(JSON), for the WAN uplink

    schema_version: int = Field(
        SCHEMA_VERSION, alias="schema", description="schema version of this payload"
    )
    kind: str = Field(description="message kind; also fixes the topic")
    message_id: str = Field(
        default_factory=_new_id,
        description="unique id (UUID); consumers de-duplicate on it. A decision (alert, "
        "conflict) keeps its id across gateway restarts: a UUID-5 of store, SKU, kind and the "
        "event that started it (see decision_id)",
    )
    store_id: str = Field(description="the store whose gateway sent it")
    sku: str | None = Field(None, description="the SKU it is about (null for store-level kinds)")
    event_time: UtcTime | None = Field(
        None, description="event time (ISO-8601, UTC, +00:00) of the event that caused it"
    )
    created_at: UtcTime = Field(
        default_factory=_now, description="when the gateway created the message (UTC)"
    )
    model_version: str = Field(description="decision policy / model bundle version that decided")
    cause_event_id: str | None = Field(
        None, description="event_id of the event that triggered it (traceability)"
    )

    def topic(self, prefix: str) -> str:
        """The MQTT topic for this message under ``prefix``: ``{prefix}/{store}/{suffix}``."""
        return f"{prefix}/{self.store_id}/{self.TOPIC}"

    def to_json(self) -> bytes:
        """The wire payload (compact JSON, aliases: the field ``schema_version`` is ``schema``)."""
        return self.__pydantic_serializer__.to_json(self, by_alias=True)

    def to_payload(self) -> bytes:
        """What goes on the wire: the JSON, gzip-compressed for kinds marked ``compressed``."""
        data = self.to_json()
        return gzip.compress(data, 6, mtime=0) if self.compressed else data

    def to_dict(self) -> dict[str, Any]:
        """The payload as a JSON-compatible dict (what the API returns)."""
        return self.model_dump(mode="json", by_alias=True)


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
    """Available stock is out, or predicted to run out within the horizon."""

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
    """Order now: stock fell to the reorder point (order-up-to policy)."""

    TOPIC: ClassVar[str] = "alerts/replenishment"
    kind: Literal["replenishment"] = Field(
        "replenishment", description="message kind; also fixes the topic"
    )
    recommended_qty: int = Field(ge=0, description="units to order (pack size and MOQ applied)")
    reorder_point: float | None = Field(None, description="reorder point s of the policy")
    order_up_to: float | None = Field(None, description="order-up-to level S of the policy")


class AnomalyAlert(Alert):
    """Theft, shrink or phantom inventory suspected."""

    TOPIC: ClassVar[str] = "alerts/anomaly"
    kind: Literal["anomaly"] = Field("anomaly", description="message kind; also fixes the topic")
    anomaly_type: Literal["theft", "shrink", "phantom", "other"] = Field(
        description="what is suspected"
    )
    score: float = Field(description="anomaly score (higher is more anomalous)")
    units: float | None = Field(None, description="units unexplained by the ledger")


class ConflictMessage(Message):
    """Two requests competed for the last units; the ledger's stated rule decided."""

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


class GatewayState(Message):
    """Retained gateway status; the broker publishes ``offline`` as the last will."""

    TOPIC: ClassVar[str] = "state"
    retain: ClassVar[bool] = True
    kind: Literal["state"] = Field("state", description="message kind; also fixes the topic")
    status: Literal["online", "degraded", "offline"] = Field(
        description="gateway status; degraded: running, but a required part is down (the "
        "ledger refuses writes, so intake is paused; an installed bundle was refused)"
    )
    problems: list[str] = Field(
        default_factory=list, description="what is down and why, when degraded"
    )
    version: str | None = Field(VERSION, description="shelfcast version of the gateway")
    outbox_depth: int | None = Field(None, description="messages waiting to be sent")
    broker_dropped: int | None = Field(
        None,
        description="messages the broker reports it dropped since it started (queue limits "
        "reached, for any client: see docs/operations.md); null until the broker says",
    )


class Problem(BaseModel):
    """One thing wrong with a refused event: the field at fault and why.

    >>> Problem(field="qty", reason="qty must be > 0 for sale, got 0").field
    'qty'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str | None = Field(
        description="the field at fault; null when the item as a whole is (not JSON, not an "
        "object, too large)"
    )
    reason: str = Field(description="what is wrong, naming the rule or setting it breaks")


class DeadLetter(Message):
    """An input the gateway refused, with every problem found in it (kept in its dead letters)."""

    TOPIC: ClassVar[str] = "deadletters"
    kind: Literal["deadletter"] = Field(
        "deadletter", description="message kind; also fixes the topic"
    )
    source: str | None = Field(
        description="where it came in: the MQTT topic's source level (pos, ecom, ...) or api"
    )
    event_id: str | None = Field(None, description="the refused event's event_id, if it had one")
    batch_index: int | None = Field(
        None, description="position of the event in its batch (a JSON array), from 0"
    )
    problems: list[Problem] = Field(
        min_length=1, description="every problem found, the one that refused it first"
    )
    raw: str = Field(description="the refused item as received, cut to 1,024 characters")


DELTA_COLUMNS = ("sku", "d_on_hand", "d_reserved", "on_hand", "atp", "events")
Num = int | float


class UplinkDeltas(Message):
    """Aggregated stock deltas and exceptions for the central system, gzip-compressed JSON."""

    TOPIC: ClassVar[str] = "uplink/deltas"
    compressed: ClassVar[bool] = True
    kind: Literal["uplink"] = Field("uplink", description="message kind; also fixes the topic")
    window_start: UtcTime = Field(description="start of the window (gateway clock, UTC)")
    window_end: UtcTime = Field(description="end of the window (gateway clock, UTC)")
    events: int = Field(description="events applied in the window, all SKUs")
    columns: tuple[str, ...] = Field(DELTA_COLUMNS, description="names of a `deltas` row")
    deltas: list[tuple[str, Num, Num, Num, Num, int]] = Field(
        description="one row per SKU that changed: net change of on-hand and reserved units in "
        "the window, on-hand and ATP at its end, events applied"
    )
    exceptions: list[tuple[str, str, str]] = Field(
        default_factory=list,
        description="alerts and conflicts of the window as [sku, kind, first reason code]; "
        "the full messages went out on their own topics",
    )


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
    single cause, e.g. ``close:2026-01-07``), else its ``event_time`` (a detector's conclusion
    at a time the events fix). Other kinds (state, uplink) keep their own id.

    >>> a = StockoutAlert(store_id="S1", sku="A", model_version="m", probability=1.0,
    ...                   cause_event_id="e7")
    >>> [m.message_id for m in with_decision_ids([a], "x")] == [decision_id("S1", "stockout",
    ...     "A", "e7")]
    True
    """
    out = []
    for m in messages:
        if isinstance(m, Alert | ConflictMessage):
            epoch = m.cause_event_id or occasion or f"at:{m.event_time}"
            m = m.model_copy(
                update={"message_id": decision_id(m.store_id, _decision_kind(m), m.sku, epoch)}
            )
        out.append(m)
    return out


KINDS: tuple[type[Message], ...] = (
    StockoutAlert,
    ReplenishmentAlert,
    AnomalyAlert,
    ConflictMessage,
    GatewayState,
    UplinkDeltas,
    DeadLetter,
)
AnyMessage = Annotated[
    StockoutAlert
    | ReplenishmentAlert
    | AnomalyAlert
    | ConflictMessage
    | GatewayState
    | UplinkDeltas
    | DeadLetter,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyMessage)


# ---- the hub's JetStream subjects: one definition for the gateway's forwarder and the hub ------

HUB_SUBJECT_KIND = {"uplink": "stock"}
"""Message kind -> the last subject token where they differ (every other kind keeps its name)."""
RESERVATION = "reservation"  # hub -> store: an online order's reservation event
RESERVATION_RESULT = "reservation_result"  # store -> hub: what the store's ledger decided
INSTALL = "install"  # hub -> store: install (or go back from) a rollout's bundle
ROLLOUT_REPORT = "rollout_report"  # store -> hub: the install's outcome and health since
BUNDLE_STORE = "shelfcast_bundles"  # JetStream object store: <rollout id> -> bundle tar.gz


def hub_subject(store_id: str, kind: str, prefix: str = "shelfcast") -> str:
    """The JetStream subject ``<prefix>.<store>.<kind>`` of a message kind.

    >>> hub_subject("S1", "uplink"), hub_subject("S1", "stockout")
    ('shelfcast.S1.stock', 'shelfcast.S1.stockout')
    """
    if not store_id or any(c in store_id for c in ".*> "):
        raise ValueError(
            f"store id {store_id!r} cannot be a NATS subject token (no . * > or space)"
        )
    return f"{prefix}.{store_id}.{HUB_SUBJECT_KIND.get(kind, kind)}"


class ReservationResult(BaseModel):
    """What a store's ledger decided about an online reservation the hub routed to it.

    >>> ReservationResult(store_id="S1", event_id="r1", sku="A", requested=2, granted=1).short
    True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(SCHEMA_VERSION, alias="schema", description="schema version")
    store_id: str = Field(description="the store that decided")
    event_id: str = Field(description="the reservation event's id (idempotency key)")
    order_id: str | None = Field(None, description="the online order")
    sku: str = Field(description="the SKU reserved")
    requested: float = Field(description="units asked for")
    granted: float | None = Field(
        description="units reserved; null when the event was a duplicate (decided before)"
    )
    duplicate: bool = Field(False, description="the store had this event already")
    rejected: str | None = Field(None, description="why the store refused the event as invalid")
    conflict: dict[str, Any] | None = Field(
        None, description="the store's conflict (rule, requested, granted) when it fell short"
    )

    @property
    def short(self) -> bool:
        return self.granted is not None and self.granted < self.requested


def parse_message(payload: bytes | str | dict[str, Any]) -> Message:
    """Parse a received payload (plain or gzip JSON) into its message class."""
    if isinstance(payload, dict):
        return _ADAPTER.validate_python(payload)
    if isinstance(payload, bytes) and payload[:2] == GZIP_MAGIC:
        payload = gzip.decompress(payload)
    return _ADAPTER.validate_json(payload)


def _type_name(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        names = [_type_name(p) for p in prop["anyOf"]]
        return " \\| ".join(dict.fromkeys(names))
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "enum" in prop:
        return " \\| ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    kind = prop.get("type", "any")
    if kind == "array" and "prefixItems" in prop:
        return "[" + ", ".join(_type_name(p) for p in prop["prefixItems"]) + "]"
    if kind == "array":
        return f"list[{_type_name(prop.get('items', {}))}]"
    if kind == "string" and prop.get("format") == "date-time":
        return "datetime"
    if kind == "object":
        return "object"
    return str(kind)


def _fields_table(model: type[BaseModel]) -> list[str]:
    schema = model.model_json_schema(by_alias=True)
    rows = ["| field | type | meaning |", "| --- | --- | --- |"]
    for name, prop in schema["properties"].items():
        rows.append(f"| `{name}` | {_type_name(prop)} | {prop.get('description', '')} |")
    return rows


def consumer_docs(prefix: str = "shelfcast") -> str:
    """Markdown for consumers, generated from the models (docs/messages.md holds this text)."""
    lines = [
        f"Schema version {SCHEMA_VERSION}. Every message is compact JSON, published with QoS 1;",
        "delivery is at-least-once, so de-duplicate on `message_id`. A decision sent again after",
        "a gateway restart carries the same id: a UUID-5 of store, SKU, kind and the event that",
        "started it (for a stock-out the event that took the SKU across the threshold, for a",
        "replenishment trigger the event that opened the order, `close:<day>` for a decision of",
        "a store day's close); a new episode (stock back, then out again) gets a new id.",
        "Messages about one SKU arrive in the order the gateway decided them. Unknown fields may",
        "be added within a",
        "schema version: ignore them. Every field listed is always present (`null` where it",
        "does not apply). Times are ISO-8601 in UTC, written with the offset `+00:00`, whatever",
        "offset the event that caused them carried (one instant reads the same in every message).",
        "The uplink (for the central system, over",
        "the WAN) is the same JSON gzip-compressed: payloads start with the bytes 1f 8b.",
        "The machine-readable contract is `docs/asyncapi.json` (AsyncAPI 3.0: channels, payload",
        "schemas, an example per kind), generated by `python -m edge_runtime.asyncapi",
        "docs/asyncapi.json`.",
        "",
        "| kind | topic | retained | gzip | what |",
        "| --- | --- | --- | --- | --- |",
    ]
    for cls in KINDS:
        kind = cls.model_fields["kind"].default
        topic = f"{prefix}/{{store}}/{cls.TOPIC}"
        what = (cls.__doc__ or "").strip().splitlines()[0]
        flags = " | ".join("yes" if flag else "no" for flag in (cls.retain, cls.compressed))
        lines.append(f"| `{kind}` | `{topic}` | {flags} | {what} |")
    lines += [
        "",
        f"In: `{prefix}/{{store}}/events/{{source}}` takes one edge event (JSON object) or a JSON",
        "array of them; the gateway acknowledges (PUBACK) only after they are durable. An event",
        f"it refuses (on MQTT or the API) is published on `{prefix}/{{store}}/deadletters` with",
        "every problem found in it, not only the first, and kept in the gateway's dead letters.",
        "",
        "#### Reason codes",
        "",
        "`reason_codes` take values from this one enumeration (`ReasonCode`), UPPER_SNAKE:",
        "",
        "| code | meaning |",
        "| --- | --- |",
        *(f"| `{c.value}` | {c.meaning} |" for c in ReasonCode),
    ]
    for cls in KINDS:
        lines += ["", f"#### `{cls.model_fields['kind'].default}`", ""]
        lines += _fields_table(cls)
    return "\n".join(lines) + "\n"


MARKERS = ("<!-- messages:start -->", "<!-- messages:end -->")


def write_docs(path: str) -> None:
    """Replace the text between the markers of the page at ``path`` with :func:`consumer_docs`."""
    from pathlib import Path

    page = Path(path)
    head, rest = page.read_text().split(MARKERS[0], 1)
    tail = rest.split(MARKERS[1], 1)[1]
    page.write_text(f"{head}{MARKERS[0]}\n{consumer_docs()}{MARKERS[1]}{tail}")


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1:
        write_docs(sys.argv[1])
    else:
        print(consumer_docs(), end="")
