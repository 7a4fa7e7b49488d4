"""Strict validation of edge events: every malformed shape is rejected with the field named."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.store.events import (
    EVENT_TYPES,
    MAX_PAYLOAD_BYTES,
    Event,
    parse_events,
    validate_event,
)

STORE = "S1"


def ev(**over) -> dict:
    base = {
        "event_id": "e1",
        "store_id": STORE,
        "sku": "A",
        "type": "sale",
        "qty": 1,
        "event_time": "2026-01-05T10:00:00+01:00",
        "source": "pos",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def reject(d) -> tuple[str, str]:
    events, rejections = parse_events(d, STORE)
    assert not events and len(rejections) == 1
    return rejections[0].field, rejections[0].reason


def test_valid_event_parses_with_utc_microseconds():
    (e,), rejected = parse_events(ev(order_id="o1", unit_price=2.5, reason="x"), STORE)
    assert rejected == []
    assert isinstance(e, Event)
    assert e.ts_us == 1767603600 * 1_000_000  # 09:00 UTC
    assert (e.order_id, e.unit_price, e.reason) == ("o1", 2.5, "x")
    assert e.to_dict()["order_id"] == "o1"


@pytest.mark.parametrize("payload_type", [bytes, str, dict, list])
def test_payload_shapes(payload_type):
    d = ev()
    payload = {
        bytes: json.dumps(d).encode(),
        str: json.dumps(d),
        dict: d,
        list: [d, ev(event_id="e2")],
    }[payload_type]
    events, rejected = parse_events(payload, STORE)
    assert rejected == [] and len(events) == (2 if payload_type is list else 1)


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ({"type": "teleport"}, "type", "unknown event type"),
        ({"type": None}, "type", "missing"),
        ({"event_id": None}, "event_id", "missing"),
        ({"event_id": ""}, "event_id", "1..128"),
        ({"event_id": "x" * 129}, "event_id", "1..128"),
        ({"event_id": 7}, "event_id", "must be a string"),
        ({"sku": None}, "sku", "missing"),
        ({"store_id": "S2"}, "store_id", "not this gateway"),
        ({"store_id": None}, "store_id", "missing"),
        ({"qty": -1}, "qty", "> 0 for sale"),
        ({"qty": 0}, "qty", "> 0 for sale"),
        ({"qty": 1.5}, "qty", "whole number"),
        ({"qty": "3"}, "qty", "must be a number"),
        ({"qty": True}, "qty", "must be a number"),
        ({"qty": float("nan")}, "qty", "finite"),
        ({"qty": 10**9}, "qty", "plausible"),
        ({"type": "cycle_count", "qty": -2}, "qty", "absolute"),
        ({"type": "adjustment", "qty": 0}, "qty", "must not be 0"),
        ({"type": "return", "qty": -3}, "qty", "> 0 for return"),
        ({"event_time": "yesterday"}, "event_time", "not ISO-8601"),
        ({"event_time": "2026-01-05T10:00:00"}, "event_time", "no UTC offset"),
        ({"event_time": "2999-01-01T00:00:00Z"}, "event_time", "future"),
        ({"event_time": 1767603600}, "event_time", "ISO-8601 string"),
        ({"source": "fax"}, "source", "unknown source"),
        ({"type": ["sale"]}, "type", "unknown event type"),
        ({"source": {"a": 1}}, "source", "unknown source"),
        ({"sku": ["A"]}, "sku", "must be a string"),
        ({"event_time": ["x"]}, "event_time", "ISO-8601 string"),
        ({"store_id": ["S1"]}, "store_id", "not this gateway"),
        ({"unit_price": -1}, "unit_price", ">= 0"),
        ({"type": "reservation"}, "order_id", "missing"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_malformed_events_name_the_field(override, field, words):
    got_field, reason = reject(ev(**override))
    assert got_field == field
    assert words in reason


def test_not_json_and_not_an_object_and_oversized():
    assert reject(b"{nope")[0] == "payload"
    assert "JSON object" in reject([1])[1]
    big = b" " * (MAX_PAYLOAD_BYTES + 1)
    field, reason = reject(big)
    assert field == "payload" and "exceeds" in reason


def test_batch_keeps_valid_events_and_indexes_rejections():
    events, rejected = parse_events([ev(), ev(event_id="e2", qty=-5), ev(event_id="e3")], STORE)
    assert [e.event_id for e in events] == ["e1", "e3"]
    assert rejected[0].index == 1 and rejected[0].field == "qty"
    assert '"qty": -5' in rejected[0].raw


def test_sensor_readings_are_valid_but_do_not_change_the_ledger():
    for kind, qty in [("shelf_weight", 412.5), ("shelf_units", 0), ("rfid_exit", 1)]:
        (e,), _ = parse_events(ev(type=kind, qty=qty, source="rfid"), STORE)
        assert not e.changes_ledger
    assert {"cycle_count", "fulfilment", "rfid_shelf"} <= EVENT_TYPES


def test_validate_event_raises_value_error_with_field():
    with pytest.raises(ValueError, match=r"^qty:"):
        validate_event(ev(qty=-1), STORE)


def test_z_suffix_and_offsets_agree():
    a = validate_event(ev(event_time="2026-01-05T09:00:00Z"), STORE)
    b = validate_event(ev(event_time="2026-01-05T04:00:00-05:00"), STORE)
    assert a.ts_us == b.ts_us


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_json | st.fixed_dictionaries({}, optional={k: _json for k in ev()}), max_size=5))
def test_any_json_batch_is_split_never_raises(batch):
    events, rejected = parse_events(batch, STORE)
    assert len(events) + len(rejected) == len(batch)
    assert all(r.reason for r in rejected)


def test_a_json_nesting_bomb_is_rejected_not_raised():
    events, rejections = parse_events("[" * 100_000 + "]" * 100_000, "S1")
    assert events == [] and rejections[0].reason == "payload JSON is nested too deeply"


@pytest.mark.parametrize("field", ["event_id", "sku", "order_id"])
def test_a_lone_surrogate_is_rejected_not_a_crash_at_commit(tmp_path, field):
    """Valid JSON may escape a lone UTF-16 surrogate; SQLite cannot store it."""
    from edge_runtime.store.ledger import Ledger

    ev = {"event_id": "e1", "store_id": "S1", "sku": "A", "type": "receipt", "qty": 2,
          "event_time": "2026-01-05T08:00:00+00:00", "source": "wms", "order_id": "po-1"}  # fmt: skip
    text = json.dumps([{**ev, field: "x\ud800"}, {**ev, "event_id": "e2"}])
    assert "\\ud800" in text
    ledger = Ledger(tmp_path / "l.sqlite", store_id="S1")
    for payload in (text, text.encode(), json.loads(text)):
        result = ledger.ingest_raw(payload)
        assert result.rejected == 1 and "lone surrogate" in result.rejections[0].reason
        assert result.rejections[0].field == field
    assert ledger.stock("A").on_hand == 2 and ledger.verify() == []
    assert len(ledger.dead_letters()) == 3
    ledger.close()
