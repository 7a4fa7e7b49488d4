"""Stock-out probabilities the decisions do not act on are bounded, not computed: the same
decisions for far less incomplete-beta work."""

from __future__ import annotations

import numpy as np

import edge_runtime.forecast.demand_distribution as dd
from edge_runtime.decide.forecast_policy import DailyForecasts, ForecastDecisionPolicy
from edge_runtime.forecast.demand_distribution import over_days, prob_at_least, tail_bound
from edge_runtime.store.stock import SkuState, StockState


def _cases(n: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    mean = rng.gamma(0.8, 3.0, n)
    p90 = mean * rng.uniform(1.0, 4.0, n) + rng.uniform(0.0, 2.0, n)
    m, v = over_days(mean, p90, 2.0)
    k = np.round(rng.uniform(-2.0, 4.0, n) * m + rng.integers(-1, 30, n))
    return m, v, k


def test_the_tail_bound_is_never_below_the_probability():
    m, v, k = _cases(4000)
    assert np.all(tail_bound(m, v, k) >= prob_at_least(m, v, k) - 1e-12)


def test_below_keeps_every_probability_at_or_above_it_exact():
    m, v, k = _cases(4000)
    exact = prob_at_least(m, v, k)
    quick = prob_at_least(m, v, k, below=0.45)
    kept = quick == exact
    # Where a bound stands in, both it and the exact value are under the cut: no decision
    # made at 0.45 or above can tell them apart.
    assert np.all(quick[~kept] < 0.45) and np.all(exact[~kept] < 0.45)
    np.testing.assert_allclose(quick[exact >= 0.45], exact[exact >= 0.45], rtol=1e-12)
    assert (~kept).sum() > len(k) // 3  # most well-stocked rows are not computed


def test_rows_marked_exact_are_computed_whatever_their_bound():
    m, v, k = _cases(500)
    exact = prob_at_least(m, v, k)
    np.testing.assert_allclose(
        prob_at_least(m, v, k, below=0.45, exact=np.ones(len(k), bool)), exact, rtol=1e-12
    )


def test_a_day_close_computes_only_skus_near_the_threshold(monkeypatch):
    n = 300
    skus = [f"S{i}" for i in range(n)]
    mean = np.full((n, 1, 3), 2.0)
    table = DailyForecasts(skus, np.datetime64("2024-01-01"), mean, mean * 2.0)
    # Ten SKUs nearly out, the rest stocked for months.
    states = [
        StockState.of(SkuState(s, on_hand=1 if i < 10 else 500), safety_buffer=0, as_of_us=0)
        for i, s in enumerate(skus)
    ]
    computed = []
    real = dd.regularized_incomplete_beta

    def counted(a, b, x):
        computed.append(np.size(a))
        return real(a, b, x)

    monkeypatch.setattr(dd, "regularized_incomplete_beta", counted)
    policy = ForecastDecisionPolicy("S1", table, "v1")
    at = "2024-01-02T10:00:00+00:00"
    alerts = [m for m in policy.review(states, {}, at) if m.kind == "stockout"]
    assert sum(computed) == 10
    assert sorted(a.sku for a in alerts) == sorted(skus[:10])
    # Under alert, a SKU's probability is needed whatever it is (to clear its alert).
    computed.clear()
    restocked = [StockState.of(SkuState(s, on_hand=500), 0, 0) for s in skus]
    policy.review(restocked, {}, at)
    assert sum(computed) == 10
