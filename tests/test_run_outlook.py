"""The day's vans as one plan: a same-day parcel is priced at the run its city can expect from
earlier days' parcels, the first store to run there expects the city's day and a second store
only what is left, and nothing of the day's later orders is known."""

from __future__ import annotations

import numpy as np
import pytest

from hub.courier_runs import CourierRuns
from hub.fulfilment_cost import CostModel
from hub.routing import Candidates, Order, Router
from hub.run_outlook import RunOutlook
from tests.test_courier_runs import two_days


def outlook_of(parcels_per_day: dict[str, list[int]]) -> RunOutlook:
    outlook = RunOutlook()
    days = len(next(iter(parcels_per_day.values())))
    for d in range(days):
        runs = CourierRuns(CostModel())
        for zone, counts in parcels_per_day.items():
            for _ in range(counts[d]):
                runs.join("S", zone, 5.0)
        outlook.close_day(runs)
    return outlook


def test_the_outlook_is_the_mean_of_the_last_window_of_days():
    outlook = outlook_of({"LA": [70, 10, 20, 30]})
    assert outlook.expected("LA") == pytest.approx(32.5)
    outlook.window = 2
    outlook.close_day(CourierRuns(CostModel()))  # a day without a parcel there
    assert outlook.expected("LA") == pytest.approx(15.0)
    assert RunOutlook().expected("LA") is None


def test_a_second_store_expects_only_what_the_first_stores_van_leaves():
    runs = CourierRuns(CostModel(), outlook=outlook_of({"LA": [30, 30]}))
    assert runs.expected_fill("A", "LA") == pytest.approx(30)
    for _ in range(12):
        runs.join("A", "LA", 5.0)
    assert runs.expected_fill("B", "LA") == pytest.approx(18)
    assert runs.expected_fill("A", "LA") == pytest.approx(30)
    for _ in range(25):
        runs.join("A", "LA", 5.0)
    # More than expected came already: A's van carries them all and this one too.
    assert runs.expected_fill("A", "LA") == pytest.approx(38)
    assert runs.expected_fill("B", "LA") == pytest.approx(1)
    assert CourierRuns(CostModel()).expected_fill("A", "LA") is None


def one_store_and_a_dc():
    # A store 25 km from the customer (a same-day van or courier) and a DC 70 km away.
    cand = Candidates.build(
        ids=["S", "DC"],
        lat=[34.05 + 25 / 111, 34.05 - 70 / 111],
        lon=[-118.24, -118.24],
        is_dc=[False, True],
        atp=[[50.0], [np.inf]],
        confidence=[[1.0], [1.0]],
        lead_demand=[[1.0], [0.0]],
        sell_through=[[10.0], [0.0]],
        unit_value=[5.0],
    )
    order = Order("o", np.array(["A"]), np.array([1.0]), 34.05, -118.24, 1, zone="LA")
    return order, cand


def test_a_city_whose_vans_rarely_fill_gets_no_parcel_priced_as_a_full_van():
    order, cand = one_store_and_a_dc()
    router = Router()
    # Nothing learnt: the router expects a full van (run_fill) and ships from the store.
    hopeful = router.plan(order, cand, CourierRuns(CostModel()))
    assert [s.location_id for s in hopeful.shipments] == ["S"]
    # Earlier days sent two parcels a day there: the van would carry two, so the parcel would
    # go by courier, and the DC's parcel is cheaper.
    thin = router.plan(order, cand, CourierRuns(CostModel(), outlook=outlook_of({"LA": [2, 2]})))
    assert [s.location_id for s in thin.shipments] == ["DC"]
    # A city that takes a full van a day: the store again.
    busy = router.plan(order, cand, CourierRuns(CostModel(), outlook=outlook_of({"LA": [40, 40]})))
    assert [s.location_id for s in busy.shipments] == ["S"]


def test_the_twin_shows_each_day_what_the_days_before_it_carried():
    seen: list[float | None] = []

    class Watched(Router):
        def plan(self, order, cand, runs=None):
            seen.append(runs.outlook.expected(order.zone))
            return super().plan(order, cand, runs)

    two_days("runs", Watched())
    first_day = [e for e in seen if e is None]
    assert first_day and len(first_day) < len(seen)  # the first day knows no earlier day
    assert any(e is not None and e > 0 for e in seen)
