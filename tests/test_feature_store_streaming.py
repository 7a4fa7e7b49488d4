"""Streaming features equal batch features, day by day, on real series."""

from __future__ import annotations

import numpy as np
import pytest

from feature_store.batch import Panel, close_features, feature_rows, panel_from_frame
from feature_store.spec import MAX_HORIZON
from feature_store.streaming import SeriesState


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
                got = state.feature_rows(panel.dates[t], hs, events)
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


@pytest.mark.realdata
def test_streaming_matches_batch_on_real_data(real_data_dir):
    from training.datasets import m5_sample, online_retail

    assert assert_parity(panel_from_frame(online_retail(top_skus=8)), check_rows_every=37) > 3000
    assert assert_parity(panel_from_frame(m5_sample()), check_rows_every=97) > 10000


def test_asking_before_any_day_is_a_clear_error():
    with pytest.raises(ValueError, match="no day closed yet"):
        SeriesState().close_features()
