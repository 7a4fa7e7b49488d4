"""Demand and anomaly models on real rows: ONNX Runtime agrees with the native model on held-out
rows (max abs diff <= 1e-4 x scale), and the split-threshold snapping keeps native predictions."""

from __future__ import annotations

import numpy as np
import pytest

from feature_store.batch import (
    anomaly_rows,
    close_features,
    forecast_rows,
    panel_from_frame,
    training_rows,
)
from feature_store.spec import ANOMALY_FEATURES, names
from models.anomaly import AnomalyModel
from models.demand import DemandModel, float32_thresholds
from models.onnx_export import max_abs_diff, run_onnx
from training.loss_weights import weighted_training_rows

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def real_panel(real_data_dir):
    from training.datasets import online_retail

    panel = panel_from_frame(online_retail(top_skus=40))
    return panel, close_features(panel)


@pytest.fixture(scope="module")
def demand(real_panel):
    panel, close = real_panel
    cut = panel.n_days - 1 - 28
    # Weighted as training weighs it (the weights never reach the graph; parity must still hold).
    X, y, w = weighted_training_rows(panel, close, last_day=cut, stride=14)
    return DemandModel(n_estimators=80, num_leaves=31).fit(X, y, mean_weight=w.mean), cut


def test_demand_onnx_parity_on_held_out_real_rows(real_panel, demand):
    panel, close = real_panel
    model, cut = demand
    # Held out: close days after the training cutoff, targets beyond it.
    Xh = np.concatenate(
        [forecast_rows(panel, close, d)[0] for d in range(cut + 1, panel.n_days, 3)]
    )
    native = model.predict(Xh)
    onnx_out = run_onnx(model.to_onnx(len(names())), Xh)
    scale = max(1.0, max(float(np.abs(v).max()) for v in native.values()))
    diff = max_abs_diff(native, onnx_out)
    assert diff <= 1e-4 * scale, (diff, scale)
    assert (onnx_out["p90"] >= onnx_out["p50"]).all() and (onnx_out["mean"] >= 0).all()


def test_outputs_are_ordered_and_plausible(real_panel, demand):
    panel, close = real_panel
    model, cut = demand
    X, series, _ = forecast_rows(panel, close, cut)
    out = model.predict(X)
    actual = np.nan_to_num(panel.units[series, cut + np.tile(np.arange(1, 29), len(series) // 28)])
    coverage = float(np.mean(actual <= out["p90"]))
    assert 0.6 <= coverage <= 1.0, coverage
    assert (out["p90"] >= out["p50"]).all()


def test_threshold_snapping_does_not_change_native_predictions(real_panel):
    import lightgbm as lgb

    panel, close = real_panel
    X, y = training_rows(panel, close, last_day=panel.n_days - 1, stride=28)
    raw = lgb.LGBMRegressor(n_estimators=30, num_leaves=63, verbose=-1, n_jobs=1).fit(X, y).booster_
    snapped = float32_thresholds(raw)
    assert np.array_equal(raw.predict(X), snapped.predict(X))


def test_anomaly_onnx_parity_and_flags_a_spike(real_panel):
    panel, close = real_panel
    started = np.arange(panel.n_days)[None, :] >= panel.first_day()[:, None]
    s, d = np.nonzero(started)
    A = anomaly_rows(panel, close, s, d)
    model = AnomalyModel(n_estimators=50).fit(A[::3])
    held = A[1::3]
    onnx_out = run_onnx(model.to_onnx(len(ANOMALY_FEATURES)), held)
    native = model.predict(held)
    assert float(np.abs(onnx_out["scores"] - native["scores"]).max()) <= 1e-4
    assert np.mean(onnx_out["label"] == native["label"]) >= 0.999
    # a day at 50x the series' usual level with a big z-score is stranger than a typical day
    spike = held[:1].copy()
    cols = {n: i for i, n in enumerate(ANOMALY_FEATURES)}
    spike[0, cols["lag_1"]] = 50 * max(spike[0, cols["mean_28"]], 1)
    spike[0, cols["z_last"]] = 40
    assert model.score(spike)[0] < np.median(model.score(held))
