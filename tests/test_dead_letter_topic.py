"""Refused events reach integrators on ``{prefix}/{store}/deadletters`` through a real Mosquitto,
with every problem of each event, and the consistency rules of outgoing messages (UTC times,
the package version on the state, one enumeration of reason codes)."""

from __future__ import annotations

import json

import pytest

from edge_runtime.build_info import VERSION
from edge_runtime.config import load_config, with_mqtt
from edge_runtime.gateway import Gateway
from edge_runtime.ingest.dead_letter_topic import dead_letter_messages
from edge_runtime.messages import ReasonCode, parse_message
from edge_runtime.store.events import parse_events
from tests.mosquitto import Subscriber, wait
from tests.test_gateway import config, event, mqtt_pub

pytestmark = pytest.mark.mqtt

# One event, four things wrong with it: a parser that stops at the first says only one.
BROKEN = {
    "event_id": "bad-1",
    "store_id": "S1",
    "sku": "A",
    "type": "sale",
    "qty": -3,
    "event_time": "5 January",
    "source": "till",
    "colour": "red",
}


def test_every_problem_of_a_refused_event_is_collected():
    _, [refused] = parse_events(BROKEN, "S1")
    fields = [f for f, _ in refused.all_problems()]
    assert fields[0] == refused.field == "colour"
    assert sorted(fields) == ["colour", "event_time", "qty", "source"]


def test_valid_events_have_no_problems_and_bad_ones_in_a_batch_keep_their_own():
    good = event(1, "A", "receipt", 4)
    events, refused = parse_events([good, {**good, "event_id": "x", "qty": 0, "sku": ""}], "S1")
    assert [e.event_id for e in events] == ["e1"]
    assert [(r.index, sorted(f for f, _ in r.all_problems())) for r in refused] == [
        (1, ["qty", "sku"])
    ]


def test_refused_events_are_published_with_all_their_problems(tmp_path, mosquitto):
    dead = Subscriber(mosquitto, ["shelfcast/S1/deadletters"], client_id="dead-watch")
    with Gateway(config(tmp_path, mosquitto)).start() as gw:
        assert gw.transport.wait_connected(10)
        mqtt_pub(mosquitto, [event(0, "A", "receipt", 5, source="wms"), BROKEN], "wms")
        mqtt_pub(mosquitto, "not json", "pos")
        got = dead.wait_for(2)
        assert wait(lambda: gw.counters["rejected"] == 2 and gw.counters["ingested"] == 1)
        assert gw.flush(10), "outbox not drained"
    dead.close()
    first, second = (json.loads(p) for _, p, _ in got)
    assert [t for t, _, _ in got] == ["shelfcast/S1/deadletters"] * 2
    assert first["kind"] == "deadletter" and first["event_id"] == "bad-1"
    assert first["source"] == "wms" and first["batch_index"] == 1 and first["sku"] == "A"
    assert sorted(p["field"] for p in first["problems"]) == [
        "colour",
        "event_time",
        "qty",
        "source",
    ]
    assert json.loads(first["raw"])["colour"] == "red"
    [problem] = second["problems"]  # a JSON string, not an event object
    assert problem["field"] is None and "JSON object" in problem["reason"]
    assert second["event_id"] is None and second["source"] == "pos"
    parse_message(first)  # the same schema consumers validate against


def test_redelivered_refusal_keeps_its_message_id(tmp_path):
    cfg = load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": str(tmp_path)})
    with Gateway(with_mqtt(cfg, enabled=False)) as gw:
        gw.ingest(BROKEN, "api")
        gw.ingest(BROKEN, "api")
        sent = gw.recent_messages("deadletter")
    assert len(sent) == 1, "the same refusal sent twice is one message (de-duplicated)"


def test_times_are_utc_state_has_the_version_and_codes_are_enumerated(tmp_path, mosquitto):
    out = Subscriber(
        mosquitto, ["shelfcast/S1/alerts/#", "shelfcast/S1/conflicts", "shelfcast/S1/state"]
    )
    with Gateway(config(tmp_path, mosquitto)).start() as gw:
        assert gw.transport.wait_connected(10)
        at = "2026-01-05T11:00:00+01:00"  # 10:00 UTC
        gw.ingest({**event(0, "B", "receipt", 2), "event_time": at}, "wms")
        gw.ingest({**event(1, "B", "reservation", 5, order_id="o1"), "event_time": at}, "ecom")
        gw.ingest({**event(2, "B", "sale", 1), "event_time": at}, "pos")
        assert wait(
            lambda: {"conflict", "stockout"} <= {json.loads(p)["kind"] for _, p, _ in out.received}
        )
        assert gw.flush(10)
    out.close()
    messages = [json.loads(p) for _, p, _ in out.received]
    state = next(m for m in messages if m["kind"] == "state")
    assert state["version"] == VERSION and VERSION
    decided = [m for m in messages if m["kind"] in ("conflict", "stockout", "replenishment")]
    assert {m["event_time"] for m in decided} == {"2026-01-05T10:00:00+00:00"}
    for m in messages:
        assert m["created_at"].endswith("+00:00")
        assert all(code in ReasonCode.__members__ for code in m.get("reason_codes", []))


def test_a_lone_surrogate_in_a_refused_event_still_makes_a_valid_message():
    raw = '{"event_id": "\\ud800", "store_id": "S1", "sku": "\\udfff", "type": "\\ud800"}'
    _, [refused] = parse_events(raw, "S1")
    [m] = dead_letter_messages([refused], "S1", "pos", "rules-1")
    data = json.loads(m.to_payload())  # serialisable: no lone surrogate reaches the wire
    assert data["event_id"] is None and data["sku"] is None and len(data["problems"]) >= 2


def test_a_refused_time_beyond_the_calendar_in_utc_is_left_out():
    bad = {**BROKEN, "event_time": "0001-01-01T00:00:00+14:00"}
    _, [refused] = parse_events(bad, "S1")
    [m] = dead_letter_messages([refused], "S1", "pos", "rules-1")
    assert m.event_time is None and "event_time" in [p.field for p in m.problems]
