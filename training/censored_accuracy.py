"""Forecast accuracy where sales are demand: scored only on fully in-stock days and hours.

Rolling origin over the last weeks of a FreshRetailNet panel: each fold trains on days up to a
cutoff and forecasts the next ``horizon`` days. Methods, all on the same series and days:

- ``shelfcast_recovered``: the demand model on recovered (uncensored) daily demand, the latent
  profile learnt on training days only: every day feeds the features, the days seen in stock
  enough to know their demand (``LatentDemand.labelled``) are its labels;
- ``shelfcast_observed``: the same model trained on observed sales (stock-out zeros and all);
- the statsforecast baselines of :mod:`training.baselines` and an mlforecast LightGBM with
  default-ish lags, both on observed sales (as they would be run on a retailer's sales file).

Scores: per series, RMSSE over the test days that were in stock all trading day (scaled by the
series' in-sample naive error, as everywhere in shelfcast), averaged over series-folds with at
least one such day. Per hour: the daily forecast spread over the hours by the series' latent
profile, scored on in-stock hours of all test days (RMSSE, hourly naive scale).

>>> fold_days = [61, 68]
>>> [d + 1 for d in fold_days]  # first forecast day of each fold on a 76-day panel
[62, 69]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from feature_store.batch import Panel, close_features, forecast_rows
from feature_store.latent_demand import hourly_shares, recover
from models.demand import DemandModel
from training.backtest import fold_cutoffs
from training.baselines import BASELINES, baseline_forecasts
from training.freshretailnet import TRADING_HOURS, HourlyPanel
from training.loss_weights import weighted_training_rows
from training.metrics import Scales
from training.stockout_warning import weekdays

RECOVERED, OBSERVED, MLFORECAST = "shelfcast_recovered", "shelfcast_observed", "mlforecast_lgbm"


def _panel(p: HourlyPanel, units: np.ndarray) -> Panel:
    promo = ((p.discount < 1.0) | (p.activity > 0)).astype(float)
    return Panel(keys=p.keys, start=p.start, units=units, promo=promo)


def _shelfcast(
    panel: Panel, cut: int, horizon: int, params: dict, labelled: np.ndarray | None = None
) -> np.ndarray:
    close = close_features(panel)
    X, y, w = weighted_training_rows(panel, close, last_day=cut, stride=7, labelled=labelled)
    model = DemandModel(**params).fit(X, y, mean_weight=w.mean)
    Xf, series, _ = forecast_rows(panel, close, cut, range(1, horizon + 1))
    mean = model.predict(Xf)["mean"].reshape(-1, horizon)
    out = np.zeros((panel.units.shape[0], horizon))
    out[series.reshape(-1, horizon)[:, 0]] = mean
    return out


def _mlforecast(p: HourlyPanel, units: np.ndarray, cut: int, horizon: int) -> np.ndarray:
    import lightgbm as lgb
    import pandas as pd
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean

    s, _ = units.shape
    df = pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(s), cut + 1),
            "ds": np.tile(p.dates[: cut + 1], s).astype("datetime64[ns]"),
            "y": units[:, : cut + 1].ravel(),
        }
    )
    fc = MLForecast(
        models={"lgbm": lgb.LGBMRegressor(n_estimators=200, verbose=-1, n_jobs=1)},
        freq="D",
        lags=[1, 7, 14],
        lag_transforms={1: [RollingMean(window_size=7)], 7: [RollingMean(window_size=7)]},
        date_features=["dayofweek"],
    )
    fc.fit(df)
    pred = fc.predict(h=horizon).sort_values(["unique_id", "ds"])
    return np.maximum(pred["lgbm"].to_numpy(np.float64).reshape(s, horizon), 0.0)


def _rmsse_masked(y, f, mask, scale_mse):
    n = mask.sum(axis=1)
    se = np.where(mask, (y - f) ** 2, 0.0).sum(axis=1)
    ok = (n > 0) & (scale_mse > 0)
    return np.where(ok, np.sqrt(se / np.maximum(n, 1) / np.where(ok, scale_mse, 1.0)), np.nan)


def compare(
    p: HourlyPanel,
    folds: int = 2,
    horizon: int = 7,
    model_params: dict | None = None,
    peers: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Mean in-stock RMSSE per method (daily and hourly) over the folds, and the counts."""
    say = progress or (lambda _m: None)
    wd = weekdays(p)
    observed = p.sales.sum(axis=2, dtype=np.float64)
    in_stock_day = p.out[:, :, TRADING_HOURS].sum(axis=2) == 0
    daily: dict[str, list[np.ndarray]] = {}
    hourly: dict[str, list[np.ndarray]] = {}
    for k, cut in enumerate(fold_cutoffs(p.n_days, folds, horizon), start=1):
        test = slice(cut + 1, cut + 1 + horizon)
        train_days = np.arange(p.n_days) <= cut
        shares = hourly_shares(p.sales, p.out, wd, p.product, p.category, train_days)
        latent = recover(p.sales[:, : cut + 1], p.out[:, : cut + 1], shares, wd[: cut + 1])
        recovered = observed.copy()
        recovered[:, : cut + 1] = latent.demand.sum(axis=2)
        say(f"fold {k}/{folds}: shelfcast with and without recovery, cutoff day {cut}")
        params = model_params or {}
        fc = {
            RECOVERED: _shelfcast(_panel(p, recovered), cut, horizon, params, latent.labelled),
            OBSERVED: _shelfcast(_panel(p, observed), cut, horizon, params),
        }
        if peers:
            say(f"fold {k}/{folds}: statsforecast and mlforecast peers")
            fc.update(baseline_forecasts(_panel(p, observed), np.arange(p.n_series), cut, horizon))
            fc[MLFORECAST] = _mlforecast(p, observed, cut, horizon)
        scale = np.array([Scales.of(observed[i, : cut + 1]).mse for i in range(p.n_series)])
        y, mask = observed[:, test], in_stock_day[:, test]
        hours_y = p.sales[:, test].astype(np.float64)
        hours_mask = p.out[:, test] == 0
        hist = p.sales[:, : cut + 1].reshape(p.n_series, -1).astype(np.float64)
        hour_scale = np.mean(np.diff(hist, axis=1) ** 2, axis=1)
        share = shares[:, wd[test], :]
        for name, f in fc.items():
            daily.setdefault(name, []).append(_rmsse_masked(y, f, mask, scale))
            hf = (f[:, :, None] * share).reshape(p.n_series, -1)
            hourly.setdefault(name, []).append(
                _rmsse_masked(
                    hours_y.reshape(p.n_series, -1),
                    hf,
                    hours_mask.reshape(p.n_series, -1),
                    hour_scale,
                )
            )
    return _summary(daily, hourly)


def _summary(daily: dict, hourly: dict) -> dict:
    d = {k: np.concatenate(v) for k, v in daily.items()}
    h = {k: np.concatenate(v) for k, v in hourly.items()}
    ok = np.logical_and.reduce([~np.isnan(v) for v in d.values()])
    hok = np.logical_and.reduce([~np.isnan(v) for v in h.values()])
    out = {
        "series_folds_scored": int(ok.sum()),
        "rmsse_daily": {k: float(v[ok].mean()) for k, v in d.items()},
        "rmsse_hourly": {k: float(v[hok].mean()) for k, v in h.items()},
    }
    peers = [k for k in d if k in BASELINES or k == MLFORECAST]
    if peers:
        best = min(peers, key=lambda k: out["rmsse_daily"][k])
        out["best_peer"] = best
    return out
