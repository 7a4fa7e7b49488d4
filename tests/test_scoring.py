"""ONNX Runtime scoring: real sessions, batched calls, clear errors, a real bundle when present."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.forecast.scoring import Scorer, ScoringError, identity_model


def test_batched_call_returns_one_row_per_input_row():
    scorer = Scorer({"m": identity_model(4)}, ["a", "b", "c", "d"], model_version="t")
    X = np.arange(40_000, dtype=np.float32).reshape(10_000, 4)
    out = scorer.score("m", X)
    np.testing.assert_array_equal(out["y"], X)
    assert scorer.models == ["m"] and scorer.outputs("m") == ["y"]


def test_wrong_width_and_unknown_model_are_named():
    scorer = Scorer({"m": identity_model(4)}, ["a", "b", "c", "d"])
    with pytest.raises(ScoringError, match=r"shape \(3, 5\); expected \(rows, 4\)"):
        scorer.score("m", np.zeros((3, 5)))
    with pytest.raises(ScoringError, match="no model 'demand'"):
        scorer.score("demand", np.zeros((3, 4)))


def test_demand_model_from_a_trained_bundle(real_data_dir, tmp_path):
    """Train a tiny real bundle (Online Retail, 8 SKUs) and score it through the bundle loader."""
    pytest.importorskip("lightgbm")
    from feature_store.batch import close_features, forecast_rows, panel_from_frame
    from feature_store.spec import FEATURE_STORE_VERSION
    from models.bundle import load_bundle
    from training.datasets import online_retail
    from training.train import TrainConfig, train

    frame = online_retail(top_skus=8)
    frame = frame[frame["date"] >= np.datetime64("2011-01-01")]
    cfg = TrainConfig.quick_config()
    cfg.n_estimators, cfg.anomaly_rows = 10, 2000
    train(frame, tmp_path / "b", cfg, "test", track=False)
    bundle = load_bundle(tmp_path / "b", FEATURE_STORE_VERSION)
    scorer = Scorer.from_bundle(bundle)
    panel = panel_from_frame(frame)
    X, series, _ = forecast_rows(panel, close_features(panel), panel.n_days - 1, [1, 2, 3])
    mean, p50, p90 = scorer.demand(X)
    assert mean.shape == (len(X),) and np.all(np.isfinite(mean))
    assert np.all(p90 >= p50 - 1e-4) and np.all(mean >= 0)
    assert set(series.tolist()) == set(range(len(panel.keys)))
