"""The states a decision reviews as columns (``edge_runtime.store.state_columns``): the same
decisions as over a list of ``StockState``, and a store day's close that builds a SKU's full
state only for the SKUs it publishes a message about."""

from __future__ import annotations

import numpy as np

from edge_runtime.decide.forecast_policy import DailyForecasts, ForecastDecisionPolicy
from edge_runtime.gateway import Gateway
from edge_runtime.store import stock
from edge_runtime.store.state_columns import StateColumns
from edge_runtime.store.stock import SkuState, StockState
from tests.test_gateway_model import config, daily_sales, demand_bundle, ev

DAY_US = 86_400_000_000


def _ledger_states(n: int) -> list[SkuState]:
    """SKUs 0..n-1 with 0..n-1 units on hand, one reserved where there are two or more."""
    return [
        SkuState(f"K{i}", on_hand=i, reserved=int(i >= 2), first_us=0, last_us=i * 1000, events=1)
        for i in range(n)
    ]


def test_columns_hold_the_states_a_list_would_hold():
    states = _ledger_states(6)
    as_of = [5 * DAY_US + s.last_us for s in states]
    cols = StateColumns.of_sku_states(states, 1, as_of)
    want = [StockState.of(s, 1, t) for s, t in zip(states, as_of, strict=True)]
    assert cols.skus == [s.sku for s in want]
    assert cols.available.tolist() == [float(s.available) for s in want]
    assert list(cols) == want and cols[-1] == want[-1] and cols[1:3] == want[1:3]
    picked = cols.take([4, 2])
    assert picked.skus == ["K4", "K2"] and list(picked) == [want[4], want[2]]
    assert StateColumns.of_states(want).available.tolist() == cols.available.tolist()


def _policy(skus: list[str]) -> ForecastDecisionPolicy:
    n = len(skus)
    mean = np.full((n, 1, 3), 2.0)
    table = DailyForecasts(skus, np.datetime64("2026-01-04"), mean, 2 * mean)
    return ForecastDecisionPolicy("S1", table, "m1")


def _payloads(messages) -> list[dict]:
    out = []
    for m in messages:
        d = m.to_dict()
        d.pop("message_id"), d.pop("created_at")
        out.append(d)
    return out


def test_a_review_over_columns_decides_as_over_the_list():
    states = _ledger_states(40)
    as_of = [5 * DAY_US] * len(states)
    listed = [StockState.of(s, 0, t) for s, t in zip(states, as_of, strict=True)]
    at = "2026-01-05T23:00:00+00:00"
    skus = [s.sku for s in states][:30]  # ten SKUs without a forecast: decided on ATP
    want = _policy(skus).review(listed, {}, at)
    got = _policy(skus).review(StateColumns.of_sku_states(states, 0, as_of), {}, at)
    assert want and _payloads(got) == _payloads(want)


def seed_with_k7_low(gw, skus) -> None:
    """500 received of each SKU on day 1, a sale a day on days 1-3, then day 4 takes K7 down to
    3 (the others hold 497): the next day's first event closes day 4 with K7 to decide on."""
    seed = [ev(f"r-{k}", k, "receipt", 500, 1) for k in skus]
    gw.ingest(seed + [e for k in skus for e in daily_sales(k, 1, range(1, 4))], "seed")
    gw.ingest([ev("low", "K7", "sale", 494, 4)], "pos")


def test_decisions_build_full_states_only_for_the_skus_they_publish(tmp_path, monkeypatch):
    """Every SKU is decided at a close, but most publish nothing: their confidence and event
    times (the costly part of a state) are never computed."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    skus = [f"K{i}" for i in range(60)]
    with Gateway(config(tmp_path, bundle, SHELFCAST_MODEL_REVIEW_DAYS="0")) as gw:
        seed_with_k7_low(gw, skus)
        built: list[str] = []
        real = stock.StockState.of.__func__

        def counted(cls, s, *args):
            built.append(s.sku)
            return real(cls, s, *args)

        monkeypatch.setattr(stock.StockState, "of", classmethod(counted))
        gw.ingest([ev("next-day", "K1", "sale", 1, 5)], "pos")  # closes day 4
        closing = [m for m in gw.recent_messages() if m["cause_event_id"] is None]
    assert gw.counters["day_closes"] == 4
    assert {m["sku"] for m in closing} == {"K7"}
    # K1 (the state its event left, for the uplink) and K7 at the close: not all 60; and K1
    # once only: its decision, which published nothing, needed no full state either.
    assert sorted(set(built)) == ["K1", "K7"] and built.count("K1") == 1
