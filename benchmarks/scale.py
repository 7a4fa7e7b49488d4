"""Scale-out figures: training and batch forecasting on Dask with 1 and 2 workers, and a batch
forecast of many series built from real ones, beside statsforecast AutoETS on the same series.

1. Backtest + training: Online Retail's top SKUs (UK, cancellations netted), one backtest fold
   of 28 days with the five statsforecast baselines, then the final fit, as ``shelfcast train``
   runs them (:func:`training.train.train` without MLflow), in one process once, then on Dask
   with 1 and 2 workers alternated over ``--rounds`` (``benchmarks/scale_training.py``;
   ``training_scale_out_ratio``: the median of the rounds' 1-worker over 2-worker seconds).
   The bundle's backtest metrics and its forecasts of the training series must be the same on
   every engine (``same_metrics_as_single_process``, within ``RTOL``/``ATOL``).
   ``--training-only`` runs this phase alone. The same series also give the training-time figure: the demand model's fit seconds per
   1,000 series-years beside mlforecast LightGBM's on the same rows, and ``train`` with and
   without its backtest (``--folds 0``).
2. Batch forecast: the trained ONNX demand model forecasts 28 days for ``--series`` series on
   Dask. ``scale_out_ratio`` is the median, over ``--rounds`` alternated rounds (1 worker then
   2, then 2 then 1, ...), of the 2-worker over the 1-worker series/s on the same
   ``RATIO_SERIES`` series; both clusters stay up, so a round is only the forecast. Beside it,
   ``cpu_normalised_scale_out_ratio``: 2 x the 2-worker cluster's series per worker CPU-second
   over the 1-worker cluster's, what the ratio would be if each worker had its core to itself
   (on a shared box the wall ratio measures the neighbours too). The large run (``--series``)
   is a 2-worker run. The series are **resampled real series**, said so in the output: each is
   one of Online Retail's real UK SKU histories (its last 366 days, what the features read),
   rolled by whole weeks (the weekday pattern stays) and redrawn as Poisson counts around a
   random multiple (0.25x..4x) of its real daily units. Each worker builds its own partitions
   from the real series it was sent once, so the driver never holds them all.
3. Training feature rows: the rows of ``--rows-series`` resampled series (366 days each, the
   final fit's rows, ``stride`` 14) built per partition of whole series
   (:func:`training.partitioned_training_rows.training_rows_on`) in one process and on Dask
   with 1 and 2 workers, alternated over ``--rounds``; the matrix must be byte-identical on
   every engine (its checksum). The fit on such rows is step 4.
4. The demand model's fit (mean, P50, P90) on the training rows of ``--fit-series`` resampled
   series, in one process and on Dask with 1 and 2 workers (``lightgbm.dask``, data-parallel:
   ``shelfcast train --fit-on-cluster``), the same rows for each, alternated over ``--rounds``;
   ``fit_scale_out_ratio`` is the median of single-process over 2-worker seconds. Its trees
   differ slightly from one process's (each worker bins its own rows), so the runs also report
   how far their forecasts of the series' next 28 days lie from the single-process fit's.
   ``--fit-only`` runs this step alone.
5. statsforecast AutoETS (season 7, ``n_jobs=1``) fitted and forecast on a sample of the same
   series, one core, beside the published reference (1M series, AutoARIMA on Ray, 36 minutes
   on 2,000 CPUs).

Per core figures divide by the worker processes (one thread each); per CPU-second figures
divide by the CPU time the workers (or AutoETS's process) actually got, which a busy machine
does not change. Every run records the load average (``uptime``).

    python benchmarks/scale.py --json var/bench/scale.json [--quick] [--series 1000000] [--pin]
    python benchmarks/scale.py --json var/bench/fit_scale.json --fit-only --fit-series 2000
    python benchmarks/scale.py --json var/bench/train_scale.json --training-only --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine  # noqa: E402
from benchmarks.scale_training import (  # noqa: E402
    ATOL,
    HORIZON,
    RTOL,
    load,
    train_once,
    training_scale_out,
)
from feature_store.batch import Panel, panel_from_frame  # noqa: E402
from training.engine import DaskEngine, LocalEngine  # noqa: E402
from training.forecast import tail  # noqa: E402

# 1M series in 36 min on 2,000 CPUs (statsforecast's AutoARIMA on Ray, as Nixtla published).
PUBLISHED = {"series": 1_000_000, "minutes": 36, "cpus": 2000}
RATIO_SERIES = 20_000  # 1 and 2 workers forecast the same series for scale_out_ratio
# Series whose training rows are built per round: the driver gathers their matrix, about
# 130 KB a series (stride 14, 28 horizons, float32).
ROWS_SERIES = 2_000
FIT_SERIES = 2_000  # series whose training rows the demand model is fitted on, per engine
FIT_TREES = 60
FIT_STRIDE = 14  # close days between a series' training rows, as the training config's
PARTITION = 2_000  # series per task: a few tasks per worker; features go 500 series at a time
SOURCE = (
    "resampled real series: each is an Online Retail II UK SKU's last 366 days, rolled by whole "
    "weeks and redrawn as Poisson counts around 0.25x..4x its real daily units"
)


def real_tails() -> Panel:
    """Every Online Retail UK SKU's last ``FEATURE_DAYS`` days: the real series to resample."""
    from training.datasets import online_retail

    return tail(panel_from_frame(online_retail()))


def resampled(base: Panel, n: int, seed: int) -> Panel:
    """``n`` series drawn from ``base`` (see the module docstring), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(base.keys), n)
    weeks = rng.integers(0, base.n_days // 7, n) * 7
    scale = np.exp(rng.uniform(np.log(0.25), np.log(4.0), n))
    units = np.nan_to_num(base.units[pick])
    cols = (np.arange(base.n_days)[None, :] + weeks[:, None]) % base.n_days
    units = rng.poisson(np.take_along_axis(units, cols, axis=1) * scale[:, None]).astype(float)
    price = None if base.price is None else np.take_along_axis(base.price[pick], cols, axis=1)
    return Panel(
        keys=[("resampled", f"{seed}-{i}") for i in range(n)],
        start=base.start,
        units=units,
        price=price,
    )


def forecast_resampled(task) -> dict:
    """One partition, on a worker: build its resampled series and forecast them."""
    from training.forecast import forecast_partition

    onnx, base, n, seed = task
    panel = resampled(base, n, seed)
    t0 = time.perf_counter()
    out = forecast_partition((onnx, panel, HORIZON))
    return {"series": n, "seconds": time.perf_counter() - t0, "mean_sum": float(out["mean"].sum())}


def batch_forecast(engine, onnx: bytes, base: Panel, n_series: int) -> dict:
    """Forecast ``n_series`` resampled series on ``engine``: series/s over the wall time, and
    over the CPU time the workers got; how busy the workers were (task stream)."""
    from distributed import get_task_stream

    sizes = [PARTITION] * (n_series // PARTITION) + (
        [n_series % PARTITION] * (n_series % PARTITION > 0)
    )
    client = engine.client
    # hash=False: a second run scattering the same bytes would share their key, and the first
    # run's futures, released, would take the data away from the second's tasks.
    [onnx_f] = client.scatter([onnx], broadcast=True, hash=False)
    [base_f] = client.scatter([base], broadcast=True, hash=False)
    tasks = [(onnx_f, base_f, n, seed) for seed, n in enumerate(sizes)]
    at_start = load()
    cpu0, driver0 = client.run(time.process_time), time.process_time()
    t0 = time.perf_counter()
    with get_task_stream(client=client) as stream:
        parts = engine.map(forecast_resampled, tasks)
    seconds = time.perf_counter() - t0
    driver = time.process_time() - driver0
    cpu = sum(client.run(time.process_time).values()) - sum(cpu0.values())
    computing = sum(
        s["stop"] - s["start"]
        for t in stream.data
        for s in t["startstops"]
        if s["action"] == "compute"
    )
    return {
        "series": int(sum(p["series"] for p in parts)),
        "workers": engine.workers,
        "tasks": len(tasks),
        "seconds": round(seconds, 2),
        "series_per_s": round(n_series / seconds, 1),
        "worker_cpu_seconds": round(cpu, 2),
        "series_per_worker_cpu_s": round(n_series / cpu, 1),
        "driver_and_scheduler_cpu_seconds": round(driver, 2),
        # Share of the workers' wall time spent computing tasks (the rest: waiting for work,
        # receiving it, or the machine giving the CPU to another process).
        "worker_occupancy": round(computing / (seconds * engine.workers), 3),
        "checksum_mean_units": round(sum(p["mean_sum"] for p in parts), 3),
        **at_start,
    }


def scale_out(engines: dict, onnx: bytes, base: Panel, n_series: int, rounds: int, say) -> dict:
    """1- and 2-worker batch forecasts of the same series, alternated over ``rounds`` (1 then
    2, 2 then 1, ...) so a change in the machine's load falls on both; medians of the paired
    ratios."""
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for r in range(rounds):
        for workers in (1, 2) if r % 2 == 0 else (2, 1):
            say(f"round {r + 1}/{rounds}: {n_series:,} resampled series on {workers} worker(s)")
            runs[workers].append(batch_forecast(engines[workers], onnx, base, n_series))
    pairs = list(zip(runs[1], runs[2], strict=True))
    wall = [b["series_per_s"] / a["series_per_s"] for a, b in pairs]
    cpu = [2 * b["series_per_worker_cpu_s"] / a["series_per_worker_cpu_s"] for a, b in pairs]
    return {
        "scale_out_ratio": round(float(np.median(wall)), 3),
        "cpu_normalised_scale_out_ratio": round(float(np.median(cpu)), 3),
        "ratios_per_round": [round(x, 3) for x in wall],
        "cpu_normalised_ratios_per_round": [round(x, 3) for x in cpu],
        "same_forecasts_1_and_2_workers": all(
            abs(a["checksum_mean_units"] - b["checksum_mean_units"])
            <= RTOL * abs(a["checksum_mean_units"]) + ATOL
            for a, b in pairs
        ),
        "dask_1": runs[1],
        "dask_2": runs[2],
    }


def feature_rows_run(engine, panel: Panel, stride: int) -> dict:
    """The training rows of every series of ``panel`` on ``engine``: series/s and a checksum
    of the matrix and labels (the same bytes on every engine)."""
    import hashlib

    from training.partitioned_training_rows import training_rows_on

    at_start = load()
    t0 = time.perf_counter()
    X, y, _series, _target = training_rows_on(engine, panel, panel.n_days - 1, stride=stride)
    seconds = time.perf_counter() - t0
    digest = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()[:16]
    return {
        "workers": engine.workers,
        "series": len(panel.keys),
        "rows": len(X),
        "seconds": round(seconds, 2),
        "series_per_s": round(len(panel.keys) / seconds, 1),
        "checksum": digest,
        **at_start,
    }


def feature_rows_scale_out(engines: dict, panel: Panel, stride: int, rounds: int, say) -> dict:
    """Training rows in one process, then on 1 and 2 workers alternated over ``rounds``."""
    runs: dict[str, list[dict]] = {"single_process": [], "dask_1": [], "dask_2": []}
    say(f"training rows of {len(panel.keys):,} resampled series in one process")
    runs["single_process"].append(feature_rows_run(LocalEngine(), panel, stride))
    for r in range(rounds):
        for workers in (1, 2) if r % 2 == 0 else (2, 1):
            say(f"round {r + 1}/{rounds}: training rows on {workers} worker(s)")
            runs[f"dask_{workers}"].append(feature_rows_run(engines[workers], panel, stride))
    pairs = zip(runs["dask_1"], runs["dask_2"], strict=True)
    ratios = [b["series_per_s"] / a["series_per_s"] for a, b in pairs]
    return {
        "scale_out_ratio": round(float(np.median(ratios)), 3),
        "ratios_per_round": [round(x, 3) for x in ratios],
        "same_rows_on_every_engine": len({x["checksum"] for v in runs.values() for x in v}) == 1,
        **runs,
    }


def demand_fit_run(X, y, w, fit, forecast_rows) -> dict:
    """The demand model's three fits on ``X``/``y`` (``fit``: where; ``None``, this process):
    seconds, and its mean forecast of ``forecast_rows`` (compared between engines)."""
    from models.demand import DemandModel

    at_start = load()
    t0 = time.perf_counter()
    model = DemandModel(n_estimators=FIT_TREES).fit(X, y, mean_weight=w.mean, fit=fit)
    seconds = time.perf_counter() - t0
    run = {"seconds": round(seconds, 2), "rows": len(X)}
    return {**run, **at_start, "mean": model.predict(forecast_rows)["mean"]}


def demand_fit_scale_out(engines: dict, panel: Panel, stride: int, rounds: int, say) -> dict:
    """The demand fit on the same rows in one process and on 1 and 2 workers, alternated over
    ``rounds``; how far each engine's 28-day mean forecasts lie from the single process's."""
    from feature_store.batch import close_features, forecast_rows
    from training.distributed_fit import DaskFit
    from training.loss_weights import weighted_training_rows

    last = panel.n_days - 1
    close = close_features(panel)
    X, y, w = weighted_training_rows(panel, close, last_day=last, stride=stride)
    ahead = forecast_rows(panel, close, last, range(1, HORIZON + 1))[0]
    fits = {"single_process": None, **{f"dask_{n}": DaskFit(e.client) for n, e in engines.items()}}
    runs: dict[str, list[dict]] = {name: [] for name in fits}
    for r in range(rounds):
        order = list(fits) if r % 2 == 0 else list(reversed(fits))
        for name in order:
            say(f"round {r + 1}/{rounds}: demand fit on {len(X):,} rows, {name}")
            runs[name].append(demand_fit_run(X, y, w, fits[name], ahead))
    single = runs["single_process"][0].pop("mean")
    for rs in runs.values():
        for run in rs:
            mean = run.pop("mean", single)
            # Relative to the series' level: the mean absolute gap over the mean forecast.
            gap = float(np.abs(mean - single).mean() / max(single.mean(), 1e-12))
            run["mean_forecast_gap_vs_single_process"] = round(gap, 5)
    ratios = [
        a["seconds"] / b["seconds"]
        for a, b in zip(runs["single_process"], runs["dask_2"], strict=True)
    ]
    return {
        "series": len(panel.keys),
        "rows": len(X),
        "features": X.shape[1],
        "trees_per_model": FIT_TREES,
        "fit_scale_out_ratio": round(float(np.median(ratios)), 3),
        "ratios_per_round": [round(x, 3) for x in ratios],
        "note": "seconds of the three LightGBM fits (mean, P50, P90) on the same rows; "
        "fit_scale_out_ratio = single-process seconds / 2-worker seconds (median of rounds); "
        "mean_forecast_gap_vs_single_process = mean |forecast - single-process forecast| over "
        "the single-process mean forecast, 28 days of every series",
        **runs,
    }


def fit_only(args, say) -> int:
    """``--fit-only``: the demand fit step alone, on its own clusters."""
    base = real_tails()
    panel = resampled(base, args.fit_series, seed=2_000_000)
    report = {"engine": "dask", "series_source": SOURCE, "load_average_at_start": load()}
    engines = {w: DaskEngine(workers=w, pin=args.pin) for w in (1, 2)}
    try:
        report["demand_fit"] = demand_fit_scale_out(engines, panel, FIT_STRIDE, args.rounds, say)
    finally:
        for engine in engines.values():
            engine.close()
    report["load_average_at_end"] = load()
    write_report(args.json, report)
    print(fit_markdown(report["demand_fit"]))
    return 0


def fit_markdown(f: dict) -> str:
    head = f"| demand fit, {f['rows']:,} rows | seconds (median) | forecast gap |\n|---|---|---|\n"
    body = "".join(
        f"| {name} | {_median(f[name], 'seconds')} | "
        f"{max(r['mean_forecast_gap_vs_single_process'] for r in f[name])} |\n"
        for name in ("single_process", "dask_1", "dask_2")
    )
    return head + body + f"\nfit_scale_out_ratio {f['fit_scale_out_ratio']}\n"


def autoets(base: Panel, n: int) -> dict:
    """statsforecast AutoETS(7) on the first ``n`` series of partition 0 (the same series the
    forecast runs start with), one process, one thread."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    panel = resampled(base, n, seed=0)
    ds = pd.date_range(str(panel.start), periods=panel.n_days, freq="D")
    df = pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(n), panel.n_days),
            "ds": np.tile(ds, n),
            "y": panel.units.reshape(-1),
        }
    )
    at_start = load()
    t0, c0 = time.perf_counter(), time.process_time()
    StatsForecast(models=[AutoETS(season_length=7)], freq="D", n_jobs=1).forecast(df=df, h=HORIZON)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "series": n,
        "seconds": round(seconds, 2),
        "series_per_s": round(n / seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "series_per_cpu_s": round(n / cpu, 2),
        **at_start,
    }


def training_time(history, config) -> dict:
    """The demand model's fit seconds per 1,000 series-years beside mlforecast LightGBM's
    (Tweedie and L2, same trees) on the same series and days, one backtest fold, one process."""
    from feature_store.batch import panel_from_frame
    from training.backtest import backtest

    at_start = load()
    summary = backtest(
        panel_from_frame(history),
        folds=1,
        horizon=HORIZON,
        model_params=config.model_params(),
        baselines=False,
        stride=config.stride,
        peers=True,
    ).summary()
    key = "fit_seconds_per_1000_series_years"
    return {
        "shelfcast_" + key: round(summary[key], 3),
        **{k: round(v, 3) for k, v in summary.items() if k.endswith("_" + key)},
        "trees": config.n_estimators,
        **at_start,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="few series, a few minutes")
    parser.add_argument("--series", type=int, default=None, help="resampled series to forecast")
    parser.add_argument("--top-skus", type=int, default=None, help="real SKUs to train on")
    parser.add_argument("--rounds", type=int, default=3, help="alternated 1/2-worker rounds")
    parser.add_argument(
        "--ratio-series",
        type=int,
        default=None,
        help=f"series per scale-out round (default {RATIO_SERIES:,}; longer rounds average out "
        "a busy neighbour's bursts)",
    )
    parser.add_argument(
        "--rows-series",
        type=int,
        default=ROWS_SERIES,
        help=f"resampled series whose training rows are built per round (default {ROWS_SERIES:,})",
    )
    parser.add_argument("--pin", action="store_true", help="pin each worker to a core")
    parser.add_argument(
        "--fit-series",
        type=int,
        default=None,
        help=f"resampled series whose rows the demand model fits on (default {FIT_SERIES:,}; "
        "quick 500)",
    )
    parser.add_argument(
        "--fit-only", action="store_true", help="only the demand fit, single process vs Dask"
    )
    parser.add_argument(
        "--training-only",
        action="store_true",
        help="only phase 1: backtest + training in one process, then on 1 and 2 workers "
        "alternated over --rounds",
    )
    args = parser.parse_args()
    args.fit_series = args.fit_series or (500 if args.quick else FIT_SERIES)
    if args.fit_only:
        return fit_only(args, say)

    from training.datasets import online_retail
    from training.library_noise import silence_library_noise
    from training.train import TrainConfig

    silence_library_noise()
    n_series = args.series or (20_000 if args.quick else 200_000)
    ratio_series = min(n_series, args.ratio_series or (8_000 if args.quick else RATIO_SERIES))
    top = args.top_skus or (60 if args.quick else 300)
    history = online_retail(top_skus=top)
    config = TrainConfig(folds=1, n_estimators=60, stride=14, anomaly_rows=20_000)
    autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled")
    report: dict = {
        "engine": "dask",
        "workers": 2,
        "machine": machine(
            autogroup_scheduler=autogroup.exists() and autogroup.read_text().strip() == "1",
            pinned_workers=args.pin,
            load_average_at_start=load()["load_average"],
        ),
        "tolerance": {"rtol": RTOL, "atol": ATOL},
        "series_source": SOURCE,
    }
    memory: dict = {}
    engines = {w: DaskEngine(workers=w, pin=args.pin) for w in (1, 2)}
    try:
        training = training_scale_out(history, engines, config, args.rounds, say, top)
        fc_local = training.pop("reference_forecaster")
        differences = list(training["differences_from_single_process"])
        report.update(
            training_scale_out_ratio=training["training_scale_out_ratio"],
            training_seconds=training["median_seconds"],
            training_series=top,
            training=training,
        )
        if args.training_only:
            report.update(
                same_metrics_as_single_process=not differences,
                load_average_at_end=load()["load_average"],
            )
            write_report(args.json, report)
            print(training_markdown(report))
            return 0
        say(f"training on {top} real SKUs in one process without the backtest (--folds 0)")
        _, _, sec0 = train_once(history, LocalEngine(), replace(config, folds=0))
        training["single_process_without_backtest"] = {"seconds": round(sec0, 2), **load()}
        say(f"fit time per 1,000 series-years, shelfcast and mlforecast, on {top} real SKUs")
        fit_time = training_time(history, config)
        onnx = fc_local.demand_onnx
        base = real_tails()
        rows_panel = resampled(base, args.rows_series, seed=1_000_000)
        rows = feature_rows_scale_out(engines, rows_panel, config.stride, args.rounds, say)
        if not rows["same_rows_on_every_engine"]:
            differences.append("training rows: checksums differ between engines")
        fit_panel = resampled(base, args.fit_series, seed=2_000_000)
        demand_fit = demand_fit_scale_out(engines, fit_panel, FIT_STRIDE, args.rounds, say)
        forecasts = scale_out(engines, onnx, base, ratio_series, args.rounds, say)
        large = forecasts["dask_2"][-1]
        if n_series > ratio_series:
            say(f"batch forecast of {n_series:,} resampled series on 2 workers")
            large = forecasts["dask_2_large"] = batch_forecast(engines[2], onnx, base, n_series)
        for workers, engine in engines.items():
            memory[f"dask_{workers}"] = {
                w: round(b / 2**20, 1) for w, b in engine.peak_memory_bytes().items()
            }
    finally:
        for engine in engines.values():
            engine.close()
    say("statsforecast AutoETS on a sample of the same series, one core")
    ets = autoets(base, 100 if args.quick else 300)

    published = PUBLISHED["series"] / (PUBLISHED["minutes"] * 60) / PUBLISHED["cpus"]
    report.update(
        scale_out_ratio=forecasts["scale_out_ratio"],
        cpu_normalised_scale_out_ratio=forecasts["cpu_normalised_scale_out_ratio"],
        same_metrics_as_single_process=not differences,
        differences_from_single_process=differences,
        compared=(
            "the bundle's backtest metrics (every number but timings) and its 28-day forecast of "
            "every training series, single process against Dask with 1 and 2 workers; the "
            "training rows of the same resampled series on every engine (checksum); and the "
            "1- and 2-worker batch forecasts of the same resampled series (checksum)"
        ),
        series_forecast=large["series"],
        series_forecast_seconds=large["seconds"],
        series_per_s_per_core=round(large["series_per_s"] / 2, 1),
        series_per_worker_cpu_s=large["series_per_worker_cpu_s"],
        statsforecast_series_per_s_per_core=ets["series_per_s"],
        statsforecast_series_per_cpu_s=ets["series_per_cpu_s"],
        statsforecast_published_series_per_s_per_core=round(published, 3),
        training_time=fit_time,
        training_rows=rows,
        training_rows_scale_out_ratio=rows["scale_out_ratio"],
        demand_fit=demand_fit,
        fit_scale_out_ratio=demand_fit["fit_scale_out_ratio"],
        batch_forecast=forecasts,
        statsforecast_autoets=ets,
        peak_memory_mib_per_worker=memory,
        load_average_at_end=load()["load_average"],
        note=(
            "training covers backtest (1 fold, 5 statsforecast baselines) + final fit + ONNX "
            "export; the baselines and the training rows fan out, the fold's fit and the final "
            "fit are one task each (on the workers too with --fit-on-cluster: demand_fit); "
            "training_scale_out_ratio is the median over the alternated rounds. "
            "scale_out_ratio is the batch forecast's, on the resampled series; "
            "training_rows_scale_out_ratio the training rows' (median of the rounds)."
        ),
    )
    write_report(args.json, report)
    print(markdown(report))
    return 0


def say(message: str) -> None:
    print(f"[scale] {message} (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)


def write_report(path: str, report: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2, default=str))


def _median(runs: list[dict], key: str) -> float:
    return round(float(np.median([r[key] for r in runs])), 1)


def training_markdown(r: dict) -> str:
    t = r["training"]
    return (
        f"| backtest + training, {r['training_series']} SKUs | seconds (median) |\n|---|---|\n"
        + "".join(f"| {k} | {v} |\n" for k, v in t["median_seconds"].items())
        + f"\ntraining_scale_out_ratio {t['training_scale_out_ratio']} (per round "
        f"{t['ratios_per_round']}); same metrics as single process: "
        f"{t['same_metrics_as_single_process']}\n"
    )


def markdown(r: dict) -> str:
    bf, t, tr = r["batch_forecast"], r["training_time"], r["training_rows"]
    rows = [
        ("training: single process", r["training"]["single_process"]["series_per_s"]),
        ("training: Dask 1 worker (median)", _median(r["training"]["dask_1"], "series_per_s")),
        ("training: Dask 2 workers (median)", _median(r["training"]["dask_2"], "series_per_s")),
        ("training rows: single process", _median(tr["single_process"], "series_per_s")),
        ("training rows: Dask 1 worker (median)", _median(tr["dask_1"], "series_per_s")),
        ("training rows: Dask 2 workers (median)", _median(tr["dask_2"], "series_per_s")),
        ("batch forecast: Dask 1 worker (median)", _median(bf["dask_1"], "series_per_s")),
        ("batch forecast: Dask 2 workers (median)", _median(bf["dask_2"], "series_per_s")),
        (f"batch forecast, {r['series_forecast']:,} series, per core", r["series_per_s_per_core"]),
        ("batch forecast per worker CPU-second", r["series_per_worker_cpu_s"]),
        ("statsforecast AutoETS per core (here)", r["statsforecast_series_per_s_per_core"]),
        ("statsforecast AutoETS per CPU-second (here)", r["statsforecast_series_per_cpu_s"]),
        (
            "statsforecast AutoARIMA per core (published)",
            r["statsforecast_published_series_per_s_per_core"],
        ),
    ]
    head = "| step | series/s |\n|---|---|\n"
    body = "".join(f"| {a} | {b:,} |\n" for a, b in rows)
    fits = ", ".join(f"{k.split('_fit_')[0]} {v}" for k, v in t.items() if "fit_seconds" in k)
    tail_ = (
        f"\nscale_out_ratio {r['scale_out_ratio']} (per round {bf['ratios_per_round']}), "
        f"CPU-normalised {r['cpu_normalised_scale_out_ratio']}, training "
        f"{r['training_scale_out_ratio']}, training rows {r['training_rows_scale_out_ratio']}; "
        f"same results as single process: "
        f"{r['same_metrics_as_single_process']}; fit s per 1,000 series-years: {fits}; "
        f"load {r['machine']['load_average_at_start']} -> {r['load_average_at_end']}; "
        f"{r['series_forecast']:,} {r['series_source']}\n"
    )
    return head + body + tail_ + "\n" + fit_markdown(r["demand_fit"])


if __name__ == "__main__":
    raise SystemExit(main())
