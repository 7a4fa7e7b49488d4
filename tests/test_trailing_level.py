"""The day close keeps the store's forecast total as the model gives it and moves its split over
the SKUs halfway towards their shares of the store's own trailing 91-day sales."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from edge_runtime.forecast.trailing_level import split_level_factor, trailing_level
from edge_runtime.gateway import Gateway
from tests.test_gateway_model import config, demand_bundle


def test_trailing_level_counts_every_day_and_only_held_days():
    units = np.zeros((3, 392))
    units[0, -91:] = 3.0
    units[0, -10] = 300.0  # a wholesale order counts in full (the model's mean carries them)
    units[1, -20:] = 4.0  # a new SKU: 20 days held, zero-padded before
    level = trailing_level(units, np.array([392, 20, 0]))
    assert level.tolist() == pytest.approx([(90 * 3.0 + 300.0) / 91, 4.0, 0.0])


def test_split_factor_keeps_the_store_total_and_moves_the_split_halfway():
    mean = np.array([[6.0, 6.0], [2.0, 2.0], [0.0, 0.0], [5.0, 5.0]])
    trailing = np.array([2.0, 2.0, 3.0, 0.0])  # SKU 2: no forecast; SKU 3: no sales
    factor = split_level_factor(mean, trailing, 0.5)
    level = (mean * factor[:, None]).mean(axis=1)
    assert level[:2].sum() == pytest.approx(8.0)  # the store's total over SKUs with both
    assert level[:2].tolist() == pytest.approx([0.5 * 6 + 0.5 * 4, 0.5 * 2 + 0.5 * 4])
    assert factor[2:].tolist() == [1.0, 1.0]
    assert split_level_factor(mean, trailing, 0.0) == pytest.approx(np.ones(4))


def _sale(eid: str, sku: str, day: dt.date, qty: float) -> dict:
    return {"event_id": eid, "store_id": "S1", "sku": sku, "type": "sale", "qty": qty,
            "event_time": f"{day.isoformat()}T10:00:00+01:00", "source": "pos"}  # fmt: skip


def test_the_gateways_day_close_moves_a_bursts_level_to_the_steady_sku(tmp_path):
    """Two SKUs sold 2 a day for twelve weeks; A then 6 a day for the last one. The bundle's
    model (its mean is the 7-day mean) says 6 and 2; their trailing 91-day sales say about 2.3
    and 2. The store's total stays the model's and its split moves halfway to the trailing
    shares, so decisions neither stock A for a week's burst as its new level nor B as if the
    store had not grown."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    start = dt.date(2025, 9, 1)
    days = [start + dt.timedelta(days=d) for d in range(92)]
    a = [2.0] * 84 + [6.0] * 8  # the 92nd day's sale closes the 91st
    events = [_sale(f"a{d}", "A", day, u) for d, (day, u) in enumerate(zip(days, a, strict=True))]
    events += [_sale(f"b{d}", "B", day, 2.0) for d, day in enumerate(days)]
    with Gateway(config(tmp_path, bundle)) as gw:
        assert gw.model.trailing_weight == 0.5
        gw.ingest(events, "seed")
        table = gw.forecasts
        assert str(table.last_close) == days[90].isoformat()
        rows = table.rows_of(["A", "B"])
        level = table.mean[rows, 0].mean(axis=1)
        central = gw.model.central.mean[gw.model.central.rows_of(["A", "B"]), 0]
    assert central[:, 0] == pytest.approx([6.0, 2.0])  # the model alone
    # River lifts A to about 7 (it under-forecast the burst) and leaves B at 2; the split then
    # moves about a unit of that level from A to B, keeping their total.
    assert level[0] < 6.5 and level[1] > 2.5
    assert level.sum() > 8.5
