"""The day close blends each SKU's forecast level with the store's own trailing level of it: a
robust 91-day mean, moved by the store's season a year ago."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from edge_runtime.forecast.trailing_level import (
    blended_level_factor,
    store_season,
    trailing_level,
)
from edge_runtime.gateway import Gateway
from tests.test_gateway_model import config, demand_bundle


def test_trailing_level_clips_large_days_and_counts_only_held_days():
    units = np.zeros((3, 392))
    units[0, -91:] = 3.0
    units[0, -10] = 300.0  # a wholesale order counts at most 5 usual days
    units[1, -20:] = 4.0  # a new SKU: 20 days held, zero-padded before
    lens = np.array([392, 20, 0])
    level = trailing_level(units, lens)
    usual = (90 * 3.0 + 300.0) / 91
    assert level[0] == pytest.approx((90 * 3.0 + 5 * usual) / 91)
    assert level[1] == pytest.approx(4.0)  # its 20 days, not 20 / 91 of them
    assert level[2] == 0.0


def test_store_season_is_the_stores_next_four_weeks_a_year_ago_over_the_four_before():
    units = np.ones((2, 392))
    units[:, -364:-336] = 1.5  # a year ago the store sold half as much again after that day
    assert store_season(units, np.array([392, 392])) == pytest.approx(1.5)
    assert trailing_level(units, np.array([392, 392])) == pytest.approx([1.5, 1.5])
    # Only the rows holding the whole two windows read the season; no row: no season.
    short = units.copy()
    short[1, -364:-336] = 100.0
    assert store_season(short, np.array([392, 300])) == pytest.approx(1.5)
    assert store_season(units, np.array([391, 10])) == 1.0
    assert store_season(units[:, -300:], np.array([300, 300])) == 1.0


def test_blended_factor_moves_the_level_halfway_and_leaves_a_zero_forecast():
    mean = np.array([[4.0, 8.0], [0.0, 0.0]])
    factor = blended_level_factor(mean, np.array([2.0, 3.0]), 0.5)
    assert (mean * factor[:, None]).mean(axis=1) == pytest.approx([4.0, 0.0])
    assert blended_level_factor(mean, np.array([2.0, 3.0]), 0.0) == pytest.approx([1.0, 1.0])


def _sale(eid: str, day: dt.date, qty: float) -> dict:
    return {"event_id": eid, "store_id": "S1", "sku": "A", "type": "sale", "qty": qty,
            "event_time": f"{day.isoformat()}T10:00:00+01:00", "source": "pos"}  # fmt: skip


def test_the_gateways_day_close_pulls_a_jumpy_forecast_towards_the_skus_trailing_level(tmp_path):
    """A SKU that sold 2 a day for twelve weeks and 6 a day for the last one: the bundle's model
    (its mean is the 7-day mean, 6) is pulled halfway to the SKU's trailing 91-day level (about
    2.3), so decisions do not stock for a week's burst as the new level."""
    bundle = demand_bundle(tmp_path / "bundles" / "col-7")
    start = dt.date(2025, 9, 1)
    days = [start + dt.timedelta(days=d) for d in range(92)]
    units = [2.0] * 84 + [6.0] * 8  # the 92nd day's sale closes the 91st
    events = [_sale(f"s{d}", day, u) for d, (day, u) in enumerate(zip(days, units, strict=True))]
    with Gateway(config(tmp_path, bundle)) as gw:
        assert gw.model.trailing_weight == 0.5
        gw.ingest(events, "seed")
        table = gw.forecasts
        assert str(table.last_close) == days[90].isoformat()
        mean = table.mean[table.rows_of(["A"])[0], 0]
        central = gw.model.central.mean[0, 0]
    assert central[0] == pytest.approx(6.0)  # the model alone: the last week's burst
    trailing = (84 * 2.0 + 7 * 6.0) / 91  # no day above 5 usual days: nothing clipped
    # River's correction lifts the model a little (it under-forecast the burst); the blend
    # then takes half of that level and half of the trailing one.
    assert 0.5 * 6.0 + 0.5 * trailing - 1e-6 <= mean.mean() < 0.5 * 7.5 + 0.5 * trailing
    assert mean.mean() < 5.0
