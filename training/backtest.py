"""Rolling-origin backtest of the demand model against statsforecast baselines.

Each fold trains on days up to a cutoff and forecasts the next ``horizon`` days of every series
with enough history; folds step back ``horizon`` days from the end, so the last fold ends on the
last day of the data. Metrics per series and fold: RMSSE, MASE, scaled pinball loss at P50/P90
(pinball / in-sample naive MAE, as M5's SPL), P90 coverage. Aggregates are unweighted means over
series-folds.

>>> fold_cutoffs(n_days=120, folds=3, horizon=28)
[35, 63, 91]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from feature_store.batch import Panel, close_features
from feature_store.spec import weekday
from models.demand import DemandModel
from training.baselines import BASELINES, baseline_forecasts
from training.engine import Engine
from training.fold_fits import FitResult, fits_as_tasks, fits_on, fold_jobs, run_fit_job
from training.metrics import Scales, coverage, mase, pinball, rmsse
from training.peers import peer_forecasts
from training.progress import progress_bar
from training.train import fit_seconds_per_1000_series_years, series_years

MODEL = "shelfcast"
# Not forecasts: references that are told each series' true mean over the test days. They show
# where a goal sits: beating them takes knowing the days, not just the level, of the demand.
CLAIRVOYANT = ("clairvoyant_level", "clairvoyant_level_weekday")


def clairvoyant_forecasts(
    history: np.ndarray, actual: np.ndarray, history_dow: np.ndarray, test_dow: np.ndarray
) -> dict[str, np.ndarray]:
    """The true test mean, flat (``clairvoyant_level``) and shaped by the weekday profile of the
    series' last 364 days (``clairvoyant_level_weekday``); ``history_dow``/``test_dow`` are the
    weekdays (0-6) of the history and test days.

    >>> h = np.array([3.0, 1, 1, 1, 1, 1, 0] * 2); dow = np.arange(14) % 7  # closed on day 6
    >>> f = clairvoyant_forecasts(h, np.array([4.0, 0.0]), dow, np.array([0, 6]))
    >>> f["clairvoyant_level"].tolist(), f["clairvoyant_level_weekday"].tolist()
    ([2.0, 2.0], [5.25, 0.0])
    """
    level = float(np.mean(actual))
    h, d = np.nan_to_num(history[-364:]), history_dow[-364:]
    present = np.array([(d == k).any() for k in range(7)])
    by_dow = np.array([h[d == k].mean() if present[k] else 0.0 for k in range(7)])
    # Weekly histories fall on one weekday: their profile is flat, not 7x on that day.
    level_seen = by_dow[present].mean() if present.any() else 0.0
    profile = by_dow / level_seen if level_seen > 0 else np.ones(7)
    return {
        "clairvoyant_level": np.full(len(actual), level),
        "clairvoyant_level_weekday": level * profile[test_dow],
    }


def fold_cutoffs(n_days: int, folds: int, horizon: int, holdout: int = 0) -> list[int]:
    """Index of each fold's last training day, oldest first. ``holdout`` steps at the end are
    never forecast nor learnt from: with ``holdout = folds * horizon`` the folds are the windows
    just before the scored ones, where a choice can be made without seeing them.

    >>> fold_cutoffs(n_days=120, folds=1, horizon=28, holdout=28)
    [63]
    >>> fold_cutoffs(n_days=120, folds=0, horizon=28)
    Traceback (most recent call last):
    ...
    ValueError: folds must be 1 or more, got 0
    """
    if folds < 1:
        raise ValueError(f"folds must be 1 or more, got {folds}")
    if horizon < 1:
        raise ValueError(f"horizon must be 1 day or more, got {horizon}")
    if holdout < 0:
        raise ValueError(f"holdout must be 0 or more steps, got {holdout}")
    cutoffs = [n_days - 1 - holdout - horizon * k for k in range(folds, 0, -1)]
    if cutoffs[0] < horizon:
        raise ValueError(
            f"{n_days} days are too few for {folds} folds of {horizon} days; use fewer folds"
        )
    return cutoffs


@dataclass
class BacktestResult:
    """Per series-fold metrics (``rows``) and timing; :meth:`summary` aggregates them.

    >>> row = {"fold": 0, "series": 0, "spl90": 0.5, "cov90": 0.9}
    >>> result = BacktestResult(rows=[
    ...     {**row, "method": "shelfcast", "rmsse": 0.8, "mase": 0.7, "spl50": 0.4},
    ...     {**row, "method": "naive", "rmsse": 1.0, "mase": 1.0, "spl50": 0.5}])
    >>> s = result.summary()
    >>> s["best_baseline"], round(s["rmsse_ratio"], 2), s["win_rate_vs_best_peer"]
    ('naive', 0.8, 1.0)
    """

    rows: list[dict] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    models: list[DemandModel] = field(default_factory=list, repr=False)
    # Per fold: each peer's fit seconds, and the series-years of history the fits learnt from.
    peer_seconds: list[dict[str, float]] = field(default_factory=list)
    series_years: list[float] = field(default_factory=list)
    # Per fold: where its model was fitted (a worker's address, or "this process").
    fitted_on: list[str] = field(default_factory=list)

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def summary(self) -> dict[str, float]:
        """Aggregate metrics; ``rmsse_ratio`` is the model over the best single baseline."""
        df = self.frame()
        if df.empty:
            raise ValueError("backtest produced no evaluable series (too short or all zero)")
        by = df.groupby("method")[["rmsse", "mase", "spl50"]].mean()
        out: dict[str, float] = {
            "n_series_folds": int((df["method"] == MODEL).sum()),
            "rmsse_model": float(by.loc[MODEL, "rmsse"]),
            "mase_model": float(by.loc[MODEL, "mase"]),
            "spl50_model": float(by.loc[MODEL, "spl50"]),
        }
        model_rows = df[df["method"] == MODEL]
        out["spl90_model"] = float(model_rows["spl90"].mean())
        out["p90_coverage"] = float(model_rows["cov90"].mean())
        base = by.drop(index=[MODEL, *CLAIRVOYANT], errors="ignore")
        if len(base):
            best = str(base["rmsse"].idxmin())
            out["best_baseline"] = best
            out["rmsse_best_baseline"] = float(base.loc[best, "rmsse"])
            out["mase_best_baseline"] = float(base.loc[best, "mase"])
            out["spl50_best_baseline"] = float(base.loc[best, "spl50"])
            out["rmsse_ratio"] = out["rmsse_model"] / out["rmsse_best_baseline"]
            out["mase_ratio"] = out["mase_model"] / out["mase_best_baseline"]
            per = df[df["method"].isin(base.index)].groupby(["fold", "series"])["rmsse"].min()
            out["rmsse_best_per_series_oracle"] = float(per.mean())
            for name in base.index:
                out[f"rmsse_{name}"] = float(base.loc[name, "rmsse"])
            for name in CLAIRVOYANT:
                if name in by.index:
                    out[f"rmsse_{name}"] = float(by.loc[name, "rmsse"])
                    out[f"{name}_ratio"] = float(by.loc[name, "rmsse"]) / out["rmsse_best_baseline"]
            pair = df[df["method"].isin([MODEL, best])].pivot_table(
                index=["fold", "series"], columns="method", values="rmsse"
            )
            out["win_rate_vs_best_peer"] = float((pair[MODEL] < pair[best]).mean())
        out["train_seconds"] = float(np.mean(self.train_seconds)) if self.train_seconds else 0.0
        if self.series_years:
            years = float(np.mean(self.series_years))
            per_k = fit_seconds_per_1000_series_years
            out["fit_seconds_per_1000_series_years"] = per_k(out["train_seconds"], years)
            for name in self.peer_seconds[0] if self.peer_seconds else ():
                fit = float(np.mean([p[name] for p in self.peer_seconds]))
                out[f"{name}_fit_seconds_per_1000_series_years"] = per_k(fit, years)
        return out


def _score(
    y: np.ndarray, f: dict[str, np.ndarray], s: Scales, scored: np.ndarray | None = None
) -> dict[str, float]:
    if scored is not None:  # only the steps that count (in stock), each forecast cut alike
        y, f = y[scored], {k: v[scored] for k, v in f.items()}
    row = {"rmsse": rmsse(y, f["p"], s), "mase": mase(y, f["p"], s)}
    row["spl50"] = pinball(y, f.get("p50", f["p"]), 0.5) / s.mae
    if "p90" in f:
        row["spl90"] = pinball(y, f["p90"], 0.9) / s.mae
        row["cov90"] = coverage(y, f["p90"])
    return row


def backtest(
    panel: Panel,
    folds: int = 3,
    horizon: int = 28,
    model_params: dict | None = None,
    baselines: bool = True,
    min_history: int = 56,
    stride: int = 7,
    progress: Callable[[str], None] | None = None,
    evaluate: np.ndarray | None = None,
    engine: Engine | None = None,
    peers: bool = False,
    score_mask: np.ndarray | None = None,
    recent: int | None = None,
    holdout: int = 0,
    fits: list[FitResult] | None = None,
    close: np.ndarray | None = None,
) -> BacktestResult:
    """Run the rolling-origin backtest; ``progress`` receives one line per step. ``horizon``,
    ``min_history``, ``stride`` and ``recent`` count steps of the panel's grain.

    ``evaluate`` (bool per series) limits scoring to some series while the model still trains on
    all of them, e.g. a global model fitted on a store's whole assortment, judged on its top SKUs.
    ``engine`` (:mod:`training.engine`) runs the per-series baselines, and each fold's rows,
    fit and forecast as one task (:mod:`training.fold_fits`; with ``fit_on_cluster`` the fits
    stay here, data-parallel on the workers, and only the rows fan out); the metrics do not
    depend on it. ``fits``: the folds' fits, done already (what ``shelfcast train`` does to run
    its final fit beside them); ``close``: the panel's close features, when the caller has
    them already. ``peers`` adds the mlforecast LightGBM peers (:mod:`training.peers`), fitted
    on the same rows. ``score_mask`` (bool, series x steps) scores only the steps it marks
    (in-stock days: a stock-out day's sales are not its demand). ``recent``: every model trains
    on the last ``recent`` steps before each cutoff only. ``holdout``: the last steps are left
    out (:func:`fold_cutoffs`), for choices made on earlier windows than the scored ones.
    """
    say = progress or (lambda _msg: None)
    cutoffs = fold_cutoffs(panel.n_days, folds, horizon, holdout)
    jobs = fold_jobs(cutoffs, horizon, stride, recent, model_params)
    if fits is None and fits_as_tasks(engine):
        fits = fits_on(engine, panel, jobs, say)
    if fits is None and close is None:
        close = close_features(panel)
    first = panel.first_day()
    dow = weekday(panel.dates.astype(np.int64))
    result = BacktestResult()
    bar = progress_bar(folds, "backtest", unit="fold")
    for k, cut in enumerate(cutoffs, start=1):
        result.series_years.append(series_years(panel, cut, recent))
        if fits is None:
            say(f"fold {k}/{folds}: training on steps up to {panel.dates[cut]}")
            fit = run_fit_job(panel, jobs[k - 1], close, engine)
        else:
            fit = fits[k - 1]
        model, series, pred = fit.model, fit.series, fit.pred
        result.fitted_on.append(fit.where)
        result.train_seconds.append(fit.seconds)
        result.models.append(model)
        scales = [Scales.of(panel.units[s, : cut + 1]) for s in series]
        wanted = np.ones(len(series), bool) if evaluate is None else np.asarray(evaluate)[series]
        keep = wanted & np.array(
            [
                cut + 1 - first[s] >= min_history and sc.usable
                for s, sc in zip(series, scales, strict=True)
            ]
        )
        idx = np.flatnonzero(keep)
        actual = np.nan_to_num(panel.units[series[idx]][:, cut + 1 : cut + 1 + horizon], nan=0.0)
        base = {}
        if baselines and len(idx):
            say(
                f"fold {k}/{folds}: fitting {len(BASELINES)} statsforecast baselines on {len(idx)} series"
            )
            base = baseline_forecasts(panel, series[idx], cut, horizon, engine)
        if peers and len(idx):
            say(f"fold {k}/{folds}: fitting mlforecast peers on all {len(series)} series")
            trees = (model_params or {}).get("n_estimators", 200)
            got, seconds = peer_forecasts(panel, series, cut, horizon, trees=trees, recent=recent)
            base.update({name: values[idx] for name, values in got.items()})
            result.peer_seconds.append(seconds)
        for j, i in enumerate(idx):
            key = "/".join(panel.keys[series[i]])
            sc, s_i = scales[i], series[i]
            scored = None
            if score_mask is not None:
                scored = np.asarray(score_mask[s_i, cut + 1 : cut + 1 + horizon], bool)
                if not scored.any():
                    continue
            if baselines:  # references for the baseline comparison; nothing else reads them
                history = slice(first[s_i], cut + 1)
                ref = clairvoyant_forecasts(
                    panel.units[s_i, history],
                    actual[j],
                    dow[history],
                    dow[cut + 1 : cut + 1 + horizon],
                )
                for name, values in ref.items():
                    row = _score(actual[j], {"p": values}, sc, scored)
                    result.rows.append({"fold": k, "series": key, "method": name, **row})
            fc = {"p": pred["mean"][i], "p50": pred["p50"][i], "p90": pred["p90"][i]}
            result.rows.append(
                {"fold": k, "series": key, "method": MODEL, **_score(actual[j], fc, sc, scored)}
            )
            for name, values in base.items():
                row = _score(actual[j], {"p": values[j]}, sc, scored)
                result.rows.append({"fold": k, "series": key, "method": name, **row})
        say(f"fold {k}/{folds}: {len(idx)} series scored")
        bar.update()
    bar.close()
    return result
