"""The one definition of an edge event and its strict, fast validation.

An event is one JSON object (see ``../shared/design.md``, "Data contracts"). ``parse_events``
accepts a payload as bytes, str, a dict or a list of dicts, and splits it into valid ``Event``s
and ``Rejection``s that name the field at fault. Beyond its shape, each event must be plausible
(``edge_runtime.store.plausibility``: its time, its quantity). Validation is hand-written: this is the
gateway's hot path (tens of thousands of events per second on one core), where a pydantic model
per event costs several times more.

>>> events, rejected = parse_events(
...     {"event_id": "e1", "store_id": "S1", "sku": "A", "type": "sale", "qty": 2,
...      "event_time": "2026-01-05T10:00:00+01:00", "source": "pos"}, store_id="S1")
>>> events[0].qty, events[0].ts_us, rejected
(2, 1767603600000000, [])
>>> parse_events({"event_id": "e2"}, store_id="S1")[1][0].field
'store_id'
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime

from edge_runtime.store.plausibility import DEFAULT, Plausibility

# Types that change the ledger, and the sign their `qty` must have.
POSITIVE_TYPES = frozenset(
    {
        "sale",
        "return",
        "void",
        "receipt",
        "transfer_in",
        "transfer_out",
        "reservation",
        "reservation_release",
        "fulfilment",
        "damage",
    }
)
LEDGER_TYPES = POSITIVE_TYPES | {"cycle_count", "adjustment"}
# Sensor readings are stored for anomaly detection but never change the ledger.
SENSOR_TYPES = frozenset({"shelf_weight", "shelf_units", "rfid_shelf", "rfid_exit"})
EVENT_TYPES = LEDGER_TYPES | SENSOR_TYPES
SOURCES = frozenset({"pos", "ecom", "wms", "rfid", "shelf", "count"})
# Reservation-family events must name the order they belong to.
ORDER_TYPES = frozenset({"reservation", "reservation_release", "fulfilment"})

REQUIRED = ("event_id", "store_id", "sku", "type", "qty", "event_time", "source")
OPTIONAL = ("order_id", "unit_price", "reason")
FIELDS = frozenset(REQUIRED + OPTIONAL)

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024  # one MQTT message or API body, batch included
MAX_EVENTS_PER_PAYLOAD = 20_000
MAX_ID_LEN = 128
MAX_SKU_LEN = 64
MAX_REASON_LEN = 256
MAX_READING = 1_000_000  # sensor readings (grams, units, reads) change no stock: a hard ceiling
# A SKU is read back at GET /v1/stock/{sku}: URL clients resolve these segments away.
_DOT_SEGMENTS = frozenset({".", ".."})
RAW_KEEP = 1024  # characters of a rejected payload kept in the dead-letter store


@dataclass(slots=True, frozen=True)
class Event:
    """One validated edge event; ``ts_us`` is its event time in microseconds since the epoch (UTC).

    >>> e = Event("e1", "S1", "A", "sale", 1, "2026-01-05T09:00:00+00:00", 1767603600000000, "pos")
    >>> e.changes_ledger
    True
    """

    event_id: str
    store_id: str
    sku: str
    type: str
    qty: int | float
    event_time: str
    ts_us: int
    source: str
    order_id: str | None = None
    unit_price: float | None = None
    reason: str | None = None
    # Position in the payload it came in (a batch), for the dead letter of a later refusal.
    index: int | None = field(default=None, compare=False, repr=False)

    @property
    def changes_ledger(self) -> bool:
        return self.type in LEDGER_TYPES

    def to_dict(self) -> dict:
        """The event as its JSON object (optional fields only when set)."""
        out = {
            "event_id": self.event_id,
            "store_id": self.store_id,
            "sku": self.sku,
            "type": self.type,
            "qty": self.qty,
            "event_time": self.event_time,
            "source": self.source,
        }
        for name in OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(slots=True, frozen=True)
class Rejection:
    """A payload (or one event of it) that was refused: why, which field, and the raw text.

    >>> Rejection(raw='{"qty": -1}', reason="qty must be > 0 for a sale", field="qty").field
    'qty'
    """

    raw: str
    reason: str
    field: str | None = None
    index: int | None = None  # position in a batch, when the payload was a list
    # Every problem found, as (field, reason), the first being ``field``/``reason``; empty when
    # that one is all (a payload-level refusal, a reused id).
    problems: tuple[tuple[str | None, str], ...] = ()

    def all_problems(self) -> tuple[tuple[str | None, str], ...]:
        """Every problem of the refused item, the first (``field``, ``reason``) included.

        >>> Rejection(raw="{}", reason="missing required field 'sku'", field="sku").all_problems()
        (('sku', "missing required field 'sku'"),)
        """
        return self.problems or ((self.field, self.reason),)


class _Invalid(Exception):
    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


def raw_text(obj: object) -> str:
    """What a dead letter keeps of a refused payload or item: storable text, cut to RAW_KEEP.

    >>> raw_text({"sku": "\\ud800"})
    '{"sku": "\\\\ud800"}'
    """
    if isinstance(obj, bytes | bytearray):
        text = bytes(obj[: RAW_KEEP * 4]).decode("utf-8", "replace")
    elif isinstance(obj, str):  # lone surrogates escaped: SQLite stores only valid text
        text = obj[:RAW_KEEP].encode("utf-8", "backslashreplace").decode("utf-8")
    else:
        try:
            text = json.dumps(obj, default=str)
        except (TypeError, ValueError):
            text = repr(obj)
    return text[:RAW_KEEP]


def _text(d: dict, name: str, limit: int, required: bool) -> str | None:
    value = d.get(name)
    if value is None:
        if required:
            raise _Invalid(name, f"missing required field {name!r}")
        return None
    if type(value) is not str:
        raise _Invalid(name, f"{name} must be a string, got {type(value).__name__}")
    if not value or len(value) > limit:
        raise _Invalid(name, f"{name} must be 1..{limit} characters, got {len(value)}")
    return value


def _number(qty: object) -> int | float:
    """The rules of ``qty`` every event type shares: present, a number, finite."""
    if qty is None:
        raise _Invalid("qty", "missing required field 'qty'")
    qt = type(qty)
    if qt is float:
        if not math.isfinite(qty):
            raise _Invalid("qty", f"qty must be finite, got {qty!r}")
    elif qt is not int:
        raise _Invalid("qty", f"qty must be a number, got {qt.__name__}")
    return qty


def _qty(d: dict, kind: str, bounds: Plausibility) -> int | float:
    qty = _number(d.get("qty"))
    if type(qty) is float and kind != "shelf_weight":
        if not qty.is_integer():
            raise _Invalid("qty", f"qty must be a whole number of units for {kind}, got {qty}")
        qty = int(qty)
    if kind in LEDGER_TYPES:
        if qty > bounds.max_qty or qty < -bounds.max_qty:
            raise _Invalid("qty", bounds.qty_problem(qty))
    elif qty > MAX_READING:
        raise _Invalid("qty", f"qty {qty} is beyond the limit of {MAX_READING} for a reading")
    if kind in POSITIVE_TYPES or kind in ("rfid_shelf", "rfid_exit"):
        if qty <= 0:
            raise _Invalid("qty", f"qty must be > 0 for {kind}, got {qty}")
    elif kind == "adjustment":
        if qty == 0:
            raise _Invalid("qty", "qty of an adjustment must not be 0")
    elif qty < 0:  # cycle_count, shelf_units, shelf_weight are absolute readings
        raise _Invalid("qty", f"qty must be >= 0 for {kind} (an absolute reading), got {qty}")
    return qty


_TS_CACHE: dict[str, int] = {}  # events of one basket or one replay minute share a time
_TS_CACHE_MAX = 65_536


@dataclass(slots=True)
class _Judge:
    """What one payload's events are judged against: the store, the bounds, both clocks."""

    store_id: str
    bounds: Plausibility
    now_us: int
    clock_us: int
    window: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self) -> None:
        self.window = self.bounds.window(self.now_us, self.clock_us)


def _event_time(d: dict, judge: _Judge) -> tuple[str, int]:
    text = d.get("event_time")
    ts_us = _TS_CACHE.get(text) if type(text) is str else None
    if ts_us is None:
        ts_us = _parse_time(text)
        if len(_TS_CACHE) >= _TS_CACHE_MAX:
            _TS_CACHE.clear()
        _TS_CACHE[text] = ts_us
    low, high, gap_low, gap_high = judge.window
    if ts_us < low or ts_us > high or gap_low < ts_us < gap_high:
        problem = judge.bounds.time_problem(ts_us, judge.now_us, judge.clock_us)
        raise _Invalid("event_time", f"event_time {text!r} {problem}")
    return text, ts_us


def _parse_time(text: object) -> int:
    if text is None:
        raise _Invalid("event_time", "missing required field 'event_time'")
    if type(text) is not str or len(text) > 64:
        raise _Invalid("event_time", "event_time must be an ISO-8601 string with an offset")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _Invalid("event_time", f"event_time {text!r} is not ISO-8601") from None
    if when.tzinfo is None:
        raise _Invalid("event_time", f"event_time {text!r} has no UTC offset")
    return round(when.timestamp() * 1_000_000)


def _price(d: dict) -> float | None:
    price = d.get("unit_price")
    if price is None:
        return None
    try:
        value = float(price) if type(price) in (int, float) else math.nan
    except OverflowError:  # an integer beyond any float
        value = math.inf
    if not math.isfinite(value) or value < 0:
        raise _Invalid(
            "unit_price", f"unit_price must be a finite number >= 0, got {_short(price)}"
        )
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def validate_event(
    d: object,
    store_id: str,
    now_us: int | None = None,
    bounds: Plausibility = DEFAULT,
    clock_us: int = 0,
) -> Event:
    """Validate one decoded event; raise ``ValueError`` naming the field when it is invalid.

    >>> validate_event({"event_id": "x", "store_id": "S1", "sku": "A", "type": "sale",
    ...                 "qty": 0, "event_time": "2026-01-05T10:00:00Z", "source": "pos"}, "S1")
    Traceback (most recent call last):
    ...
    ValueError: qty: qty must be > 0 for sale, got 0
    """
    try:
        return _validate(d, _Judge(store_id, bounds, now_us or time.time_ns() // 1000, clock_us))
    except _Invalid as err:
        raise ValueError(f"{err.field}: {err.reason}") from None


def _validate(d: object, judge: _Judge, index: int | None = None) -> Event:
    # The fast path tests each field inline; only a failing test calls the rule's own check
    # (below), which raises with the precise reason: one definition of each rule.
    if type(d) is not dict:
        raise _Invalid(None, f"an event must be a JSON object, got {type(d).__name__}")
    if not FIELDS.issuperset(d):
        _check_fields(d, judge)
    store_id = judge.store_id
    if d.get("store_id") != store_id:
        _check_store(d, judge)
    event_id = d.get("event_id")
    if type(event_id) is not str or not 0 < len(event_id) <= MAX_ID_LEN:
        _check_event_id(d, judge)
    sku = d.get("sku")
    if (
        type(sku) is not str
        or not 0 < len(sku) <= MAX_SKU_LEN
        or not sku.isprintable()
        or ("." in sku and _DOT_SEGMENTS.intersection(sku.split("/")))
    ):
        _check_sku(d, judge)
    kind = d.get("type")
    if type(kind) is not str or kind not in EVENT_TYPES:  # a list or dict is not hashable
        _check_type(d, judge)
    source = d.get("source")
    if type(source) is not str or source not in SOURCES:
        _check_source(d, judge)
    qty = _qty(d, kind, judge.bounds)
    text, ts_us = _event_time(d, judge)
    order_id = reason = price = None
    if len(d) > 7:  # optional fields present
        order_id = _text(d, "order_id", MAX_ID_LEN, kind in ORDER_TYPES)
        reason = _text(d, "reason", MAX_REASON_LEN, False)
        price = _price(d) if "unit_price" in d else None
    elif kind in ORDER_TYPES:
        _check_order_id(d, judge)
    return Event(
        event_id, store_id, sku, kind, qty, text, ts_us, source, order_id, price, reason, index
    )


def _check_fields(d: dict, judge: _Judge) -> None:
    if not FIELDS.issuperset(d):
        extra = sorted(map(ascii, set(d) - FIELDS))  # names as escaped text: storable, sortable
        raise _Invalid(extra[0][1:-1], f"unknown field(s) {', '.join(extra)}")


def _check_store(d: dict, judge: _Judge) -> None:
    sid = d.get("store_id")
    if sid is None:
        raise _Invalid("store_id", "missing required field 'store_id'")
    if sid != judge.store_id:
        raise _Invalid(
            "store_id", f"store_id {sid!r} is not this gateway's store {judge.store_id!r}"
        )


def _check_event_id(d: dict, judge: _Judge) -> None:
    _text(d, "event_id", MAX_ID_LEN, True)
    _unicode("event_id", d["event_id"])


def _check_sku(d: dict, judge: _Judge) -> None:
    sku = _text(d, "sku", MAX_SKU_LEN, True)
    _unicode("sku", sku)
    if not sku.isprintable():
        raise _Invalid("sku", f"sku {sku!a} holds control or non-printing characters")
    if "." in sku and _DOT_SEGMENTS.intersection(sku.split("/")):
        raise _Invalid("sku", f"sku {sku!a} has a '.' or '..' path segment (unreadable by URL)")


def _one_of(d: dict, name: str, allowed: frozenset[str], unknown: str) -> None:
    """``d[name]`` is required and one of ``allowed``; ``unknown`` (with ``{value!r}``) says
    what an unknown value is."""
    value = d.get(name)
    if value is None:
        raise _Invalid(name, f"missing required field {name!r}")
    if type(value) is not str or value not in allowed:  # a list or dict is not hashable
        raise _Invalid(name, unknown.format(value=value))


def _check_type(d: dict, judge: _Judge) -> None:
    _one_of(d, "type", EVENT_TYPES, "unknown event type {value!r}")


def _check_source(d: dict, judge: _Judge) -> None:
    _one_of(d, "source", SOURCES, f"unknown source {{value!r}}; expected one of {sorted(SOURCES)}")


def _check_qty(d: dict, judge: _Judge) -> None:
    kind = d.get("type")
    if type(kind) is str and kind in EVENT_TYPES:
        _qty(d, kind, judge.bounds)
    else:  # the type-specific rules need a known type: its own problem says why not
        _number(d.get("qty"))


def _check_time(d: dict, judge: _Judge) -> None:
    _event_time(d, judge)


def _check_order_id(d: dict, judge: _Judge) -> None:
    kind = d.get("type")
    if "order_id" not in d and kind in ORDER_TYPES:
        raise _Invalid("order_id", f"missing required field 'order_id' for {kind}")
    value = _text(d, "order_id", MAX_ID_LEN, False)
    if value is not None:
        _unicode("order_id", value)


def _check_reason(d: dict, judge: _Judge) -> None:
    value = _text(d, "reason", MAX_REASON_LEN, False)
    if value is not None:
        _unicode("reason", value)


def _check_price(d: dict, judge: _Judge) -> None:
    _price(d)


_CHECKS = (
    _check_fields,
    _check_store,
    _check_event_id,
    _check_sku,
    _check_type,
    _check_source,
    _check_qty,
    _check_time,
    _check_order_id,
    _check_reason,
    _check_price,
)


def _problems(d: object, judge: _Judge, first: _Invalid) -> tuple[tuple[str | None, str], ...]:
    """Every problem of a refused item, ``first`` (the one that stopped the fast path) first.
    Runs only for refused items: the valid ones never pay for it."""
    found: dict[tuple[str | None, str], None] = {(first.field, first.reason): None}
    if type(d) is dict:
        for check in _CHECKS:
            try:
                check(d, judge)
            except _Invalid as err:
                found.setdefault((err.field, err.reason))
            except Exception:  # a shape no rule foresaw: the first problem already says so
                continue
    return tuple(found)


def _check_text(e: Event) -> None:
    """JSON may escape a lone UTF-16 surrogate (``"\\ud800"``): valid JSON, but no text SQLite
    (or an MQTT consumer) can store. Rejected here, not as a crash at commit."""
    for name in ("event_id", "sku", "order_id", "reason"):
        value = getattr(e, name)
        if value is not None:
            _unicode(name, value)


def _unicode(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid(name, f"{name} is not valid Unicode text (a lone surrogate)") from None


def _may_hold_surrogates(payload: object) -> bool:
    """False when a text payload cannot hold one (no ``\\ud`` escape): the common case."""
    if isinstance(payload, bytes | bytearray):
        return b"\\ud" in payload or b"\\uD" in payload
    if isinstance(payload, str) and payload.isascii():
        return "\\ud" in payload or "\\uD" in payload
    return True  # already-decoded objects: check their strings


def topic_problem(topic_source: str) -> str | None:
    """Why an MQTT topic's source level (``.../events/{source}``) is refused, or None."""
    if topic_source in SOURCES:
        return None
    return (
        f"topic source {topic_source!a} is not one of {sorted(SOURCES)}; "
        "publish to {prefix}/{store}/events/{source}"
    )


def parse_events(
    payload: bytes | str | dict | list,
    store_id: str,
    bounds: Plausibility = DEFAULT,
    clock_us: int = 0,
    topic_source: str | None = None,
) -> tuple[list[Event], list[Rejection]]:
    """Split a payload (one event or a batch) into valid events and rejections.

    Nothing raises: a payload that is not JSON, too large or of the wrong shape becomes a
    single ``Rejection``; in a batch each bad event is rejected on its own and the rest pass.
    ``bounds`` and ``clock_us`` (the ledger's latest event time, 0: none yet) judge event times
    and quantities (``edge_runtime.store.plausibility``); ``topic_source``, the source level of the
    MQTT topic it came on, must be a known source, or every event of the payload is refused.

    >>> parse_events(b"not json", "S1")[1][0].reason
    'payload is not valid JSON: Expecting value at line 1 column 1'
    >>> sale = {"event_id": "e1", "store_id": "S1", "sku": "A", "type": "sale", "qty": 2,
    ...         "event_time": "1970-01-01T00:00:00Z", "source": "pos"}
    >>> parse_events(sale, "S1")[1][0].field
    'event_time'
    >>> parse_events([{**sale, "event_time": "2026-01-05T10:00:00Z"}], "S1",
    ...              topic_source="satellite")[1][0].field
    'topic'
    """
    if isinstance(payload, bytes | bytearray | str):
        if len(payload) > MAX_PAYLOAD_BYTES:
            reason = f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit"
            return [], [Rejection(raw_text(payload), reason, "payload")]
        try:
            decoded = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as err:
            where = (
                f"{err.msg} at line {err.lineno} column {err.colno}" if hasattr(err, "msg") else err
            )
            return [], [
                Rejection(raw_text(payload), f"payload is not valid JSON: {where}", "payload")
            ]
        except RecursionError:  # a nesting bomb: the decoder gives up before we can judge it
            return [], [
                Rejection(raw_text(payload), "payload JSON is nested too deeply", "payload")
            ]
    else:
        decoded = payload
    items = decoded if type(decoded) is list else [decoded]
    if len(items) > MAX_EVENTS_PER_PAYLOAD:
        reason = f"batch of {len(items)} events exceeds the limit of {MAX_EVENTS_PER_PAYLOAD}"
        return [], [Rejection(raw_text(payload), reason, "payload")]
    judge = _Judge(store_id, bounds, time.time_ns() // 1000, clock_us)
    events: list[Event] = []
    rejections: list[Rejection] = []
    indexed = type(decoded) is list
    check_text = _may_hold_surrogates(payload)
    for i, item in enumerate(items):
        at = i if indexed else None
        try:
            event = _validate(item, judge, at)
            if check_text:
                _check_text(event)
            events.append(event)
        except _Invalid as err:
            problems = _problems(item, judge, err)
            rejections.append(Rejection(raw_text(item), err.reason, err.field, at, problems))
        except Exception as err:  # a shape no rule foresaw: refused on its own, never a crash
            reason = f"unprocessable event ({type(err).__name__}: {_short(str(err))})"
            rejections.append(Rejection(raw_text(item), reason, None, at))
    if topic_source is not None and events:
        problem = topic_problem(topic_source)
        if problem is not None:
            refused = [Rejection(raw_text(e.to_dict()), problem, "topic", e.index) for e in events]
            return [], sorted(rejections + refused, key=lambda r: r.index or 0)
    return events, rejections
