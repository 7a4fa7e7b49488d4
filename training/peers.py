"""mlforecast LightGBM peers: what a data scientist would fit instead of shelfcast, on the same
panel, cutoffs and horizon as the backtest.

Two peers, each one global LightGBM over every series with the lags and rolling means a
practitioner picks for the grain (a week of daily lags, weekly and monthly rolling means, a year
back when the history has it; at week grain the last weeks, a quarter and lag 52), the calendar,
and the data set's event flags, planned promotion flags and planned prices as known-ahead
covariates:

- ``mlf_lgbm_tweedie``: Tweedie objective (the M5 practitioners' choice) on each series scaled
  to its own min-max range (non-negative, as Tweedie needs; on raw sales dollars its log link
  sends recursive forecasts of large series off to thousands of times their level);
- ``mlf_lgbm_l2``: L2 objective on each series standardised by its own mean and std
  (mlforecast's ``LocalStandardScaler``), what RMSSE itself measures.

Forecasts are recursive (mlforecast's default), clipped at 0.

>>> PEERS
('mlf_lgbm_tweedie', 'mlf_lgbm_l2')
>>> peer_features("week", 200)["lags"]
[1, 2, 3, 4, 8, 13, 52]
"""

from __future__ import annotations

import time

import numpy as np

from feature_store.batch import Panel

PEERS = ("mlf_lgbm_tweedie", "mlf_lgbm_l2")
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def week_of_year(dates) -> np.ndarray:
    """ISO week number of each date (mlforecast date feature at week grain)."""
    return dates.isocalendar().week.to_numpy().astype(np.int64)


def peer_features(grain_name: str, history_steps: int) -> dict:
    """Lags, rolling means and date features of the peers at a grain, given the steps of
    history each fold has (a lag a year back only when a year and more is there)."""
    from mlforecast.lag_transforms import RollingMean

    if grain_name == "week":
        lags = [1, 2, 3, 4, 8, 13] + ([52] if history_steps >= 78 else [])
        return {
            "lags": lags,
            "lag_transforms": {1: [RollingMean(4), RollingMean(13)]},
            "date_features": [week_of_year, "month"],
        }
    lags = [1, 2, 3, 4, 5, 6, 7, 14, 21, 28] + ([364] if history_steps >= 500 else [])
    return {
        "lags": lags,
        "lag_transforms": {
            1: [RollingMean(7), RollingMean(28)],
            7: [RollingMean(7), RollingMean(28)],
        },
        "date_features": ["dayofweek", "month", "day"],
    }


def _frequency(panel: Panel):
    import pandas as pd

    if panel.grain == "week":
        return f"W-{_WEEKDAYS[pd.Timestamp(panel.start).dayofweek]}"
    return "D"


def _frames(panel: Panel, series: np.ndarray, cutoff: int, horizon: int, since: int):
    """Training frame (``unique_id, ds, y`` and covariates) of ``series`` from step ``since``
    to ``cutoff``, and the covariates of the ``horizon`` steps after it."""
    import pandas as pd

    units = panel.units[series, since : cutoff + 1]
    seen = ~np.isnan(units)
    rows, cols = np.nonzero(seen)
    dates = pd.DatetimeIndex(panel.dates.astype("datetime64[ns]"))
    covariates = {}
    if panel.event is not None:
        covariates["event"] = lambda r, c: panel.event[c]
    if panel.promo is not None and panel.known_ahead:
        covariates["promo"] = lambda r, c: np.nan_to_num(panel.promo[series[r], c], nan=0.0)
    if panel.price is not None and panel.known_ahead:  # the planned price, as shelfcast reads it
        covariates["price"] = lambda r, c: np.nan_to_num(panel.price[series[r], c], nan=0.0)
    train = pd.DataFrame(
        {"unique_id": series[rows], "ds": dates[since + cols], "y": units[rows, cols]}
    )
    for name, values in covariates.items():
        train[name] = values(rows, since + cols)
    fut_r = np.repeat(np.arange(len(series)), horizon)
    fut_c = np.tile(np.arange(cutoff + 1, cutoff + 1 + horizon), len(series))
    inside = np.minimum(fut_c, panel.n_days - 1)
    future = pd.DataFrame(
        {
            "unique_id": series[fut_r],
            "ds": pd.DatetimeIndex(
                (np.datetime64(panel.start, "D") + fut_c * panel.step.days).astype("datetime64[ns]")
            ),
        }
    )
    for name, values in covariates.items():
        future[name] = np.where(fut_c < panel.n_days, values(fut_r, inside), 0.0)
    return train, future


def peer_forecasts(
    panel: Panel,
    series: np.ndarray,
    cutoff: int,
    horizon: int,
    trees: int = 200,
    recent: int | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Forecasts ``[len(series), horizon]`` of each peer fitted on steps ``<= cutoff``, and each
    peer's fit seconds. ``recent``: train on the last ``recent`` steps only (plus the lookback
    the lags need), as the shelfcast model does, so both fit on the same rows."""
    import lightgbm as lgb
    import pandas as pd
    from mlforecast import MLForecast
    from mlforecast.target_transforms import LocalMinMaxScaler, LocalStandardScaler

    series = np.asarray(series)
    first = int(panel.first_day()[series].min())
    history = cutoff + 1 - first
    feats = peer_features(panel.grain, history)
    lookback = max(feats["lags"]) + 28
    since = first if recent is None else max(first, cutoff - recent - lookback)
    train, future = _frames(panel, series, cutoff, horizon, since)
    params = {
        "n_estimators": trees,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 20,
        "n_jobs": 1,
        "verbose": -1,
        "random_state": 0,
    }
    setups = {
        "mlf_lgbm_tweedie": (
            {"objective": "tweedie", "tweedie_variance_power": 1.2},
            [LocalMinMaxScaler()],
        ),
        "mlf_lgbm_l2": ({"objective": "l2"}, [LocalStandardScaler()]),
    }
    out, seconds = {}, {}
    for name, (objective, transforms) in setups.items():
        fcst = MLForecast(
            models={name: lgb.LGBMRegressor(**params, **objective)},
            freq=_frequency(panel),
            target_transforms=transforms,
            **feats,
        )
        t0 = time.perf_counter()
        fcst.fit(train, static_features=[])
        seconds[name] = time.perf_counter() - t0
        extra = future if future.shape[1] > 2 else None
        fc = fcst.predict(horizon, X_df=extra).sort_values(["unique_id", "ds"])
        values = fc[name].to_numpy(np.float64).reshape(-1, horizon)
        ids = fc["unique_id"].to_numpy()[::horizon]
        values = values[pd.Index(ids).get_indexer(series)]
        out[name] = np.maximum(np.nan_to_num(values, nan=0.0), 0.0)
    return out, seconds
