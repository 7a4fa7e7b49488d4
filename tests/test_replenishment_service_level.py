"""Marginal-analysis buffers (edge_runtime.decide.service_level) and the order-up-to rule that uses them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.decide.replenishment import order_quantities, order_quantities_with_buffer
from edge_runtime.decide.service_level import buffer_exceeded_every


def _lost(days: np.ndarray, buffer: np.ndarray) -> float:
    """Units lost over ``days`` (SKUs x days) when each day starts with ``buffer`` on the shelf."""
    return float(np.maximum(days - buffer[:, None], 0.0).sum())


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0, 500, allow_nan=False), min_size=30, max_size=400),
    st.floats(1.5, 200.0),
)
def test_the_buffer_lies_between_the_days_exceeded_twice_and_half_as_often(days, every):
    units = np.array([days])
    buffer = buffer_exceeded_every(units, every)[0]
    often = np.quantile(units[0], max(1.0 - 2.0 / every, 0.0))  # exceeded on 2 / every of days
    rarely = np.quantile(units[0], 1.0 - 0.5 / every)  # on half of 1 / every
    assert often - 1e-9 <= buffer <= rarely + 1e-9
    assert buffer_exceeded_every(units, every * 1.5)[0] >= buffer - 1e-9  # more days, more stock


def test_one_more_large_day_in_the_year_moves_the_buffer_by_less_than_half_an_order():
    """Why the quantile is smoothed: at every_days 61 the plain quantile of a year is its 7th
    largest day, so a seventh 300-unit order entering the year would lift it from the usual
    day (2) to 300 units at once."""
    year = np.full(364, 2.0)
    six, seven = year.copy(), year.copy()
    six[::61] = 300.0
    seven[::52] = 300.0
    assert (six == 300).sum() == 6 and (seven == 300).sum() == 7
    jump = buffer_exceeded_every(np.stack([seven, six]), 61.0) @ np.array([1.0, -1.0])
    assert 0 < jump < 150.0


def test_missing_days_are_ignored_and_no_history_gives_no_buffer():
    history = np.array([[1.0, np.nan, 3.0, np.nan, 5.0], [np.nan] * 5])
    same_days = buffer_exceeded_every(np.array([[1.0, 3.0, 5.0]]), 2.0)[0]
    assert buffer_exceeded_every(history, 2.0).tolist() == [same_days, 0.0]
    assert 1.0 < same_days < 5.0
    assert buffer_exceeded_every(np.zeros((2, 0)), 10.0).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="every_days"):
        buffer_exceeded_every(history, 1.0)


def test_marginal_buffers_lose_fewer_units_than_one_z_for_the_same_stock():
    """The Lagrangian claim on a steady and a wholesale SKU: for the same total buffer, the
    marginal rule's split loses fewer units on these days than the normal z * sigma split."""
    rng = np.random.default_rng(7)
    steady = rng.poisson(20.0, 364).astype(float)
    wholesale = rng.poisson(3.0, 364).astype(float)
    wholesale[rng.choice(364, 12, replace=False)] += rng.uniform(150, 250, 12).round()
    days = np.stack([steady, wholesale])
    marginal = buffer_exceeded_every(days, 20.0)
    sigma = days.std(axis=1)
    normal = sigma * marginal.sum() / sigma.sum()  # one z, same total stock
    assert normal.sum() == pytest.approx(marginal.sum())
    assert _lost(days, marginal) < 0.9 * _lost(days, normal)


def test_buffer_rule_is_the_normal_rule_when_the_buffer_is_z_sigma():
    common = dict(
        atp=np.array([12.0, 0.0, 80.0]),
        on_order=np.array([0.0, 6.0, 0.0]),
        lead_time_days=2,
        review_days=7,
        pack_size=np.array([6.0, 1.0, 12.0]),
        moq=np.array([0.0, 10.0, 0.0]),
        capacity=np.array([1000.0, 40.0, 100.0]),
    )
    mean, sigma = np.array([10.0, 3.0, 8.0]), np.array([3.0, 2.0, 5.0])
    normal = order_quantities(mean, sigma, z=1.645, **common)
    buffered = order_quantities_with_buffer(mean, 1.645 * sigma * math.sqrt(9), **common)
    for field in ("order_up_to", "safety_stock", "quantity", "capped", "below_moq"):
        np.testing.assert_allclose(getattr(buffered, field), getattr(normal, field))


def test_buffer_rule_packs_and_capacity():
    plan = order_quantities_with_buffer(
        np.array([10.0]), np.array([300.0]), np.array([40.0]),
        lead_time_days=2, review_days=7, pack_size=12.0, capacity=200.0,
    )  # fmt: skip
    assert plan.order_up_to[0] == 390.0
    assert plan.quantity[0] == 156.0 and plan.capped[0]  # room 160 -> 13 packs of 12
    with pytest.raises(ValueError, match="lead_time_days"):
        order_quantities_with_buffer(np.array([1.0]), np.array([1.0]), np.array([0.0]),
                                     lead_time_days=0)  # fmt: skip
