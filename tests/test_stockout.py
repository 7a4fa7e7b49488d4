"""Stock-out probability (negative binomial over the lead time) and the publish hysteresis."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from edge_runtime.decide.stockout import StockoutMonitor, stockout_risk
from edge_runtime.forecast.demand_distribution import over_days, prob_at_least, prob_zero


def test_probability_matches_scipy_negative_binomial():
    mean, p90 = np.array([1.5, 4.0, 0.4]), np.array([3.5, 9.0, 2.0])
    m, v = over_days(mean, p90, 4)
    r = m * m / (v - m)
    p = r / (r + m)
    atp = np.array([5.0, 20.0, 1.0])
    expected = stats.nbinom.sf(atp - 1, r, p)  # P(D >= atp)
    np.testing.assert_allclose(prob_at_least(m, v, atp), expected, rtol=1e-9)
    np.testing.assert_allclose(prob_zero(m, v), stats.nbinom.pmf(0, r, p), rtol=1e-9)


def test_probability_is_monotone_in_atp_and_lead_time():
    mean, p90 = np.full(50, 3.0), np.full(50, 6.0)
    atp = np.arange(50, dtype=float)
    p = stockout_risk(mean, p90, atp, 3).probability
    assert np.all(np.diff(p) <= 1e-12)
    longer = stockout_risk(mean, p90, atp, 6).probability
    assert np.all(longer >= p - 1e-12)


def test_edge_cases_out_of_stock_and_no_demand():
    risk = stockout_risk(
        np.array([0.0, 2.0, 2.0]), np.array([0.0, 4.0, 4.0]), np.array([5.0, 0.0, -3.0]), 2
    )
    assert risk.probability.tolist() == [0.0, 1.0, 1.0]
    assert risk.expected_days[0] == np.inf and risk.expected_days[1] == 0.0


def test_calibrated_against_simulated_demand():
    rng = np.random.default_rng(3)
    mean, p90 = np.full(20000, 2.0), np.full(20000, 4.5)
    m, v = over_days(mean[:1], p90[:1], 3)
    r = float(m[0] ** 2 / (v[0] - m[0]))
    demand = rng.negative_binomial(r, r / (r + float(m[0])), size=20000)
    atp = rng.integers(0, 15, size=20000).astype(float)
    prob = stockout_risk(mean, p90, atp, 3).probability
    outcome = demand >= atp
    for lo in (0.1, 0.4, 0.7):
        sel = (prob >= lo) & (prob < lo + 0.2)
        assert abs(outcome[sel].mean() - prob[sel].mean()) < 0.03


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="lead_time_days"):
        stockout_risk(np.ones(2), np.ones(2), np.ones(2), 0)
    with pytest.raises(ValueError, match="shape"):
        stockout_risk(np.ones(2), np.ones(2), np.ones(3), 1)


def test_monitor_publishes_on_crossing_and_material_change_only():
    mon = StockoutMonitor(threshold=0.5, min_change=0.1, hysteresis=0.05)
    skus = ["a", "b"]
    assert mon.update(skus, [0.4, 0.6]).published == ["b"]
    assert mon.update(skus, [0.45, 0.65]).published == []  # b moved 0.05: not material
    assert mon.update(skus, [0.5, 0.75]).published == ["a", "b"]
    up = mon.update(skus, [0.2, 0.74])
    assert up.cleared == ["a"] and up.published == []
    assert mon.update(skus, [0.5, 0.74]).published == ["a"]  # re-armed after clearing
    assert set(mon.under_alert()) == {"a", "b"}


def test_median_widens_lumpy_demand_and_matches_the_negative_binomial_median():
    from edge_runtime.forecast.demand_distribution import variance_from_median

    mean = np.array([3.0, 3.0, 10.0, 0.5, 40.0])
    p50 = np.array([3.0, 0.0, 2.0, 0.0, 31.0])
    v = variance_from_median(mean, p50)
    assert v[0] == pytest.approx(3.0) and v[3] == pytest.approx(0.5)  # Poisson already fits
    lumpy = v > mean * 1.001
    r = mean[lumpy] ** 2 / (v[lumpy] - mean[lumpy])
    medians = stats.nbinom.median(r, r / (r + mean[lumpy]))
    np.testing.assert_array_equal(medians, p50[lumpy])
    # A lumpy SKU (median 0) is much less sure to sell out 2 units than its mean suggests
    plain = stockout_risk(np.array([3.0]), np.array([6.0]), np.array([2.0]), 1).probability
    lumpy_p = stockout_risk(np.array([3.0]), np.array([6.0]), np.array([2.0]), 1,
                            p50_daily=np.array([0.0])).probability  # fmt: skip
    assert lumpy_p[0] < plain[0] - 0.2
