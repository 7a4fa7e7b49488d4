"""The one outgoing-message schema: round trips, required numbers, topics, docs in sync."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge_runtime.messages import (
    KINDS,
    MARKERS,
    SCHEMA_VERSION,
    AnomalyAlert,
    ConflictMessage,
    DeadLetter,
    GatewayState,
    Problem,
    ReplenishmentAlert,
    StockoutAlert,
    UplinkDeltas,
    consumer_docs,
    parse_message,
)

T = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
MESSAGES_PAGE = Path(__file__).resolve().parent.parent / "docs" / "messages.md"


def examples():
    common = {"store_id": "S1", "model_version": "rules-1", "event_time": T}
    return [
        StockoutAlert(
            sku="A", probability=0.9, horizon_hours=24, reason_codes=["FORECAST_RISK"], **common
        ),
        ReplenishmentAlert(sku="A", recommended_qty=6, reorder_point=2, order_up_to=8, **common),
        AnomalyAlert(sku="A", anomaly_type="theft", score=4.2, units=3, **common),
        ConflictMessage(sku="A", rule="r", qty_requested=2, qty_granted=1, **common),
        GatewayState(status="online", **common),
        UplinkDeltas(
            window_start=T,
            window_end=T,
            events=3,
            deltas=[("A", -3, 0, 5, 5, 3)],
            exceptions=[("A", "stockout", "ATP_ZERO")],
            **common,
        ),
        DeadLetter(
            source="pos",
            event_id="e9",
            batch_index=0,
            problems=[Problem(field="qty", reason="qty must be > 0 for sale, got 0")],
            raw='{"event_id": "e9"}',
            **common,
        ),
    ]


@pytest.mark.parametrize("message", examples(), ids=lambda m: m.kind)
def test_round_trip_and_common_fields(message):
    payload = message.to_json()
    data = json.loads(payload)
    wire = message.to_payload()
    assert parse_message(wire) == message
    assert (wire[:2] == b"\x1f\x8b") == (message.kind == "uplink")
    assert data["schema"] == SCHEMA_VERSION
    for name in ("message_id", "store_id", "sku", "event_time", "model_version", "kind"):
        assert name in data, name
    assert parse_message(payload) == message
    assert parse_message(data) == message
    assert message.to_dict() == data


def test_topics_follow_the_mqtt_contract():
    topics = {m.kind: m.topic("shelfcast") for m in examples()}
    assert topics == {
        "stockout": "shelfcast/S1/alerts/stockout",
        "replenishment": "shelfcast/S1/alerts/replenishment",
        "anomaly": "shelfcast/S1/alerts/anomaly",
        "conflict": "shelfcast/S1/conflicts",
        "state": "shelfcast/S1/state",
        "uplink": "shelfcast/S1/uplink/deltas",
        "deadletter": "shelfcast/S1/deadletters",
    }
    assert [k.retain for k in KINDS] == [False, False, False, False, True, False, False]


def test_message_ids_are_unique():
    ids = {
        GatewayState(store_id="S", status="online", model_version="m").message_id
        for _ in range(1000)
    }
    assert len(ids) == 1000


def test_decision_numbers_are_required_and_checked():
    with pytest.raises(ValidationError, match="probability"):
        StockoutAlert(store_id="S", sku="A", model_version="m")
    with pytest.raises(ValidationError, match="recommended_qty"):
        ReplenishmentAlert(store_id="S", sku="A", model_version="m", recommended_qty=-1)
    with pytest.raises(ValidationError, match="timezone"):
        StockoutAlert(
            store_id="S", sku="A", model_version="m", probability=1, event_time=datetime(2026, 1, 1)
        )
    with pytest.raises(ValidationError, match="extra"):
        parse_message({**examples()[0].to_dict(), "surprise": 1})


def test_unknown_kind_is_rejected_with_the_field_named():
    with pytest.raises(ValidationError, match="kind"):
        parse_message({"kind": "nope", "store_id": "S"})


def test_messages_page_is_generated_from_the_models():
    text = MESSAGES_PAGE.read_text()
    start, end = MARKERS
    assert start in text and end in text, "docs/messages.md lacks the generated section"
    section = text.split(start, 1)[1].split(end, 1)[0].strip("\n")
    assert section == consumer_docs().strip("\n"), (
        "docs/messages.md is stale: regenerate it with "
        "`python -m edge_runtime.messages docs/messages.md`"
    )


def test_decision_ids_are_the_uuid5_consumers_already_hold():
    """The id formatting is done by hand for speed: it must still be exactly uuid5 (ids that
    changed across an upgrade would defeat de-duplication), and fresh ids proper UUID-4s."""
    import random
    import uuid

    from edge_runtime.messages import DECISION_NAMESPACE, decision_id, new_message_id

    rng = random.Random(3)
    for i in range(2000):
        sku = rng.choice([None, f"A-{i}", "é/ü 🛒", "x" * rng.randint(1, 200)])
        args = ["S1", rng.choice(["stockout", "anomaly/theft", "conflict/x"]), sku, f"e{i}"]
        key = json.dumps(args, ensure_ascii=True, separators=(",", ":"))
        assert decision_id(*args) == str(uuid.uuid5(DECISION_NAMESPACE, key))
    fresh = {new_message_id() for _ in range(2000)}
    assert len(fresh) == 2000
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 for i in fresh)
    assert all(str(uuid.UUID(i)) == i for i in fresh)
