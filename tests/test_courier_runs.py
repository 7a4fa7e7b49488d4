"""Last-mile pricing by courier runs: a store's same-day parcels to one city share its vans, so
a parcel joining a run already going there costs a stop, never more than its own courier trip;
the network twin bills every policy by it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hub.courier_runs import CourierRuns
from hub.fulfilment_cost import CostModel
from hub.routing import Router
from tests.test_network_twin import START, network
from twin.network_twin import NetworkTwin, Scenario, ShelfTruth, choosers
from twin.online_orders import OnlineChannel
from twin.policies import MovingAverageForecaster, OrderUpToPolicy
from twin.store import StoreConfig


def test_a_van_already_going_to_a_city_carries_one_more_parcel_for_a_stop():
    cost = CostModel()
    runs = CourierRuns(cost)
    alone = cost.courier_base + cost.courier_per_km * 6.0
    assert runs.marginal("S", "LA", 6.0) == pytest.approx(alone)
    paid = [runs.join("S", "LA", 6.0) for _ in range(30)]
    # The first parcels go by courier until a van is cheaper; from then on each is a stop.
    assert paid[0] == pytest.approx(alone)
    assert runs.marginal("S", "LA", 6.0) == pytest.approx(cost.run_drop)
    assert sum(paid) == pytest.approx(runs.total()) and runs.vans() == 1
    van = cost.run_base + cost.run_per_km * 6.0 + 30 * cost.run_drop
    assert runs.total() == pytest.approx(van) and van < 30 * alone
    # Another city, or another store, has no van yet.
    assert runs.marginal("S", "Long Beach", 6.0) == pytest.approx(alone)
    assert runs.marginal("S2", "LA", 6.0) == pytest.approx(alone)


def test_no_day_costs_more_than_its_parcels_each_sent_by_courier():
    cost = CostModel()
    rng = np.random.default_rng(0)
    for n in (1, 5, 12, 41, 130):
        runs = CourierRuns(cost)
        km = rng.uniform(0, 40, n)
        paid = [runs.join("S", "Z", float(k)) for k in km]
        alone = (cost.courier_base + cost.courier_per_km * km).sum()
        assert runs.total() <= alone + 1e-9
        assert sum(paid) == pytest.approx(runs.total())
        assert min(paid) >= cost.run_drop - 1e-9


def test_the_twin_bills_what_the_vans_carried_not_what_a_chooser_expected():
    # Nearest-store chooses the same plans whatever it expects a parcel to cost; a router that
    # expects every van to fill (a huge ``run_fill``) prices each parcel at a stop, and the bill
    # must not follow that hope.
    modest = two_days("runs", Router())["nearest"]
    hopeful = two_days("runs", Router(run_fill=1e9))["nearest"]
    assert hopeful.store_units == modest.store_units and hopeful.vans == modest.vans
    assert hopeful.direct["shipping"] == pytest.approx(modest.direct["shipping"])


def two_days(tariff: str, router: Router | None = None):
    data = network(skus=60)
    data = replace(data, dates=data.dates[: START + 2], units=data.units[:, :, : START + 2] * 4)
    truth, config = ShelfTruth(hidden_shrink_share=0.0), StoreConfig()
    sc = Scenario.draw(data, START, OnlineChannel(share=0.5), truth, config, seed=1)
    twin = NetworkTwin(
        sc,
        lambda: OrderUpToPolicy(MovingAverageForecaster(days=START)),
        config,
        CostModel(),
        truth,
        tariff,
    )
    return {name: twin.run(name, c) for name, c in choosers(router or Router()).items()}


def test_the_twin_bills_every_policy_by_its_runs_or_by_the_parcel():
    runs, per_parcel = two_days("runs"), two_days("per-parcel")
    near = runs["nearest"]
    # Nearest-store does not choose on runs, yet shares vans: it is billed less than per parcel.
    assert near.vans > 0
    assert near.direct["shipping"] < near.shipping_per_parcel - 1.0
    # The same plans as under the per-parcel tariff, which bills each parcel on its own.
    old = per_parcel["nearest"]
    assert old.shipping_per_parcel == pytest.approx(near.shipping_per_parcel)
    assert old.direct["shipping"] == pytest.approx(old.shipping_per_parcel) and old.vans == 0
    # The DC's parcels go by carrier under either tariff.
    assert runs["dc_only"].direct["shipping"] == pytest.approx(
        per_parcel["dc_only"].direct["shipping"]
    )
    with pytest.raises(ValueError, match="tariff='flat'"):
        two_days("flat")
