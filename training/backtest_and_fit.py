"""``shelfcast train``'s backtest and final demand fit.

In this process (no engine, ``--engine local``) and with ``--fit-on-cluster``: the backtest's
folds one after the other, then the final fit. On a cluster otherwise, every fold and the final
fit are tasks of one batch (:mod:`training.fold_fits`), so the final fit runs beside the folds
and two workers fit two models at once; the backtest then scores the folds' forecasts and runs
its baselines on the engine. The bundle's metrics and models are the same either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from feature_store.batch import MAX_HORIZON
from training.fold_fits import FitJob, FitResult, fits_as_tasks, fits_on, fold_jobs, run_fit_job


def run_backtest(panel, config, engine, say: Callable[[str], None], fits=None, close=None):
    """The backtest and its summary, or ``(None, {})`` when ``config.folds`` is 0; ``fits``:
    the folds' fits when they ran already; ``close``: the panel's close features."""
    from training.backtest import backtest

    if config.folds == 0:
        say("backtest skipped (folds 0): no backtest metrics, so MLflow's champion stays")
        return None, {}
    t0 = time.perf_counter()
    bt = backtest(
        panel,
        folds=config.folds,
        horizon=config.horizon,
        model_params=config.model_params(),
        baselines=config.baselines,
        stride=config.stride,
        progress=lambda m: say("  " + m),
        engine=engine,
        fits=fits,
        close=close,
    )
    summary = bt.summary()
    summary["backtest_seconds"] = time.perf_counter() - t0
    best = ""
    if "best_baseline" in summary:
        best = f" (best baseline {summary['best_baseline']} {summary['rmsse_best_baseline']:.4f})"
    say(f"backtest RMSSE {summary['rmsse_model']:.4f}{best}")
    return bt, summary


def backtest_and_final_fit(panel, close, config, engine, say: Callable[[str], None]):
    """``(backtest result or None, its summary, the final fit's FitResult)`` for a
    :class:`training.train.TrainConfig`; ``close``: the panel's close features (this process).

    On a cluster the backtest's clock (``backtest_seconds``) starts with the batch of fits, so
    it covers the final fit that ran beside the folds."""
    from training.backtest import fold_cutoffs

    if config.folds:
        say(
            f"backtest: {config.folds} fold(s) x {config.horizon} days "
            f"(baselines: {config.baselines})"
        )
    if config.folds and fits_as_tasks(engine):
        t0 = time.perf_counter()
        cutoffs = fold_cutoffs(panel.n_days, config.folds, config.horizon)
        params = config.model_params()
        jobs = [
            *fold_jobs(cutoffs, config.horizon, config.stride, None, params),
            _final_job(panel, config),
        ]
        fits = fits_on(engine, panel, jobs, lambda m: say("  " + m))
        bt, summary = run_backtest(panel, config, engine, say, fits[:-1])
        summary["backtest_seconds"] = time.perf_counter() - t0
        return bt, summary, fits[-1]
    bt, summary = run_backtest(panel, config, engine, say, close=close)
    return (bt, summary, _final_fit_here(panel, close, config, engine, say))


def _final_fit_here(panel, close, config, engine, say) -> FitResult:
    """The final fit in this process (its rows per partition on a cluster; with
    ``fit_on_cluster`` each LightGBM fit data-parallel on the workers)."""
    say("fitting the demand model on every day")
    fit = run_fit_job(panel, _final_job(panel, config), close, engine)
    say(f"demand model: {fit.rows:,} rows fitted in {fit.seconds:.1f} s")
    return fit


def _final_job(panel, config) -> FitJob:
    """The final fit: every day up to the last, the seed of ``config``, no forecast."""
    last = panel.n_days - 1
    return FitJob(
        "final fit", last, config.stride, MAX_HORIZON, None, config.seed, 0, config.model_params()
    )
