"""Held-out real data: train without the last 28 days of the M5 sample, forecast them with
`shelfcast forecast`, and check the RMSSE against the training run's own backtest figure (same
data, same metric: it must be of the same order of magnitude)."""

from __future__ import annotations

import pandas as pd
import pytest

from shelfcast.cli import main

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

HOLDOUT = 28


def test_holdout_rmsse_matches_the_backtest_order_of_magnitude(real_data_dir, tmp_path, capsys):
    from training.datasets import m5_sample
    from training.forecast import holdout_rmsse
    from training.train import TrainConfig, train

    full = m5_sample()
    start = full["date"].max() - pd.Timedelta(days=HOLDOUT - 1)
    hist = full[full["date"] < start]
    data = tmp_path / "history.parquet"
    hist.to_parquet(data)
    result = train(hist, tmp_path / "bundle", TrainConfig.quick_config(), "m5_sample", track=False)
    assert result.metadata["training_data"]["end"] == str((start - pd.Timedelta(days=1)).date())

    out = tmp_path / "forecast.csv"
    argv = ["forecast", "--bundle", str(result.bundle), "--data", str(data), "--out", str(out)]
    assert main(argv) == 0
    table = pd.read_csv(out, parse_dates=["date"], dtype={"store_id": str, "sku": str})
    assert table["date"].min() == start and table["date"].nunique() == HOLDOUT
    assert table.groupby(["store_id", "sku"]).ngroups == 10

    scores = holdout_rmsse(full, table)
    assert len(scores) == 10
    held_out, backtest = float(scores.mean()), float(result.backtest["rmsse_model"])
    capsys.readouterr()
    print(f"held-out RMSSE {held_out:.4f}, backtest RMSSE {backtest:.4f}")
    assert 1 / 3 < held_out / backtest < 3, (held_out, backtest)
    # A forecast that ignores the data does far worse: the comparison has teeth.
    flat = holdout_rmsse(full, table.assign(mean=table["mean"] * 0 + 20.0))
    assert float(flat.mean()) > 3 * held_out
