"""The fulfilment router on small networks whose right answer is known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hub.route_reasons import MEANINGS, RouteReason
from hub.routing import Candidates, NoPlan, Order, Router

# Los Angeles: a store in the delivery city, one 30 km away; the DC in Phoenix (two days away).
IDS = ["S_city", "S_30km", "DC"]
LAT, LON = [34.05, 34.32, 33.45], [-118.25, -118.25, -112.07]


def network(atp, confidence=None, lead=None, sell=None, conflicts=None, lines=1, value=5.0):
    m = len(IDS)
    return Candidates.build(
        ids=IDS,
        lat=LAT,
        lon=LON,
        is_dc=[False, False, True],
        atp=atp,
        confidence=confidence if confidence is not None else np.ones((m, lines)),
        lead_demand=lead if lead is not None else np.zeros((m, lines)),
        sell_through=sell if sell is not None else np.full((m, lines), 1e9),
        unit_value=[value] * lines,
        conflicts=conflicts,
    )


def order(lines=1, promised=1):
    return Order(
        "o", np.array([f"K{i}" for i in range(lines)]), np.ones(lines), 34.05, -118.25, promised
    )


def where(plan):
    return {s.location_id: s.skus for s in plan.shipments}


def test_deep_trusted_stock_in_the_delivery_city_ships_from_there_the_same_day():
    plan = Router().plan(order(), network([[20.0], [20.0], [np.inf]]))
    assert where(plan) == {"S_city": ("K0",)}
    assert plan.reasons == [
        RouteReason.SHIP_FROM_STORE,
        RouteReason.SAME_DAY,
        RouteReason.NEAREST_WITH_STOCK,
    ]


def test_one_parcel_from_further_away_beats_the_default_split_across_the_nearest_stores():
    # The city store has K0 only, the 30 km store K1 only: the default ships two parcels.
    net = network([[5.0, 0.0], [0.0, 5.0], [np.inf, np.inf]], lines=2)
    router = Router()
    nearest = router.nearest_with_stock(order(2), net)
    assert where(nearest) == {"S_city": ("K0",), "S_30km": ("K1",)}
    plan = router.plan(order(2), net)
    assert plan.kind == "dc" and plan.cost < nearest.cost
    assert RouteReason.FEWER_PARCELS in plan.reasons


def test_a_store_with_recent_conflicts_on_its_last_unit_is_passed_over():
    net = network(
        [[1.0], [20.0], [np.inf]],
        confidence=[[0.7], [1.0], [1.0]],
        conflicts=[[2.0], [0.0], [0.0]],
    )
    plan = Router().plan(order(), net)
    assert where(plan) == {"S_30km": ("K0",)}
    assert RouteReason.STOCK_RISK_AVOIDED in plan.reasons
    assert RouteReason.RECENT_CONFLICTS_AVOIDED in plan.reasons


def test_the_last_unit_of_a_sku_counted_two_weeks_ago_is_trusted_by_the_calibrated_risk():
    # Confidence 0.37: a SKU not counted for 14 days. About one such last unit in seven is not
    # on the shelf (the twin's outcomes), which does not pay a courier run 30 km longer.
    net = network([[1.0], [20.0], [np.inf]], confidence=[[0.37], [1.0], [1.0]])
    plan = Router().plan(order(), net)
    assert where(plan) == {"S_city": ("K0",)}
    assert 0.12 < plan.components["risk"] / 25.0 < 0.15


def test_the_last_units_a_store_needs_for_its_own_shoppers_stay_there():
    lead = [[6.0], [0.5], [0.0]]
    # A $40 item: three likely lost sales outweigh the courier's extra 30 km.
    plan = Router().plan(order(), network([[3.0], [30.0], [np.inf]], lead=lead, value=40.0))
    assert where(plan) == {"S_30km": ("K0",)}
    assert RouteReason.STORE_DEMAND_PROTECTED in plan.reasons


def test_a_delivery_due_before_the_next_order_arrives_frees_the_last_units():
    lead = [[6.0], [0.5], [0.0]]
    net = network([[3.0], [30.0], [np.inf]], lead=lead, value=40.0)
    inbound = Candidates.build(
        **{f: getattr(net, f) for f in ("ids", "lat", "lon", "is_dc", "atp", "confidence")},
        lead_demand=net.lead_demand, sell_through=net.sell_through, unit_value=net.unit_value,
        inbound=[[12.0], [0.0], [0.0]],
    )  # fmt: skip
    plan = Router().plan(order(), inbound)
    # Twelve units due tomorrow cover the city store's six expected sales: it ships, same day.
    assert where(plan) == {"S_city": ("K0",)} and plan.components["lost_sale"] < 0.05
    assert where(Router().plan(order(), inbound.without({"S_30km"}))) == {"S_city": ("K0",)}


def test_stock_above_its_sell_through_is_preferred_and_said_so():
    sell = [[1e9], [2.0], [0.0]]
    plan = Router().plan(order(), network([[20.0], [40.0], [np.inf]], sell=sell, value=40.0))
    assert where(plan) == {"S_30km": ("K0",)}
    assert RouteReason.MARKDOWN_RELIEF in plan.reasons


def test_stock_at_its_expected_sell_through_still_relieves_markdown():
    # The 30 km store holds exactly its expected sales over the markdown horizon: demand falls
    # short of that about half the time, so a unit taken there saves a likely markdown, which
    # on a $40 item outweighs the courier's extra 30 km from the city store.
    sell = [[1e9], [10.0], [0.0]]
    plan = Router().plan(
        order(promised=2), network([[30.0], [10.0], [np.inf]], sell=sell, value=40.0)
    )
    assert where(plan) == {"S_30km": ("K0",)}
    assert 0.4 < plan.components["markdown_relief"] / (0.4 * 40.0) < 0.5
    assert RouteReason.MARKDOWN_RELIEF in plan.reasons


def test_a_store_whose_demand_is_spread_wider_than_poisson_keeps_its_last_units():
    def net(dispersion):
        base = network([[4.0], [30.0], [np.inf]], lead=[[2.0], [0.5], [0.0]], value=100.0)
        fields = ("ids", "lat", "lon", "is_dc", "atp", "confidence", "lead_demand")
        return Candidates.build(
            **{f: getattr(base, f) for f in fields},
            sell_through=base.sell_through, unit_value=base.unit_value, dispersion=dispersion,
        )  # fmt: skip

    # Poisson demand of 2 rarely takes all 4 units; a forecast P90 that says the variance is
    # four times the mean makes the last units worth keeping for the city store's shoppers.
    assert where(Router().plan(order(), net(None))) == {"S_city": ("K0",)}
    plan = Router().plan(order(), net([[4.0], [1.0], [1.0]]))
    assert where(plan) == {"S_30km": ("K0",)}
    assert RouteReason.STORE_DEMAND_PROTECTED in plan.reasons


def test_no_store_stock_goes_to_the_dc_and_says_why():
    plan = Router().plan(order(), network([[0.0], [0.0], [np.inf]]))
    assert plan.kind == "dc"
    assert RouteReason.NO_STORE_STOCK in plan.reasons and RouteReason.SHIP_FROM_DC in plan.reasons


def test_a_same_day_promise_no_store_can_keep_is_marked_late():
    plan = Router().plan(order(promised=0), network([[0.0], [0.0], [np.inf]]))
    assert plan.components["late"] > 0 and RouteReason.LATE_AGAINST_PROMISE in plan.reasons


def test_without_a_dc_an_order_no_store_holds_has_no_plan():
    net = network([[0.0], [0.0], [np.inf]]).without({"DC"})
    with pytest.raises(NoPlan, match="order o"):
        Router().plan(order(), net)


def test_the_router_is_never_dearer_than_the_default_on_random_networks():
    rng = np.random.default_rng(7)
    router = Router()
    for _ in range(200):
        lines = int(rng.integers(1, 5))
        atp = np.vstack([rng.integers(0, 6, (2, lines)).astype(float), np.full((1, lines), np.inf)])
        net = network(
            atp,
            confidence=rng.uniform(0.3, 1.0, (3, lines)),
            lead=rng.uniform(0, 4, (3, lines)),
            sell=rng.uniform(0, 10, (3, lines)),
            conflicts=rng.integers(0, 2, (3, lines)),
            lines=lines,
        )
        o = order(lines, promised=int(rng.integers(0, 3)))
        assert router.plan(o, net).cost <= router.nearest_with_stock(o, net).cost + 1e-6


def test_wrong_shapes_say_which_input():
    with pytest.raises(ValueError, match=r"candidates\.atp: shape"):
        network([[1.0, 2.0]])
    with pytest.raises(ValueError, match="quantities must be positive"):
        Router().plan(
            Order("o", np.array(["K0"]), np.array([0.0]), 34.0, -118.0),
            network([[1.0], [1.0], [np.inf]]),
        )


def test_every_reason_code_has_a_meaning():
    assert set(MEANINGS) == set(RouteReason)


def test_every_reason_code_is_documented():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "routing.md").read_text()
    assert [r.value for r in RouteReason if f"`{r.value}`" not in page] == []


def test_a_parcel_joins_a_van_already_going_to_the_city_instead_of_a_dc_parcel():
    # Only the 30 km store has the SKU; alone its courier trip plus a store pick costs more than
    # a DC parcel arriving on the promised day, so the DC ships it.
    from hub.courier_runs import CourierRuns

    net = network([[0.0], [20.0], [np.inf]])
    late_ok = Order("o", np.array(["K0"]), np.ones(1), 34.05, -118.25, 2, zone="Los Angeles")
    router = Router(run_fill=0)
    runs = CourierRuns(router.cost)
    assert where(router.plan(late_ok, net, runs)) == {"DC": ("K0",)}
    # Once that store's van goes to Los Angeles today, one more parcel costs a stop.
    for _ in range(30):
        runs.join("S_30km", "Los Angeles", 30.0)
    plan = router.plan(late_ok, net, runs)
    assert where(plan) == {"S_30km": ("K0",)} and plan.delivery_days == 0
    assert plan.components["shipping"] == pytest.approx(router.cost.run_drop + router.cost.per_unit)
    # Another city's van does not help; nor does a van without the order's zone.
    other = CourierRuns(router.cost)
    for _ in range(30):
        other.join("S_30km", "Long Beach", 30.0)
    assert where(router.plan(late_ok, net, other)) == {"DC": ("K0",)}
    no_zone = Order("o", np.array(["K0"]), np.ones(1), 34.05, -118.25, 2)
    assert where(router.plan(no_zone, net, runs)) == {"DC": ("K0",)}


def test_expecting_vans_to_fill_prices_the_first_parcels_of_a_day_at_their_share():
    from hub.courier_runs import CourierRuns

    net = network([[0.0], [20.0], [np.inf]])
    late_ok = Order("o", np.array(["K0"]), np.ones(1), 34.05, -118.25, 2, zone="Los Angeles")
    cost = Router().cost
    assert where(Router(run_fill=0).plan(late_ok, net, CourierRuns(cost))) == {"DC": ("K0",)}
    plan = Router(run_fill=20).plan(late_ok, net, CourierRuns(cost))
    assert where(plan) == {"S_30km": ("K0",)}
    van = cost.run_base + cost.run_per_km * float(plan.shipments[0].km)
    assert plan.components["shipping"] == pytest.approx(
        cost.run_drop + van / 20 + cost.per_unit, abs=0.05
    )
