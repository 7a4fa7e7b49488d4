"""Streaming features equal batch features, day by day, on real series."""

from __future__ import annotations

import numpy as np
import pytest

from feature_store.batch import Panel, close_features, feature_rows, panel_from_frame
from feature_store.series_panel import SPARE_STEPS, SeriesPanel
from feature_store.spec import HISTORY_STEPS, MAX_HORIZON
from feature_store.streaming import SeriesState, close_feature_matrix, feature_matrix


def assert_parity(panel: Panel, check_rows_every: int = 17) -> int:
    close = close_features(panel)
    first = panel.first_day()
    checked = 0
    for s in range(len(panel.keys)):
        state = SeriesState()
        for t in range(first[s], panel.n_days):
            price = None if panel.price is None else panel.price[s, t]
            promo = None if panel.promo is None else panel.promo[s, t]
            state.close_day(panel.units[s, t], price=price, promo=promo)
            np.testing.assert_allclose(state.close_features(), close[s, t], rtol=1e-9, atol=1e-9)
            checked += 1
            if (t - first[s]) % check_rows_every == 0:
                hs = np.arange(1, MAX_HORIZON + 1)
                targets = t + hs
                events = [
                    panel.event[d] if panel.event is not None and d < panel.n_days else 0.0
                    for d in targets
                ]
                planned = {}
                if panel.known_ahead:  # the planned promo and price of each target step
                    for name in ("promo", "price"):
                        values = getattr(panel, name)
                        planned[f"{name}s"] = [
                            values[s, d] if values is not None and d < panel.n_days else np.nan
                            for d in targets
                        ]
                got = state.feature_rows(panel.dates[t], hs, events, panel.grain, **planned)
                want = feature_rows(panel, close, np.full(len(hs), s), np.full(len(hs), t), hs)
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    return checked


def test_streaming_matches_batch_on_a_synthetic_panel():
    rng = np.random.default_rng(3)
    units = rng.choice([0, 0, 1, 2, 5, 30], size=(3, 200)).astype(float)
    units[1, :40] = np.nan  # a series that starts later
    price = np.where(rng.random((3, 200)) < 0.3, rng.random((3, 200)) * 5, np.nan)
    panel = Panel(
        keys=[("S", "A"), ("S", "B"), ("S", "C")],
        start=np.datetime64("2023-12-30"),
        units=units,
        price=price,
    )
    assert assert_parity(panel, check_rows_every=5) == 560


def test_streaming_matches_batch_over_years_of_weeks_and_days_with_planned_prices():
    """Long enough for the year-back features, at both grains, with planned promos and prices."""
    rng = np.random.default_rng(5)
    n = 430
    units = rng.choice([0, 0, 1, 2, 5, 30], size=(2, n)).astype(float)
    units[1, :50] = np.nan
    price = np.where(rng.random((2, n)) < 0.7, rng.choice([2.0, 2.5, 3.0], (2, n)), np.nan)
    promo = (rng.random((2, n)) < 0.2).astype(float)
    for grain_name in ("day", "week"):
        panel = Panel(
            keys=[("S", "A"), ("S", "B")],
            start=np.datetime64("2022-01-05"),
            units=units,
            price=price,
            promo=promo,
            grain=grain_name,
            known_ahead=True,
        )
        assert assert_parity(panel, check_rows_every=11) == 2 * n - 50


@pytest.mark.realdata
def test_streaming_matches_batch_on_real_data(real_data_dir):
    from training.datasets import m5_sample, online_retail

    assert assert_parity(panel_from_frame(online_retail(top_skus=8)), check_rows_every=37) > 3000
    assert assert_parity(panel_from_frame(m5_sample()), check_rows_every=97) > 10000


def test_asking_before_any_day_is_a_clear_error():
    with pytest.raises(ValueError, match="no day closed yet"):
        SeriesState().close_features()


def test_a_panel_of_series_gives_each_series_state_features():
    """The gateway's panel (every SKU side by side) against one ``SeriesState`` per series, over
    more steps than its buffer holds before it shifts, with series starting on later steps."""
    rng = np.random.default_rng(5)
    n, steps = 7, HISTORY_STEPS + 2 * SPARE_STEPS + 9
    starts = [0, 0, 3, 40, HISTORY_STEPS - 1, HISTORY_STEPS + SPARE_STEPS, steps - 1]
    units = rng.choice([0.0, 0.0, 1.0, 2.0, 7.0], size=(n, steps))
    price = np.where(rng.random((n, steps)) < 0.2, rng.random((n, steps)) * 4, np.nan)
    panel, states = SeriesPanel(), [SeriesState() for _ in range(n)]
    keys = [f"k{i}" for i in range(n)]
    day = np.datetime64("2023-01-01")
    for t in range(steps):
        live = [i for i in range(n) if starts[i] <= t]
        panel.close_step([keys[i] for i in live], units[live, t], price[live, t])
        for i in live:
            p = price[i, t]
            states[i].close_day(units[i, t], price=None if np.isnan(p) else p)
        if t % 37 == 0 or t >= steps - 3:
            got = panel.feature_matrix(day + t, range(1, MAX_HORIZON + 1))
            want = feature_matrix([states[i] for i in live], day + t)
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(
                panel.close_features(), close_feature_matrix([states[i] for i in live])
            )
    row = panel.row("k3")
    assert row.units == list(states[3].units) and row.days_seen == states[3].days_seen
    np.testing.assert_array_equal(row.prices, list(states[3].prices))
