"""Theft (removals without a sale), mis-scans, cycle-count shrink and phantom inventory."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.messages import parse_message
from edge_runtime.store.events import parse_events
from edge_runtime.watch.phantom import PhantomDetector
from edge_runtime.watch.shelf_watch import ShelfWatch
from edge_runtime.watch.shrink import CycleCountShrink, RemovalMatcher
from tests.test_sensors import sales_stream
from twin.sensors import SensorConfig, simulate


def test_paid_items_raise_nothing():
    m = RemovalMatcher(pick_window_s=600, gate_window_s=600, gate_hold_s=0, pick_hold_s=0)
    m.shelf("A", 0, 2)
    m.sale("A", 300, 2)
    assert m.gate("A", 400, 2) == []
    assert m.advance(10_000) == []


def test_gate_read_without_sale_is_theft_at_once_with_evidence():
    m = RemovalMatcher(pick_window_s=600, gate_hold_s=0, pick_hold_s=0)
    m.shelf("A", 0, 1)
    m.shelf("A", 10, 2)
    m.sale("A", 100, 1)  # one paid, two not
    (alert,) = m.gate("A", 200, 3)  # the paid unit and two unpaid
    assert alert.kind == "theft" and alert.event_time == 200
    assert alert.reason_codes == ("EXIT_GATE_WITHOUT_SALE", "SHELF_REMOVAL_WITHOUT_SALE")
    assert alert.evidence["units"] == 2
    assert m.advance(10_000) == []  # the picks were settled by the gate alert, no second alert


def test_pick_without_sale_alerts_after_the_window_only():
    m = RemovalMatcher(pick_window_s=600, gate_hold_s=0, pick_hold_s=0)
    m.shelf("A", 0, 1)
    assert m.advance(599) == []
    (alert,) = m.advance(601)
    assert alert.kind == "theft" and alert.event_time == 600
    assert alert.evidence["removal_time"] == 0


def test_put_back_cancels_the_pick_but_a_restock_does_not():
    m = RemovalMatcher(pick_window_s=600, put_back_window_s=300, pick_hold_s=0)
    m.shelf("A", 0, 2)
    m.shelf("A", 100, -2)  # put back
    m.shelf("B", 0, 1)
    m.shelf("B", 100, -40)  # restock: not what was taken
    alerts = m.advance(2000)
    assert [a.sku for a in alerts] == ["B"]


def test_misscan_is_not_called_theft():
    m = RemovalMatcher(pick_window_s=600, gate_hold_s=0, pick_hold_s=0)
    m.shelf("A", 0, 3)
    m.sale("B", 120, 3)  # no pick of B behind it: rung up as B, taken as A
    (alert,) = m.advance(700)
    assert alert.kind == "misscan" and alert.evidence["sold_instead"] == "B"
    assert alert.reason_codes[0] == "PROBABLE_MISSCAN"


def test_void_withdraws_the_exit_permission():
    m = RemovalMatcher(gate_hold_s=0, pick_hold_s=0)
    m.shelf("A", 0, 1)
    m.sale("A", 10, 1)
    m.void("A", 20, 1)
    assert [a.kind for a in m.gate("A", 60, 1)] == ["theft"]


def test_cycle_count_shrink_against_history():
    d = CycleCountShrink(z_threshold=3, min_units=3)
    assert d.count("new", 0, expected=40, counted=39) is None
    assert d.count("new2", 0, expected=40, counted=25) is not None  # far beyond the store prior
    for i in range(10):  # a SKU that always loses ~6 units: that is its normal
        assert d.count("leaky", i, expected=60, counted=54 - (i % 3)) is None or i < 3
    assert d.count("leaky", 11, expected=60, counted=53) is None
    alert = d.count("leaky", 12, expected=60, counted=30)
    assert alert is not None and alert.kind == "shrink"
    assert alert.evidence["history_counts"] == 11 and alert.evidence["z"] > 3


def test_phantom_rule_uses_units_per_sale_and_alerts_once_per_spell():
    d = PhantomDetector(alpha=0.001)
    day = 86400.0
    for i in range(20):
        d.sale("bulk", i * 0.1 * day, 12)  # sells in dozens: 12 units a sale
        d.sale("single", i * 0.1 * day, 1)
    skus = ["bulk", "single"]
    mean = np.array([6.0, 6.0])  # 6 units a day: 0.5 sales/day for bulk, 6 for single
    p90 = np.array([12.0, 10.0])
    now = 1.9 * day + 2 * day
    alerts = d.check(now, skus, np.array([50.0, 50.0]), mean, p90)
    assert [a.sku for a in alerts] == ["single"]
    assert alerts[0].evidence["p_zero_sales"] < 0.001
    assert d.check(now + day, skus, np.array([50.0, 50.0]), mean, p90) == []  # once per spell
    assert d.check(now + day, skus, np.array([0.0, 0.0]), mean, p90) == []  # not in stock
    d.sale("single", now + day, 1)
    assert d.check(now + 4 * day, skus, np.array([50.0, 50.0]), mean, p90)[0].sku == "single"


def test_shelf_watch_converts_weights_and_units():
    w = ShelfWatch(unit_weight_g={"A": 250.0})
    w.observe("shelf_weight", "A", 0, 2500.4)
    w.observe("shelf_weight", "A", 10, 1999.2)  # 2 units
    w.observe("shelf_units", "B", 0, 10)
    w.observe("shelf_units", "B", 10, 9)
    w.observe("shelf_weight", "C", 10, 100.0)  # no unit weight known
    assert w.unknown_weight_readings == 1
    w.observe("sale", "A", 100, 2)
    alerts = w.advance(5000)
    assert [(a.sku, a.evidence["units"]) for a in alerts] == [("B", 1)]


def test_alerts_of_a_simulated_store_become_valid_anomaly_messages():
    sim = simulate(sales_stream(days=5), SensorConfig(seed=11, thefts_per_day=6, misscan_rate=0.02))
    watch = ShelfWatch(unit_weight_g=sim.unit_weight_g)
    events, _ = parse_events(sim.events, store_id="S1")
    alerts = [a for e in events for a in watch.observe_event(e)]
    alerts += watch.advance(events[-1].ts_us / 1e6 + 86400)
    assert {a.kind for a in alerts} >= {"theft"}
    for a in alerts:
        msg = parse_message(a.to_message("S1", "test-1").to_json())
        assert msg.kind == "anomaly" and msg.sku == a.sku and msg.reason_codes


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C"]),
            st.integers(1, 5),  # qty
            st.floats(0, 20_000),  # sale time
            st.floats(1, 1_200),  # pick lead
            st.floats(1, 600),  # exit lag
            st.booleans(),  # tagged exit read
        ),
        max_size=40,
    )
)
def test_an_honest_store_never_raises_a_theft(shoppers):
    """Any interleaving of shoppers who pick, pay within the window and leave: no alert."""
    events = []
    for sku, qty, t, lead, lag, tagged in shoppers:
        events.append((t - lead, "shelf", sku, qty))
        events.append((t, "sale", sku, qty))
        if tagged:
            events.append((t + lag, "gate", sku, qty))
    events.sort(key=lambda e: (e[0], e[1] != "shelf"))
    m = RemovalMatcher(pick_window_s=1800, gate_window_s=1800)
    alerts = []
    for t, kind, sku, qty in events:
        alerts += m.advance(t)
        if kind == "shelf":
            m.shelf(sku, t, qty)
        elif kind == "sale":
            m.sale(sku, t, qty)
        else:
            alerts += m.gate(sku, t, qty)
    alerts += m.advance(1e9)
    assert alerts == []


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4), st.floats(0, 20_000), st.sampled_from(["A", "B"]), st.booleans())
def test_a_theft_among_shoppers_is_always_reported_for_its_sku(qty, t, sku, tagged):
    events = []
    for i in range(24):  # honest traffic on both SKUs, before, during and after the theft
        s = "A" if i % 2 else "B"
        events += [(i * 900.0, "shelf", s, 1), (i * 900.0 + 300, "sale", s, 1)]
    events.append((t, "shelf", sku, qty))
    if tagged:
        events.append((t + 120, "gate", sku, qty))
    events.sort(key=lambda e: (e[0], e[1] != "shelf"))
    m = RemovalMatcher()
    alerts = []
    for when, kind, s, q in events:
        alerts += m.advance(when)
        if kind == "shelf":
            m.shelf(s, when, q)
        elif kind == "sale":
            m.sale(s, when, q)
        else:
            alerts += m.gate(s, when, q)
    alerts += m.advance(1e9)
    # A later shopper's sale may take the thief's removal (FIFO) and leave their own unmatched,
    # so the units can come in two alerts; all theft, all this SKU, adding up to what was taken.
    assert alerts and {(a.kind, a.sku) for a in alerts} == {("theft", sku)}
    assert sum(a.evidence["units"] for a in alerts) == qty


@pytest.mark.parametrize(
    "module",
    [
        "edge_runtime.forecast.demand_distribution",
        "edge_runtime.decide.stockout",
        "edge_runtime.decide.replenishment",
        "edge_runtime.decide.service_level",
        "edge_runtime.watch.shrink",
        "edge_runtime.watch.phantom",
        "edge_runtime.watch.shelf_watch",
        "edge_runtime.forecast.online",
        "edge_runtime.forecast.scoring",
        "edge_runtime.forecast.daily_sales",
        "edge_runtime.decide.day_close",
        "edge_runtime.decide.forecast_policy",
        "edge_runtime.watch.count_watch",
        "edge_runtime.bundles",
        "twin.sensors",
        "twin.store",
        "twin.policies",
        "twin.simulate",
        "twin.gateway_engine",
        "feature_store.censored_demand",
    ],
)
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
