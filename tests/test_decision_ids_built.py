"""Every decision is built with its decision id: per-event stock-outs and replenishments, ledger
conflicts, shrink found by a count, thefts the shelf watch concludes and phantoms at a close.
The ids are the ones the gateway has always published (recorded below, through a real Gateway
on a real SQLite file), and a producer called on its own gives the same id as built."""

from __future__ import annotations

from datetime import UTC, datetime

from edge_runtime.decide.decisions import RulePolicy
from edge_runtime.gateway import Gateway
from edge_runtime.messages import decision_id
from edge_runtime.store.stock import Conflict, SkuState, StockState
from edge_runtime.watch.shrink import ShrinkAlert
from tests.test_gateway_model import config, daily_sales, demand_bundle, ev

# (kind, sku, cause_event_id) -> message_id, as published before the producers built the ids
# themselves (the engine then stamped them onto copies).
WITH_BUNDLE = {
    ("anomaly/theft", "G", None): "7b91c624-fbff-564c-9fff-1cc3f221b99f",
    ("replenishment", "A", "over"): "41770a79-758a-530f-8d7d-4e90351c2e91",
    ("stockout", "A", "over"): "f9cdae2e-cd1d-5e33-b8c6-a3e0b5fc42f1",
    ("conflict/SOLD_BEYOND_BOOK", "A", "over"): "9661e011-480a-554e-9cb5-8f10956691c8",
    ("anomaly/shrink", "C", "count-C"): "ede3bccd-7bad-544d-a455-fdf4a1a9c24e",
    ("anomaly/phantom", "P", None): "90085c59-0824-531c-b722-8d855c68119a",
    ("conflict/SOLD_BEYOND_BOOK", "P", "p-1-0"): "0f368939-cc7a-5b6e-a932-22a7fe0ed350",
}
RULES = {
    ("stockout", "A", "s-A"): "8251ba80-f670-50f4-bd7d-9700e49b4ac4",
    ("replenishment", "A", "s-A"): "7f52da25-5db7-53cc-bef6-e9cc33916db2",
    ("conflict/SOLD_BEYOND_BOOK", "A", "s-A"): "f3d1ab1a-afa1-57b6-9a06-04120473fd0e",
}


def _key(m: dict) -> tuple[str, str, str | None]:
    if m["kind"] == "anomaly":
        kind = f"anomaly/{m['anomaly_type']}"
    elif m["kind"] == "conflict":
        kind = f"conflict/{m['reason_codes'][0]}"
    else:
        kind = m["kind"]
    return kind, m["sku"], m["cause_event_id"]


def _epoch(m: dict) -> str:
    """The epoch of a published decision: its cause, else the occasion or its time."""
    if m["cause_event_id"]:
        return m["cause_event_id"]
    if m["anomaly_type"] == "phantom":
        return "close:2026-01-09"  # the close that found P silent
    return f"at:{datetime.fromisoformat(m['event_time'])}"


def test_the_gateway_publishes_each_kind_of_decision_under_its_recorded_id(tmp_path):
    """A phantom at a close, a count's shrink, a theft, conflicts and per-event stock-out and
    replenishment decisions of the forecast policy: each under the id recorded for it."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    with Gateway(config(tmp_path, bundle)) as gw:
        seed = [ev("r-P", "P", "receipt", 200, 1), ev("r-C", "C", "receipt", 40, 1)]
        seed += [ev("r-A", "A", "receipt", 100, 1)]
        seed += [ev(f"p-{d}-{h}", "P", "sale", 1, d, 9 + h) for d in range(1, 8) for h in range(10)]
        seed += daily_sales("C", 1, range(1, 8)) + daily_sales("A", 4, range(1, 8))
        gw.ingest(seed, "seed")
        gw.ingest(daily_sales("C", 1, [8, 9, 10, 11]), "pos")  # closes days: P is silent
        gw.ingest([ev("count-C", "C", "cycle_count", 12, 11, 20, source="count")], "count")
        gw.ingest([ev("big", "A", "sale", 60, 11, 21)], "pos")
        gw.ingest([ev("gate-G", "G", "rfid_exit", 1, 11, 21, 5, source="rfid")], "rfid")
        gw.ingest([ev("over", "A", "sale", 20, 11, 22)], "pos")  # settles the gate read too
        published = gw.recent_messages()
    assert {_key(m): m["message_id"] for m in published} == WITH_BUNDLE
    for m in published:
        assert m["message_id"] == decision_id("S1", _key(m)[0], m["sku"], _epoch(m)), m


def test_the_rules_publish_their_decisions_under_their_recorded_ids(tmp_path):
    with Gateway(config(tmp_path)) as gw:
        gw.ingest([ev("r-A", "A", "receipt", 3, 2), ev("s-A", "A", "sale", 5, 2, 11)], "pos")
        published = gw.recent_messages()
    assert {_key(m): m["message_id"] for m in published} == RULES


def test_producers_build_their_decisions_with_their_ids():
    """Called on their own (no engine around them), the producers give each decision its id."""

    class Cause:
        event_id, event_time = "e1", "2026-01-05T10:00:00+01:00"

    out = StockState.of(SkuState("A", on_hand=0), safety_buffer=0, as_of_us=0)
    conflict = Conflict("A", "e9", "reservation_short", "o1", 3, 1, 2, 1, 0, 1_767_603_600_000_000)
    made = RulePolicy("S1").decide([out], {"A": Cause()}, [conflict])
    made_of = [("replenishment", "e1"), ("stockout", "e1"), ("conflict/RESERVATION_SHORT", "e9")]
    assert [m.message_id for m in made] == [decision_id("S1", k, "A", e) for k, e in made_of]
    theft = ShrinkAlert("theft", "B", 900.5, ("EXIT_GATE_WITHOUT_SALE",), {"units": 1})
    at = datetime.fromtimestamp(900.5, UTC)
    assert theft.to_message("S1", "m").message_id == decision_id(
        "S1", "anomaly/theft", "B", f"at:{at}"
    )
    assert theft.to_message("S1", "m", "e3").message_id == decision_id(
        "S1", "anomaly/theft", "B", "e3"
    )
    phantom = ShrinkAlert("phantom", "B", 900.0, ("NO_SALES_IMPLAUSIBLE_FOR_FORECAST",))
    assert phantom.to_message("S1", "m", occasion="close:x").message_id == decision_id(
        "S1", "anomaly/phantom", "B", "close:x"
    )
