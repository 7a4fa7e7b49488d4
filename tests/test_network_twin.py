"""The network twin on a small synthetic M5-shaped network: the choosers meet the same orders,
the online channel keeps the real total demand, DC-only touches no store, and a store whose book
overstates its shelf breaks promises that the router (which reads the ledger's confidence)
avoids."""

from __future__ import annotations

import numpy as np
import pytest

from hub.fulfilment_cost import CostModel
from hub.routing import Router
from twin.network_places import STORES
from twin.network_twin import NetworkData, NetworkTwin, Scenario, ShelfTruth, choosers, summary
from twin.online_orders import OnlineChannel
from twin.policies import MovingAverageForecaster, OrderUpToPolicy
from twin.store import DemandPanel, StoreConfig

DAYS, START = 28, 14


def network(skus: int = 12, seed: int = 3) -> NetworkData:
    rng = np.random.default_rng(seed)
    stores = sorted(STORES)
    level = rng.gamma(1.0, 2.0, (len(stores), skus))
    units = rng.poisson(level[:, :, None], (len(stores), skus, DAYS)).astype(float)
    dates = np.datetime64("2016-04-25") + np.arange(DAYS)
    return NetworkData(
        stores, np.array([f"K{i}" for i in range(skus)]), dates, units, np.full(skus, 5.0)
    )


def replay(data: NetworkData, truth: ShelfTruth, share: float = 0.2):
    config = StoreConfig()
    sc = Scenario.draw(data, START, OnlineChannel(share=share), truth, config, seed=1)
    twin = NetworkTwin(
        sc, lambda: OrderUpToPolicy(MovingAverageForecaster(days=START)), config, CostModel(), truth
    )
    runs = {name: twin.run(name, c) for name, c in choosers(Router()).items()}
    return sc, runs


@pytest.fixture(scope="module")
def honest_books():
    return replay(network(), ShelfTruth(hidden_shrink_share=0.0))


def test_online_orders_are_carved_out_of_real_demand_not_added(honest_books):
    sc, runs = honest_books
    online = sum(o.qty.sum() for o in sc.orders)
    replay_units = sc.data.units[:, :, START:].sum()
    assert sc.walk_in[:, :, START:].sum() + online == pytest.approx(replay_units)
    assert {r.orders for r in runs.values()} == {len(sc.orders)} and len(sc.orders) > 100


def test_a_day_without_online_units_draws_no_order():
    units = np.full((2, 3, 4), 5.0)
    walk_in, orders = OnlineChannel(share=0.0).draw(units, ["CA", "TX"], np.random.default_rng(0))
    assert orders == [] and (walk_in == units).all()
    _, orders = OnlineChannel(share=0.3).draw(units, ["CA", "TX"], np.random.default_rng(1))
    assert orders and all(len(o.items) > 0 for o in orders)


def test_dc_only_takes_nothing_from_the_stores(honest_books):
    _, runs = honest_books
    dc = runs["dc_only"]
    assert dc.store_units == 0 and dc.cancelled_lines == 0 and dc.same_day_orders == 0


def test_with_exact_books_no_chooser_breaks_a_promise(honest_books):
    _, runs = honest_books
    assert all(r.cancelled_lines == 0 for r in runs.values())
    assert runs["nearest"].store_units > 0


def test_phantom_stock_breaks_promises_and_pricing_its_risk_avoids_them():
    data, truth = network(), ShelfTruth(hidden_shrink_share=0.6, count_every_days=56)
    sc, runs = replay(data, truth)
    assert runs["nearest"].cancelled_lines > 0
    assert runs["router"].cancelled_lines < runs["nearest"].cancelled_lines
    per = summary(runs, CostModel())
    assert per["router"]["cost_per_order"] < per["nearest"]["cost_per_order"]
    assert per["dc_only"]["store_lost_units_caused"] == 0
    # The same router told that a broken promise costs nothing breaks more of them.
    blind = NetworkTwin(
        sc,
        lambda: OrderUpToPolicy(MovingAverageForecaster(days=START)),
        StoreConfig(),
        CostModel(),
        truth,
    ).run("blind", Router(CostModel(cancel_line=0.0)).plan)
    assert runs["router"].cancelled_lines < blind.cancelled_lines


def test_bounds_show_the_router_the_real_shelf_or_the_demand_to_come():
    # Heavy hidden shrink: the books overstate the shelves. Shown the real shelves, the router
    # breaks no promise; shown the future, the lead demand it prices is the walk-in to come.
    data, truth = network(), ShelfTruth(hidden_shrink_share=0.6, count_every_days=56)
    config = StoreConfig()
    sc = Scenario.draw(data, START, OnlineChannel(share=0.2), truth, config, seed=1)
    twin = NetworkTwin(
        sc, lambda: OrderUpToPolicy(MovingAverageForecaster(days=START)), config, CostModel(), truth
    )
    router = Router()
    assert twin.run("router", router.plan).cancelled_lines > 0
    assert twin.run("shelf", router.plan, sees="shelf").cancelled_lines == 0
    seen = []

    def recording(order, cand, runs):
        seen.append(cand.lead_demand[: len(data.store_ids)].copy())
        return router.plan(order, cand, runs)

    twin.run("future", recording, sees="future")
    first = next(o for o in sc.orders if o.day == START)
    # The first replay day is a review day: its cover is the lead time of today's order.
    come = sc.walk_in[:, first.items, START : START + config.lead_time].sum(axis=2)
    assert np.allclose(seen[0], come)
    with pytest.raises(ValueError, match="sees='oracle'"):
        twin.run("bad", router.plan, sees="oracle")


def test_stores_reorder_at_every_review_so_steady_demand_is_met(honest_books):
    # Receipts close a store's open orders: without them a SKU ordered at the first review
    # would not be ordered again, and the second week would run its shelves dry.
    sc, runs = honest_books
    walk_in = sc.walk_in[:, :, START:].sum()
    assert runs["dc_only"].store_lost_units < 0.005 * walk_in


def test_stores_run_the_gateway_engine_and_the_hub_reads_its_forecast(tmp_path):
    from tests.test_gateway_model import demand_bundle
    from twin.gateway_engine import GatewayPolicy
    from twin.network_stores import NetworkStores

    bundle = demand_bundle(tmp_path / "bundle")  # a real ONNX model: the mean is mean_7
    data, truth, config = network(), ShelfTruth(hidden_shrink_share=0.0), StoreConfig()
    sc = Scenario.draw(data, START, OnlineChannel(share=0.2), truth, config, seed=1)
    twin = NetworkTwin(sc, lambda: GatewayPolicy(bundle), config, CostModel(), truth)
    runs = {name: twin.run(name, c) for name, c in choosers(Router()).items()}
    assert {r.replenishment for r in runs.values()} == {"gateway"}
    assert runs["dc_only"].store_lost_units < 0.005 * sc.walk_in[:, :, START:].sum()
    assert runs["router"].store_units > 0 and runs["nearest"].store_units > 0
    # Every store's day close re-scored each replayed day (and once at start-up), and what the
    # hub reads of a store's demand is that table's mean.
    panels = [
        DemandPanel(s, data.skus, data.dates, data.units[k]) for k, s in enumerate(data.store_ids)
    ]
    stores = NetworkStores(panels, lambda: GatewayPolicy(bundle), START, config)
    gateway = stores.policies[0]
    assert sorted(gateway.trace) == [START - 1]
    book = stores.start_stock.astype(float)
    ahead = stores.outlook(START, book, np.zeros_like(book), data.units, 3)
    assert np.allclose(ahead[0], gateway.trace[START - 1][0][:, :3])
    recent = data.units[0, :, START - 7 : START].mean(axis=1)  # mean_7 at the last close
    assert np.allclose(ahead[0][:, 0], recent, atol=1e-4)
    # The spread the hub prices a store's demand with is that table's P90, the gateway's rule.
    from edge_runtime.forecast.demand_distribution import daily_sigma

    mean, p90 = gateway.trace[START - 1]
    spread = stores.dispersion(START)
    sold = mean.sum(axis=1) > 0
    var = (daily_sigma(mean, p90) ** 2).sum(axis=1)
    assert np.allclose(spread[0][sold], np.maximum(var[sold] / mean.sum(axis=1)[sold], 1.0))
    assert (spread >= 1.0).all() and (spread[0][sold] > 1.0).any()


def test_a_bundle_trained_on_the_replay_days_is_refused(tmp_path):
    import json

    from benchmarks.routing import network_bundle

    first = np.datetime64("2016-05-09")
    for end, ok in (("2016-05-08", True), ("2016-05-09", False)):
        (tmp_path / "metadata.json").write_text(json.dumps({"training_data": {"end": end}}))
        if ok:
            assert network_bundle(first, 10, tmp_path)[0] == tmp_path
        else:
            with pytest.raises(SystemExit, match="trained on data to 2016-05-09"):
                network_bundle(first, 10, tmp_path)
