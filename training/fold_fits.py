"""The demand model's fits of the backtest folds and of the final model as engine tasks.

Each backtest fold (and the final fit on all history) is one global LightGBM fit over every
series: it cannot be cut by series as the training rows and the baselines are
(:mod:`training.engine`), but the folds are independent of each other and of the final fit. On
a cluster each fit is therefore one task - its training rows, its three-model fit and, for a
fold, its forecast of the fold's horizon - and two workers fit two of them at once. The panel
is sent to each worker once (``Engine.map_shared``), not with every task.

The fits do not depend on where they run: the rows are the single process's (the same code on
the same panel), and LightGBM runs on one thread (``DemandModel.n_jobs``), where its
histograms sum in row order whether it picks col-wise or row-wise building, so a worker grows
the very trees the driver grows. In this process (no engine, ``LocalEngine``) or with
``fit_on_cluster`` (each fit data-parallel on the workers, :mod:`training.distributed_fit`) the
fits stay where they were, one after the other.

>>> job = FitJob("fold 1/3", cutoff=99, stride=7, max_horizon=28, forecast=28)
>>> job.name, fits_as_tasks(None)
('fold 1/3', False)
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from feature_store.batch import Panel, close_features, forecast_rows
from models.demand import DemandModel
from training.distributed_fit import cluster_fit
from training.engine import Engine, LocalEngine
from training.loss_weights import weighted_training_rows


@dataclass(frozen=True)
class FitJob:
    """One demand fit: rows of the steps up to ``cutoff`` (``stride``, ``max_horizon``,
    ``recent`` and ``seed`` as :func:`training.loss_weights.weighted_training_rows` takes
    them), and for a backtest fold the forecast of the ``forecast`` steps after it.

    >>> final = FitJob("final", cutoff=364, stride=7, max_horizon=28)
    >>> final.forecast, final.model_params  # no forecast: the bundle's fit, default parameters
    (0, {})
    """

    name: str
    cutoff: int
    stride: int
    max_horizon: int
    recent: int | None = None
    seed: int = 0
    forecast: int = 0
    model_params: dict = field(default_factory=dict)


@dataclass
class FitResult:
    """A fitted model, its rows and fit seconds (the fit alone, where it ran), and for a fold
    each forecast series' index and its ``mean``/``p50``/``p90`` (series x steps)."""

    model: DemandModel
    rows: int
    seconds: float
    where: str
    series: np.ndarray | None = None
    pred: dict[str, np.ndarray] | None = None


def fits_as_tasks(engine: Engine | None) -> bool:
    """Whether the fits go to ``engine`` as tasks: a cluster, unless each fit is spread over
    its workers already (``fit_on_cluster``)."""
    if engine is None or isinstance(engine, LocalEngine):
        return False
    return not getattr(engine, "fit_on_cluster", False)


def fold_forecast(
    model: DemandModel, panel: Panel, close: np.ndarray, cutoff: int, horizon: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each started series' index and the model's forecasts of the ``horizon`` steps after
    ``cutoff``, one row per series."""
    Xf, series, _h = forecast_rows(panel, close, cutoff, range(1, horizon + 1))
    pred = {k: v.reshape(-1, horizon) for k, v in model.predict(Xf).items()}
    return series.reshape(-1, horizon)[:, 0], pred


# The last panel this process computed close features for and the features: a worker's tasks
# share one panel (sent once), so each worker computes them once. A weak reference, so a
# freed panel is never mistaken for a new one at the same address.
_close_cache: tuple[weakref.ref, np.ndarray] | None = None


def _close_of(panel: Panel) -> np.ndarray:
    global _close_cache
    if _close_cache is None or _close_cache[0]() is not panel:
        _close_cache = (weakref.ref(panel), close_features(panel))
    return _close_cache[1]


def run_fit_job(
    panel: Panel, job: FitJob, close: np.ndarray | None = None, engine: Engine | None = None
) -> FitResult:
    """One fit: the job's weighted training rows, the demand model's fit on them (its P90
    lifted on the last steps before the cutoff) and, for a fold, its forecast. A task on a
    worker, or in this process with ``engine`` for the rows per partition and, with
    ``fit_on_cluster``, the fit data-parallel on its workers."""
    close = _close_of(panel) if close is None else close
    X, y, w = weighted_training_rows(
        panel,
        close,
        last_day=job.cutoff,
        stride=job.stride,
        seed=job.seed,
        max_horizon=job.max_horizon,
        recent=job.recent,
        engine=engine,
    )
    t0 = time.perf_counter()
    # Quantile models unweighted: their weights gave no scaled-pinball gain and tripled fit time.
    model = DemandModel(**job.model_params).fit(
        X, y, mean_weight=w.mean, fit=cluster_fit(engine), target=w.target, cutoff=job.cutoff
    )
    seconds = time.perf_counter() - t0
    result = FitResult(model, len(X), seconds, _where())
    if job.forecast:
        result.series, result.pred = fold_forecast(model, panel, close, job.cutoff, job.forecast)
    return result


def _where() -> str:
    """The worker's address on a Dask worker, else ``this process``."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "this process"


def fold_jobs(
    cutoffs: list[int], horizon: int, stride: int, recent: int | None, model_params: dict | None
) -> list[FitJob]:
    """The backtest's fold fits as jobs: rows up to each cutoff, forecasts of ``horizon`` steps
    after it (the rows and seed :func:`training.backtest.backtest` uses in this process)."""
    n = len(cutoffs)
    return [
        FitJob(f"fold {k}/{n}", cut, stride, horizon, recent, 0, horizon, dict(model_params or {}))
        for k, cut in enumerate(cutoffs, start=1)
    ]


def fits_on(
    engine: Engine,
    panel: Panel,
    jobs: list[FitJob],
    say: Callable[[str], None] | None = None,
) -> list[FitResult]:
    """Every job as one task on ``engine``, the panel sent to the workers once; results in the
    order of ``jobs``. ``say`` gets a line per fit as it finishes (completion order)."""
    say = say or (lambda _msg: None)
    for job in jobs:
        day = panel.dates[job.cutoff]
        say(f"{job.name}: training on steps up to {day} (a task on the engine)")

    def done(i: int, r: FitResult) -> None:
        say(f"{jobs[i].name}: {r.rows:,} rows fitted in {r.seconds:.1f} s on {r.where}")

    # The biggest fits first (the final fit, then the latest folds): they end together.
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i].cutoff)
    got = engine.map_shared(
        run_fit_job, panel, [jobs[i] for i in order], done=lambda k, r: done(order[k], r)
    )
    results: list = [None] * len(jobs)
    for k, i in enumerate(order):
        results[i] = got[k]
    return results
