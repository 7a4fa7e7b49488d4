"""statsforecast baselines on the same panel and cutoffs as the demand model.

>>> BASELINES
('SeasonalNaive', 'AutoETS', 'CrostonOptimized', 'TSB', 'ADIDA')
"""

from __future__ import annotations

import numpy as np

from feature_store.batch import Panel

BASELINES = ("SeasonalNaive", "AutoETS", "CrostonOptimized", "TSB", "ADIDA")


def _models():
    from statsforecast.models import ADIDA, TSB, AutoETS, CrostonOptimized, SeasonalNaive

    return [
        SeasonalNaive(season_length=7),
        AutoETS(season_length=7),
        CrostonOptimized(),
        TSB(alpha_d=0.2, alpha_p=0.2),
        ADIDA(),
    ]


def baseline_forecasts(
    panel: Panel, series: np.ndarray, cutoff: int, horizon: int
) -> dict[str, np.ndarray]:
    """Forecasts ``[len(series), horizon]`` of each baseline fitted on days ``<= cutoff``."""
    import pandas as pd
    from statsforecast import StatsForecast

    first = panel.first_day()
    frames = []
    for i, s in enumerate(series):
        y = panel.units[s, first[s] : cutoff + 1]
        ds = pd.date_range(
            pd.Timestamp(panel.start) + pd.Timedelta(days=int(first[s])), periods=len(y), freq="D"
        )
        frames.append(pd.DataFrame({"unique_id": i, "ds": ds, "y": y}))
    df = pd.concat(frames, ignore_index=True)
    sf = StatsForecast(models=_models(), freq="D", n_jobs=1)
    fc = sf.forecast(df=df, h=horizon).sort_values(["unique_id", "ds"])
    out = {}
    for name in BASELINES:
        vals = fc[name].to_numpy(np.float64).reshape(len(series), horizon)
        out[name] = np.maximum(np.nan_to_num(vals, nan=0.0), 0.0)
    return out
