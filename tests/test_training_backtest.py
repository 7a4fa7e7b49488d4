"""Metrics and the rolling-origin backtest against statsforecast baselines on real data."""

from __future__ import annotations

import numpy as np
import pytest

from training.backtest import CLAIRVOYANT, MODEL, backtest, fold_cutoffs
from training.metrics import Scales, coverage, mase, pinball, rmsse


def test_scales_skip_leading_zeros_and_match_definitions():
    s = Scales.of(np.array([0, 0, 2, 4, 4, 1.0]))
    assert s.mse == pytest.approx((4 + 0 + 9) / 3)
    assert s.mae == pytest.approx((2 + 0 + 3) / 3)
    assert not Scales.of(np.array([0.0, 0.0])).usable


def test_metric_values():
    s = Scales(mse=4.0, mae=2.0)
    y, f = np.array([1.0, 3.0]), np.array([3.0, 3.0])
    assert rmsse(y, f, s) == pytest.approx(np.sqrt(2 / 4))
    assert mase(y, f, s) == pytest.approx(0.5)
    assert pinball(y, f, 0.9) == pytest.approx((0.1 * 2 + 0) / 2)
    assert coverage(y, np.array([0.5, 3.0])) == 0.5


def test_fold_cutoffs_refuse_too_short_history():
    assert fold_cutoffs(200, 3, 28) == [115, 143, 171]
    with pytest.raises(ValueError, match="too few"):
        fold_cutoffs(90, 3, 28)


@pytest.mark.realdata
@pytest.mark.slow
def test_backtest_on_m5_sample_against_baselines(real_data_dir):
    from feature_store.batch import panel_from_frame
    from training.baselines import BASELINES
    from training.datasets import m5_sample

    result = backtest(panel_from_frame(m5_sample()), folds=1, model_params={"n_estimators": 40})
    df = result.frame()
    assert set(df["method"]) == {MODEL, *BASELINES, *CLAIRVOYANT}
    assert (df.groupby("method").size() == 10).all()
    s = result.summary()
    assert s["best_baseline"] in BASELINES
    assert s["rmsse_ratio"] == pytest.approx(s["rmsse_model"] / s["rmsse_best_baseline"])
    assert 0.3 < s["rmsse_model"] < 2.0 and 0.5 <= s["p90_coverage"] <= 1.0


def test_clairvoyant_references_are_reported_but_never_the_best_baseline():
    from feature_store.batch import Panel
    from training.baselines import BASELINES

    rng = np.random.default_rng(3)
    # Demand jumps in the last 28 days: only the references that know the test mean see it.
    units = rng.poisson([[2.0], [4.0]], size=(2, 150)).astype(float)
    units[:, -28:] *= 4
    panel = Panel(keys=[("S", "A"), ("S", "B")], start=np.datetime64("2024-01-01"), units=units)
    s = backtest(panel, folds=1, model_params={"n_estimators": 10}).summary()
    assert s["best_baseline"] in BASELINES
    assert s["rmsse_clairvoyant_level"] < s["rmsse_best_baseline"]
    assert s["clairvoyant_level_ratio"] == pytest.approx(
        s["rmsse_clairvoyant_level"] / s["rmsse_best_baseline"]
    )
    assert s["rmsse_best_per_series_oracle"] >= s["rmsse_clairvoyant_level"]


def test_backtest_scores_only_the_series_asked_for():
    from feature_store.batch import Panel

    rng = np.random.default_rng(2)
    units = rng.poisson([[2.0], [5.0], [9.0]], size=(3, 160)).astype(float)
    panel = Panel(
        keys=[("S", "A"), ("S", "B"), ("S", "C")], start=np.datetime64("2024-01-01"), units=units
    )
    result = backtest(
        panel,
        folds=2,
        model_params={"n_estimators": 10},
        baselines=False,
        evaluate=np.array([True, False, True]),
    )
    assert sorted(set(result.frame()["series"])) == ["S/A", "S/C"]
    assert result.summary()["n_series_folds"] == 4


def test_metric_weights_follow_each_series_in_sample_scale_up_to_the_cutoff():
    from feature_store.batch import Panel
    from training.loss_weights import metric_weights

    lumpy = np.zeros(60)
    lumpy[::20] = 400.0  # rare wholesale orders: a huge naive error
    steady = np.tile([3.0, 5.0], 30)
    panel = Panel(
        keys=[("S", "L"), ("S", "T")],
        start=np.datetime64("2024-01-01"),
        units=np.vstack([lumpy, steady]),
    )
    series, scale = np.array([0, 1]), np.array([1.0, 1.0])
    w = metric_weights(panel, series, scale, cutoff=39)
    # weights are 1 / naive MSE (mean) and 1 / naive MAE (quantiles), normalised to mean 1
    mse = [Scales.of(panel.units[s, :40]).mse for s in (0, 1)]
    assert w.mean[0] / w.mean[1] == pytest.approx(mse[1] / mse[0])
    assert w.mean[0] < 0.01 < 1.9 < w.mean[1]
    # days after the cutoff (the test weeks) never shape the weights
    panel.units[0, 40:] = 0.0
    assert metric_weights(panel, series, scale, cutoff=39).mean == pytest.approx(w.mean)


def test_a_holdout_scores_the_window_before_and_never_sees_the_held_out_steps():
    from feature_store.batch import Panel

    rng = np.random.default_rng(4)
    units = rng.poisson([[3.0], [6.0]], size=(2, 160)).astype(float)
    # The held-out last 28 days are absurd: no figure of the earlier window may move with them.
    wild = units.copy()
    wild[:, -28:] = 1e6
    runs = [
        backtest(
            Panel(keys=[("S", "A"), ("S", "B")], start=np.datetime64("2024-01-01"), units=u),
            folds=1,
            model_params={"n_estimators": 10},
            holdout=28,
        ).frame()
        for u in (units, wild)
    ]
    assert len(runs[0]) and runs[0].equals(runs[1])
    assert fold_cutoffs(160, 1, 28, holdout=28) == [103]
    with pytest.raises(ValueError, match="holdout"):
        fold_cutoffs(160, 1, 28, holdout=-1)
