"""How a payload becomes edge events: the one parser every ingest path calls, strict and fast.

An event is one JSON object (see ``../shared/design.md``, "Data contracts"; its definition is
``edge_runtime.store.event_model``, re-exported here, its field rules
``edge_runtime.store.event_rules``). ``parse_events``
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
import time

import orjson

from edge_runtime.store.event_model import (
    EVENT_TYPES,
    FIELDS,
    LEDGER_TYPES,
    MAX_EVENTS_PER_PAYLOAD,
    MAX_ID_LEN,
    MAX_PAYLOAD_BYTES,
    MAX_READING,
    MAX_REASON_LEN,
    MAX_SKU_LEN,
    OPTIONAL,
    ORDER_TYPES,
    POSITIVE_TYPES,
    RAW_KEEP,
    REQUIRED,
    SENSOR_TYPES,
    SOURCES,
    Event,
    Rejection,
    raw_text,
)
from edge_runtime.store.event_rules import (
    InvalidField,
    Judge,
    check_text,
    every_problem,
    may_hold_surrogates,
    short_repr,
    validate_item,
)
from edge_runtime.store.plausibility import DEFAULT, Plausibility

__all__ = [
    "EVENT_TYPES",
    "FIELDS",
    "LEDGER_TYPES",
    "MAX_EVENTS_PER_PAYLOAD",
    "MAX_ID_LEN",
    "MAX_PAYLOAD_BYTES",
    "MAX_READING",
    "MAX_REASON_LEN",
    "MAX_SKU_LEN",
    "OPTIONAL",
    "ORDER_TYPES",
    "POSITIVE_TYPES",
    "RAW_KEEP",
    "REQUIRED",
    "SENSOR_TYPES",
    "SOURCES",
    "Event",
    "Rejection",
    "parse_events",
    "raw_text",
    "topic_problem",
    "validate_event",
]


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
        return validate_item(d, Judge(store_id, bounds, now_us or time.time_ns() // 1000, clock_us))
    except InvalidField as err:
        raise ValueError(f"{err.field}: {err.reason}") from None


def topic_problem(topic_source: str) -> str | None:
    """Why an MQTT topic's source level (``.../events/{source}``) is refused, or None."""
    if topic_source in SOURCES:
        return None
    return (
        f"topic source {topic_source!a} is not one of {sorted(SOURCES)}; "
        "publish to {prefix}/{store}/events/{source}"
    )


def json_value(payload: bytes | bytearray | str):
    """``json.loads(payload)``, by orjson whenever orjson accepts the payload: a backlog of
    single-event messages parses each on its own, and the standard library's decoder was a
    large part of that. What orjson refuses (invalid JSON, NaN, lone surrogates, integers beyond
    64 bits, other encodings than UTF-8) goes to ``json.loads``, so what is accepted and the
    reason given for what is not stay the standard library's.

    >>> json_value(b'{"qty": 2}'), json_value(b'[1, NaN]')  # NaN: orjson refuses it, json not
    ({'qty': 2}, [1, nan])
    """
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)


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
            decoded = json_value(payload)
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
    judge = Judge(store_id, bounds, time.time_ns() // 1000, clock_us)
    events: list[Event] = []
    rejections: list[Rejection] = []
    indexed = type(decoded) is list
    surrogates = may_hold_surrogates(payload)
    for i, item in enumerate(items):
        at = i if indexed else None
        try:
            event = validate_item(item, judge, at)
            if surrogates:
                check_text(event)
            events.append(event)
        except InvalidField as err:
            problems = every_problem(item, judge, err)
            rejections.append(Rejection(raw_text(item), err.reason, err.field, at, problems))
        except Exception as err:  # a shape no rule foresaw: refused on its own, never a crash
            reason = f"unprocessable event ({type(err).__name__}: {short_repr(str(err))})"
            rejections.append(Rejection(raw_text(item), reason, None, at))
    if topic_source is not None and events:
        problem = topic_problem(topic_source)
        if problem is not None:
            refused = [Rejection(raw_text(e.to_dict()), problem, "topic", e.index) for e in events]
            return [], sorted(rejections + refused, key=lambda r: r.index or 0)
    return events, rejections
