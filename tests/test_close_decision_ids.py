"""A day close's decisions are built with their decision ids (epoch ``close:<day>``): no id is
set on a message after it was built."""

from __future__ import annotations

from edge_runtime.gateway import Gateway
from edge_runtime.messages import decision_id
from edge_runtime.store.state_columns import StateColumns
from tests.test_gateway_model import config, demand_bundle, ev
from tests.test_state_columns import DAY_US, _ledger_states, _payloads, _policy, seed_with_k7_low

CLOSE = "close:2026-01-05"


def _kind(m: dict) -> str:
    return f"anomaly/{m['anomaly_type']}" if m["kind"] == "anomaly" else m["kind"]


def test_a_review_for_an_occasion_builds_each_decision_with_its_id():
    """Stock-outs with and without a forecast and replenishment triggers, reviewed for a close:
    each message carries ``decision_id(store, kind, sku, close:<day>)`` as built; the same
    decisions made without the occasion (nor a cause) carry the ids of their time, and the
    same payload otherwise."""
    states = _ledger_states(40)
    as_of = [5 * DAY_US] * len(states)
    at = "2026-01-05T23:00:00+00:00"
    skus = [s.sku for s in states][1:31]  # K0 (none on hand) and K31.. decided on ATP
    built = _policy(skus).review(StateColumns.of_sku_states(states, 0, as_of), {}, at, CLOSE)
    plain = _policy(skus).review(StateColumns.of_sku_states(states, 0, as_of), {}, at)
    assert {m.kind for m in built} == {"stockout", "replenishment"}
    assert {m.sku for m in built} & set(skus) and {m.sku for m in built} - set(skus)
    assert [m.message_id for m in built] == [decision_id("S1", m.kind, m.sku, CLOSE) for m in built]
    at_ids = [decision_id("S1", m.kind, m.sku, f"at:{m.event_time}") for m in plain]
    assert [m.message_id for m in plain] == at_ids
    assert not set(at_ids) & {m.message_id for m in built}
    assert _payloads(built) == _payloads(plain)


def test_a_gateway_close_publishes_its_decisions_under_the_close_ids(tmp_path):
    """Through the real engine: every decision a store day's close makes (no cause event)
    carries ``decision_id(store, kind, sku, close:<day that closed>)``."""
    bundle = demand_bundle(tmp_path / "bundles" / "ids-1")
    skus = [f"K{i}" for i in range(20)]
    with Gateway(config(tmp_path, bundle, SHELFCAST_MODEL_REVIEW_DAYS="0")) as gw:
        seed_with_k7_low(gw, skus)
        gw.ingest([ev("next-day", "K1", "sale", 1, 5)], "pos")  # closes day 4
        closing = [m for m in gw.recent_messages() if m["cause_event_id"] is None]
    assert {m["kind"] for m in closing} == {"replenishment", "stockout"}  # K7, at the close
    for m in closing:
        assert m["message_id"] == decision_id("S1", _kind(m), m["sku"], "close:2026-01-04"), m
