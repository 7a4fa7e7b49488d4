"""`shelfcast train --no-backtest` on Online Retail: no backtest runs, the fit time per 1,000
series-years is reported, MLflow records why the champion cannot move, and `shelfcast forecast
--data online_retail` on the bundle forecasts the very SKUs it was trained on."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from shelfcast.cli import main
from training.datasets import online_retail

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_train_without_backtest_then_forecast_the_same_skus(
    real_data_dir, tmp_path, monkeypatch, capsys
):
    from mlflow import MlflowClient

    from training.tracking import DECISION_TAG

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    bundle = tmp_path / "bundle"
    argv = ["train", "--data", "online_retail", "--out", str(bundle), "--quick"]
    assert main([*argv, "--top-skus", "12", "--no-backtest"]) == 0
    err = capsys.readouterr().err
    assert "backtest skipped" in err and "fold 1/" not in err
    assert "s per 1,000 series-years" in err
    meta = json.loads((bundle / "metadata.json").read_text())
    assert meta["backtest"] == {} and meta["data_selection"] == {"top_skus": 12}
    run = MlflowClient().get_run(meta["mlflow_run_id"])
    assert run.data.metrics["fit_seconds_per_1000_series_years"] > 0
    assert "rmsse_model" not in run.data.metrics and meta["champion"] is False
    assert "without backtest metrics the champion cannot move" in run.data.tags[DECISION_TAG]

    out = tmp_path / "fc.csv"
    argv = ["forecast", "--bundle", str(bundle), "--data", "online_retail", "--out", str(out)]
    assert main([*argv, "--horizon", "7"]) == 0
    forecast = pd.read_csv(out, dtype={"sku": str})
    assert set(forecast["sku"]) == set(online_retail(top_skus=12)["sku"])


def test_folds_zero_is_the_same_as_no_backtest(real_data_dir, tmp_path, capsys):
    argv = ["train", "--data", "online_retail", "--out", str(tmp_path / "b"), "--quick"]
    assert main([*argv, "--top-skus", "8", "--folds", "0", "--no-mlflow"]) == 0
    assert "backtest skipped (folds 0)" in capsys.readouterr().err
