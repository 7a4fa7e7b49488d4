"""statsforecast baselines on the same panel and cutoffs as the demand model.

>>> BASELINES
('SeasonalNaive', 'AutoETS', 'CrostonOptimized', 'TSB', 'ADIDA')
"""

from __future__ import annotations

import numpy as np

from feature_store.batch import Panel
from training.engine import Engine, LocalEngine, panel_series, partitions_for

BASELINES = ("SeasonalNaive", "AutoETS", "CrostonOptimized", "TSB", "ADIDA")


def _models(grain_name: str = "day"):
    """The baselines at a grain: a weekly season for days; for weeks a yearly season for the
    seasonal naive and none for ETS (statsforecast's ETS takes seasons of at most 24)."""
    from statsforecast.models import ADIDA, TSB, AutoETS, CrostonOptimized, SeasonalNaive

    week = grain_name == "week"
    return [
        SeasonalNaive(season_length=52 if week else 7),
        AutoETS(season_length=1 if week else 7),
        CrostonOptimized(),
        TSB(alpha_d=0.2, alpha_p=0.2),
        ADIDA(),
    ]


def baseline_forecasts(
    panel: Panel, series: np.ndarray, cutoff: int, horizon: int, engine: Engine | None = None
) -> dict[str, np.ndarray]:
    """Forecasts ``[len(series), horizon]`` of each baseline fitted on days ``<= cutoff``.

    Each series is fitted on its own, so an ``engine`` may run partitions of whole series
    anywhere; the rows come back in the order of ``series``."""
    series = np.asarray(series)
    parts = partitions_for(engine, len(series))
    if len(parts) <= 1:
        return _fit_and_forecast((panel_series(panel, series, cutoff + 1), horizon))
    tasks = [(panel_series(panel, series[p], cutoff + 1), horizon) for p in parts]
    results = (engine or LocalEngine()).map(_fit_and_forecast, tasks)
    return {name: np.concatenate([r[name] for r in results]) for name in BASELINES}


def _fit_and_forecast(task: tuple[Panel, int]) -> dict[str, np.ndarray]:
    """Every baseline on every series of a panel, fitted on all its days."""
    import pandas as pd
    from statsforecast import StatsForecast

    panel, horizon = task
    step = pd.Timedelta(days=panel.step.days)
    first = panel.first_day()
    frames = []
    series = range(len(panel.keys))
    for i in series:
        y = panel.units[i, first[i] :]
        ds = pd.date_range(
            pd.Timestamp(panel.start) + int(first[i]) * step, periods=len(y), freq=step
        )
        frames.append(pd.DataFrame({"unique_id": i, "ds": ds, "y": y}))
    df = pd.concat(frames, ignore_index=True)
    sf = StatsForecast(models=_models(panel.grain), freq=f"{panel.step.days}D", n_jobs=1)
    fc = sf.forecast(df=df, h=horizon).sort_values(["unique_id", "ds"])
    out = {}
    for name in BASELINES:
        vals = fc[name].to_numpy(np.float64).reshape(len(series), horizon)
        out[name] = np.maximum(np.nan_to_num(vals, nan=0.0), 0.0)
    return out
