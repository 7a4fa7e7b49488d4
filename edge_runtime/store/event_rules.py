"""The rules an edge event's fields must meet, one definition each, and the fast path that
applies them: ``validate_item`` tests each field inline and calls a rule's own check only when
the test fails, so a valid event pays for no reason text. A refused item's every problem is
then found by running all the checks (``every_problem``).

>>> from edge_runtime.store.plausibility import DEFAULT
>>> judge = Judge("S1", DEFAULT, now_us=1767603600000000, clock_us=0)
>>> validate_item({"event_id": "e1", "store_id": "S1", "sku": "A", "type": "sale", "qty": 1,
...                "event_time": "2026-01-05T09:00:00Z", "source": "pos"}, judge).ts_us
1767603600000000
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from edge_runtime.store.event_model import (
    DOT_SEGMENTS,
    EVENT_TYPES,
    FIELDS,
    LEDGER_TYPES,
    MAX_ID_LEN,
    MAX_READING,
    MAX_REASON_LEN,
    MAX_SKU_LEN,
    ORDER_TYPES,
    POSITIVE_TYPES,
    SOURCES,
    Event,
)
from edge_runtime.store.plausibility import Plausibility


class InvalidField(Exception):
    """A rule refused a field: which one (None: the item as a whole) and why.

    >>> err = InvalidField("qty", "qty must be a number, got str")
    >>> err.field, str(err)
    ('qty', 'qty must be a number, got str')
    """

    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _text(d: dict, name: str, limit: int, required: bool) -> str | None:
    value = d.get(name)
    if value is None:
        if required:
            raise InvalidField(name, f"missing required field {name!r}")
        return None
    if type(value) is not str:
        raise InvalidField(name, f"{name} must be a string, got {type(value).__name__}")
    if not value or len(value) > limit:
        raise InvalidField(name, f"{name} must be 1..{limit} characters, got {len(value)}")
    return value


def _number(qty: object) -> int | float:
    """The rules of ``qty`` every event type shares: present, a number, finite."""
    if qty is None:
        raise InvalidField("qty", "missing required field 'qty'")
    qt = type(qty)
    if qt is float:
        if not math.isfinite(qty):
            raise InvalidField("qty", f"qty must be finite, got {qty!r}")
    elif qt is not int:
        raise InvalidField("qty", f"qty must be a number, got {qt.__name__}")
    return qty


def _qty(d: dict, kind: str, bounds: Plausibility) -> int | float:
    qty = _number(d.get("qty"))
    if type(qty) is float and kind != "shelf_weight":
        if not qty.is_integer():
            raise InvalidField("qty", f"qty must be a whole number of units for {kind}, got {qty}")
        qty = int(qty)
    if kind in LEDGER_TYPES:
        if qty > bounds.max_qty or qty < -bounds.max_qty:
            raise InvalidField("qty", bounds.qty_problem(qty))
    elif qty > MAX_READING:
        raise InvalidField("qty", f"qty {qty} is beyond the limit of {MAX_READING} for a reading")
    if kind in POSITIVE_TYPES or kind in ("rfid_shelf", "rfid_exit"):
        if qty <= 0:
            raise InvalidField("qty", f"qty must be > 0 for {kind}, got {qty}")
    elif kind == "adjustment":
        if qty == 0:
            raise InvalidField("qty", "qty of an adjustment must not be 0")
    elif qty < 0:  # cycle_count, shelf_units, shelf_weight are absolute readings
        raise InvalidField("qty", f"qty must be >= 0 for {kind} (an absolute reading), got {qty}")
    return qty


_TS_CACHE: dict[str, int] = {}  # events of one basket or one replay minute share a time
_TS_CACHE_MAX = 65_536


@dataclass(slots=True)
class Judge:
    """What one payload's events are judged against: the store, the bounds, both clocks.

    >>> from edge_runtime.store.plausibility import DEFAULT
    >>> judge = Judge("S1", DEFAULT, now_us=1767603600000000, clock_us=0)
    >>> item = {"event_id": "e1", "store_id": "S1", "sku": "A", "type": "sale", "qty": 1,
    ...         "event_time": "2026-01-06T09:00:00Z", "source": "pos"}  # a day ahead of the wall
    >>> try:
    ...     validate_item(item, judge)
    ... except InvalidField as err:
    ...     print(err.field)
    event_time
    """

    store_id: str
    bounds: Plausibility
    now_us: int
    clock_us: int
    window: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self) -> None:
        self.window = self.bounds.window(self.now_us, self.clock_us)


def _event_time(d: dict, judge: Judge) -> tuple[str, int]:
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
        raise InvalidField("event_time", f"event_time {text!r} {problem}")
    return text, ts_us


def _parse_time(text: object) -> int:
    if text is None:
        raise InvalidField("event_time", "missing required field 'event_time'")
    if type(text) is not str or len(text) > 64:
        raise InvalidField("event_time", "event_time must be an ISO-8601 string with an offset")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidField("event_time", f"event_time {text!r} is not ISO-8601") from None
    if when.tzinfo is None:
        raise InvalidField("event_time", f"event_time {text!r} has no UTC offset")
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
        raise InvalidField(
            "unit_price", f"unit_price must be a finite number >= 0, got {short_repr(price)}"
        )
    return value


def short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def validate_item(d: object, judge: Judge, index: int | None = None) -> Event:
    # The fast path tests each field inline; only a failing test calls the rule's own check
    # (below), which raises with the precise reason: one definition of each rule.
    if type(d) is not dict:
        raise InvalidField(None, f"an event must be a JSON object, got {type(d).__name__}")
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
        or ("." in sku and DOT_SEGMENTS.intersection(sku.split("/")))
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


def _check_fields(d: dict, judge: Judge) -> None:
    if not FIELDS.issuperset(d):
        extra = sorted(map(ascii, set(d) - FIELDS))  # names as escaped text: storable, sortable
        raise InvalidField(extra[0][1:-1], f"unknown field(s) {', '.join(extra)}")


def _check_store(d: dict, judge: Judge) -> None:
    sid = d.get("store_id")
    if sid is None:
        raise InvalidField("store_id", "missing required field 'store_id'")
    if sid != judge.store_id:
        raise InvalidField(
            "store_id", f"store_id {sid!r} is not this gateway's store {judge.store_id!r}"
        )


def _check_event_id(d: dict, judge: Judge) -> None:
    _text(d, "event_id", MAX_ID_LEN, True)
    _unicode("event_id", d["event_id"])


def _check_sku(d: dict, judge: Judge) -> None:
    sku = _text(d, "sku", MAX_SKU_LEN, True)
    _unicode("sku", sku)
    if not sku.isprintable():
        raise InvalidField("sku", f"sku {sku!a} holds control or non-printing characters")
    if "." in sku and DOT_SEGMENTS.intersection(sku.split("/")):
        raise InvalidField("sku", f"sku {sku!a} has a '.' or '..' path segment (unreadable by URL)")


def _one_of(d: dict, name: str, allowed: frozenset[str], unknown: str) -> None:
    """``d[name]`` is required and one of ``allowed``; ``unknown`` (with ``{value!r}``) says
    what an unknown value is."""
    value = d.get(name)
    if value is None:
        raise InvalidField(name, f"missing required field {name!r}")
    if type(value) is not str or value not in allowed:  # a list or dict is not hashable
        raise InvalidField(name, unknown.format(value=value))


def _check_type(d: dict, judge: Judge) -> None:
    _one_of(d, "type", EVENT_TYPES, "unknown event type {value!r}")


def _check_source(d: dict, judge: Judge) -> None:
    _one_of(d, "source", SOURCES, f"unknown source {{value!r}}; expected one of {sorted(SOURCES)}")


def _check_qty(d: dict, judge: Judge) -> None:
    kind = d.get("type")
    if type(kind) is str and kind in EVENT_TYPES:
        _qty(d, kind, judge.bounds)
    else:  # the type-specific rules need a known type: its own problem says why not
        _number(d.get("qty"))


def _check_time(d: dict, judge: Judge) -> None:
    _event_time(d, judge)


def _check_order_id(d: dict, judge: Judge) -> None:
    kind = d.get("type")
    if "order_id" not in d and kind in ORDER_TYPES:
        raise InvalidField("order_id", f"missing required field 'order_id' for {kind}")
    value = _text(d, "order_id", MAX_ID_LEN, False)
    if value is not None:
        _unicode("order_id", value)


def _check_reason(d: dict, judge: Judge) -> None:
    value = _text(d, "reason", MAX_REASON_LEN, False)
    if value is not None:
        _unicode("reason", value)


def _check_price(d: dict, judge: Judge) -> None:
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


def every_problem(
    d: object, judge: Judge, first: InvalidField
) -> tuple[tuple[str | None, str], ...]:
    """Every problem of a refused item, ``first`` (the one that stopped the fast path) first.
    Runs only for refused items: the valid ones never pay for it."""
    found: dict[tuple[str | None, str], None] = {(first.field, first.reason): None}
    if type(d) is dict:
        for check in _CHECKS:
            try:
                check(d, judge)
            except InvalidField as err:
                found.setdefault((err.field, err.reason))
            except Exception:  # a shape no rule foresaw: the first problem already says so
                continue
    return tuple(found)


def check_text(e: Event) -> None:
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
        raise InvalidField(name, f"{name} is not valid Unicode text (a lone surrogate)") from None


def may_hold_surrogates(payload: object) -> bool:
    """False when a text payload cannot hold one (no ``\\ud`` escape): the common case."""
    if isinstance(payload, bytes | bytearray):
        return b"\\ud" in payload or b"\\uD" in payload
    if isinstance(payload, str) and payload.isascii():
        return "\\ud" in payload or "\\uD" in payload
    return True  # already-decoded objects: check their strings
