"""Order-up-to replenishment: rules, pack sizes, MOQ, capacity, open orders."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.decide.replenishment import Replenisher, order_quantities


def plan(**kw):
    base = dict(
        mean_daily=np.array([10.0]),
        sigma_daily=np.array([3.0]),
        atp=np.array([12.0]),
        on_order=np.array([0.0]),
        lead_time_days=2,
        review_days=1,
        z=1.645,
    )
    base.update(kw)
    return order_quantities(**base)


def test_order_up_to_level_and_rounding_to_packs():
    p = plan(pack_size=6.0)
    s = 10 * 3 + 1.645 * 3 * math.sqrt(3)
    assert p.order_up_to[0] == pytest.approx(s)
    assert p.quantity[0] == 30.0  # need 26.5 -> 5 packs of 6


def test_moq_on_order_and_capacity():
    assert plan(moq=40.0, pack_size=6.0).quantity[0] == 42.0  # MOQ rounded up to packs
    assert plan(on_order=np.array([30.0])).quantity[0] == 0.0  # position already above S
    capped = plan(capacity=30.0)
    assert capped.quantity[0] == 18.0 and capped.capped[0]
    refused = plan(capacity=30.0, moq=20.0)
    assert refused.quantity[0] == 0.0 and refused.below_moq[0]


def test_bad_pack_size_is_reported():
    with pytest.raises(ValueError, match="pack_size"):
        plan(pack_size=0.0)


@settings(max_examples=200, deadline=None)
@given(
    mean=st.floats(0, 50),
    sigma=st.floats(0, 20),
    atp=st.floats(-10, 200),
    on_order=st.floats(0, 100),
    pack=st.integers(1, 24),
    moq=st.integers(0, 60),
    cap=st.floats(1, 500),
)
def test_properties(mean, sigma, atp, on_order, pack, moq, cap):
    p = plan(
        mean_daily=np.array([mean]),
        sigma_daily=np.array([sigma]),
        atp=np.array([atp]),
        on_order=np.array([on_order]),
        pack_size=float(pack),
        moq=float(moq),
        capacity=cap,
    )
    q = p.quantity[0]
    assert q >= 0 and q % pack == 0
    if q > 0:
        assert q >= moq
        assert atp + on_order + q <= cap + 1e-9
        # never orders a whole pack more than needed unless the MOQ forces it
        assert q - pack < max(
            p.order_up_to[0] - p.inventory_position[0], math.ceil(moq / pack) * pack
        )


def test_open_order_blocks_duplicates_and_receipt_closes_it():
    r = Replenisher(lead_time_days=2, items={"a": {"pack_size": 12, "moq": 24, "capacity": 200}})
    args = (np.array([5.0]), np.array([2.0]), np.array([1.0]))
    first = r.review(["a"], *args)
    assert (
        len(first) == 1
        and first[0].quantity == 24
        and first[0].reason_codes == ("BELOW_ORDER_UP_TO",)
    )
    assert r.review(["a"], *args) == []
    r.assign_order_id("a", "PO-1")
    assert r.receive("a", 24, order_id="PO-2") is False  # another order's receipt
    assert r.receive("a", 24, order_id="PO-1") is True
    assert len(r.review(["a"], *args)) == 1
