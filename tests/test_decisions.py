"""The decisions benchmark's measuring code, and the theft/phantom pipeline on a real replay."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import decisions as bench


def test_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    score = np.round(rng.random(500) + 0.3 * y, 2)  # ties included
    assert bench.auc(score, y.astype(float)) == pytest.approx(roc_auc_score(y, score))


def test_rmsse_of_a_perfect_and_a_naive_forecast():
    units = np.array([[1.0, 3.0, 2.0, 4.0, 2.0, 5.0]])
    assert bench.rmsse(units, units.copy(), 3) == 0.0
    naive = np.full_like(units, np.nan)
    naive[0, 3:] = units[0, 2:5]  # yesterday's value
    scale = np.mean(np.diff(units[0, :3]) ** 2)
    expected = np.sqrt(np.mean((units[0, 3:] - units[0, 2:5]) ** 2) / scale)
    assert bench.rmsse(units, naive, 3) == pytest.approx(expected)


@pytest.mark.realdata
@pytest.mark.slow
def test_theft_detection_on_a_real_replay(real_data_dir):
    lines = bench.online_retail_sales()
    out = bench.theft_and_phantom(lines, "2011-06-06", 3, seed=5, phantom_episodes=0)
    assert out["pos_sales"] > 3000 and out["theft_labels"] >= 10
    assert out["theft_precision"] >= 0.8 and out["theft_recall"] >= 0.8
    assert out["phantom_alerts"] == 0 or out["phantom_precision"] is not None
