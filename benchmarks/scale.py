"""Scale-out figures: training and batch forecasting on Dask with 1 and 2 workers, and a batch
forecast of many series built from real ones, beside statsforecast AutoETS on the same series.

1. Backtest + training: Online Retail's top SKUs (UK, cancellations netted), one backtest fold
   of 28 days with the five statsforecast baselines, then the final fit, as ``shelfcast train``
   runs them (:func:`training.train.train` without MLflow), in one process and on Dask with 1
   and 2 workers. The backtest tables and the bundle's forecasts must be the same on every
   engine (``same_metrics_as_single_process``, within ``TOLERANCE``).
2. Batch forecast: the trained ONNX demand model forecasts 28 days for ``--series`` series on
   Dask with 1 and 2 workers (``scale_out_ratio`` = 2-worker over 1-worker series/s on the
   same ``RATIO_SERIES`` series; beyond that many, the large run is a second 2-worker run). The series are **resampled real series**, said so in the
   output: each is one of Online Retail's real UK SKU histories (its last 366 days, what the
   features read), rolled by whole weeks (the weekday pattern stays) and redrawn as Poisson
   counts around a random multiple (0.25x..4x) of its real daily units. Each worker builds its
   own partitions from the real series it was sent once, so the driver never holds them all.
3. statsforecast AutoETS (season 7, ``n_jobs=1``) fitted and forecast on a sample of the same
   series, one core, beside the published reference (1M series, AutoARIMA on Ray, 36 minutes
   on 2,000 CPUs).

Per core figures divide by the worker processes (one thread each). The machine's load average
is recorded: on a shared box, 2 workers on 2 busy cores do not get 2 cores.

    python benchmarks/scale.py --json var/bench/scale.json [--quick] [--series 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feature_store.batch import Panel, panel_from_frame  # noqa: E402
from training.engine import DaskEngine, LocalEngine  # noqa: E402
from training.forecast import Forecaster, tail  # noqa: E402

TOLERANCE = 1e-9
HORIZON = 28
# 1M series in 36 min on 2,000 CPUs (statsforecast's AutoARIMA on Ray, as Nixtla published).
PUBLISHED = {"series": 1_000_000, "minutes": 36, "cpus": 2000}
RATIO_SERIES = 20_000  # 1 and 2 workers forecast the same series for scale_out_ratio
PARTITION = 2_000  # series per task: features of 2,000 x 366 days fit a worker comfortably
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
    """Forecast ``n_series`` resampled series on ``engine``; series/s over the wall time."""
    sizes = [PARTITION] * (n_series // PARTITION) + (
        [n_series % PARTITION] * (n_series % PARTITION > 0)
    )
    if hasattr(engine, "client"):
        # hash=False: a second run scattering the same bytes would share their key, and the
        # first run's futures, released, would take the data away from the second's tasks.
        [onnx_f] = engine.client.scatter([onnx], broadcast=True, hash=False)
        [base_f] = engine.client.scatter([base], broadcast=True, hash=False)
    else:
        onnx_f, base_f = onnx, base
    tasks = [(onnx_f, base_f, n, seed) for seed, n in enumerate(sizes)]
    t0 = time.perf_counter()
    parts = engine.map(forecast_resampled, tasks)
    seconds = time.perf_counter() - t0
    return {
        "series": int(sum(p["series"] for p in parts)),
        "seconds": round(seconds, 2),
        "series_per_s": round(n_series / seconds, 1),
        "checksum_mean_units": round(sum(p["mean_sum"] for p in parts), 3),
    }


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
    t0 = time.perf_counter()
    StatsForecast(models=[AutoETS(season_length=7)], freq="D", n_jobs=1).forecast(df=df, h=HORIZON)
    seconds = time.perf_counter() - t0
    return {"series": n, "seconds": round(seconds, 2), "series_per_s": round(n / seconds, 2)}


def train_once(history, engine, config) -> tuple[dict, object, float]:
    """``shelfcast train`` (no MLflow) on ``engine``: its backtest table, the bundle's
    forecasts of the training series, and the wall seconds."""
    from training.train import train

    out = Path(tempfile.mkdtemp(prefix="scale-bundle-"))
    t0 = time.perf_counter()
    result = train(history, out, config, "online_retail", track=False, engine=engine)
    seconds = time.perf_counter() - t0
    forecaster = Forecaster.from_bundle(result.bundle)
    return result.backtest, forecaster, seconds


def same_results(a, b) -> bool:
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(a, b, rtol=TOLERANCE, atol=TOLERANCE)
    except AssertionError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="few series, a minute or two")
    parser.add_argument("--series", type=int, default=None, help="resampled series to forecast")
    parser.add_argument("--top-skus", type=int, default=None, help="real SKUs to train on")
    args = parser.parse_args()

    from training.datasets import online_retail
    from training.library_noise import silence_library_noise
    from training.train import TrainConfig

    silence_library_noise()
    n_series = args.series or (20_000 if args.quick else 200_000)
    top = args.top_skus or (60 if args.quick else 300)
    history = online_retail(top_skus=top)
    config = TrainConfig(folds=1, n_estimators=60, stride=14, anomaly_rows=20_000)
    base = real_tails()
    report: dict = {
        "engine": "dask",
        "workers": 2,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "tolerance": TOLERANCE,
        "series_source": SOURCE,
    }

    training, forecasts, memory = {}, {}, {}
    say = lambda m: print(f"[scale] {m}", file=sys.stderr, flush=True)  # noqa: E731
    say(f"training on {top} real SKUs in one process")
    bt_local, fc_local, sec = train_once(history, LocalEngine(), config)
    training["single_process"] = {"seconds": round(sec, 2), "series_per_s": round(top / sec, 2)}
    local_table = fc_local.forecast(history, HORIZON)
    onnx = fc_local.demand_onnx
    same = True
    for workers in (1, 2):
        with DaskEngine(workers=workers) as engine:
            say(f"training on {top} real SKUs on Dask, {workers} worker(s)")
            bt, fc, sec = train_once(history, engine, config)
            training[f"dask_{workers}"] = {
                "seconds": round(sec, 2),
                "series_per_s": round(top / sec, 2),
            }
            for key in bt:
                if "seconds" not in key and bt[key] != bt_local[key]:
                    same &= isinstance(bt[key], float) and abs(bt[key] - bt_local[key]) <= TOLERANCE
            same &= same_results(local_table, fc.forecast(history, HORIZON, engine=engine))
            size = min(n_series, RATIO_SERIES)
            say(f"batch forecast of {size:,} resampled series on {workers} worker(s)")
            forecasts[f"dask_{workers}"] = batch_forecast(engine, onnx, base, size)
            if workers == 2 and n_series > size:
                say(f"batch forecast of {n_series:,} resampled series on 2 workers")
                forecasts["dask_2_large"] = batch_forecast(engine, onnx, base, n_series)
            memory[f"dask_{workers}"] = {
                w: round(b / 2**20, 1) for w, b in engine.peak_memory_bytes().items()
            }
    say("statsforecast AutoETS on a sample of the same series, one core")
    ets = autoets(base, 100 if args.quick else 300)

    one, two = forecasts["dask_1"]["series_per_s"], forecasts["dask_2"]["series_per_s"]
    large = forecasts.get("dask_2_large", forecasts["dask_2"])
    published = PUBLISHED["series"] / (PUBLISHED["minutes"] * 60) / PUBLISHED["cpus"]
    report.update(
        scale_out_ratio=round(two / one, 3),
        same_metrics_as_single_process=bool(same),
        series_forecast=large["series"],
        series_per_s_per_core=round(large["series_per_s"] / 2, 1),
        statsforecast_series_per_s_per_core=ets["series_per_s"],
        statsforecast_published_series_per_s_per_core=round(published, 3),
        training_scale_out_ratio=round(
            training["dask_2"]["series_per_s"] / training["dask_1"]["series_per_s"], 3
        ),
        training=training,
        batch_forecast=forecasts,
        statsforecast_autoets=ets,
        peak_memory_mib_per_worker=memory,
        load_average_at_end=[round(x, 2) for x in os.getloadavg()],
        training_series=top,
        note=(
            "training covers backtest (1 fold, 5 statsforecast baselines) + final fit + ONNX "
            "export; only the baselines fan out, LightGBM is one global fit. scale_out_ratio is "
            "the batch forecast's, on the resampled series."
        ),
    )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    print(markdown(report))
    return 0


def markdown(r: dict) -> str:
    rows = [
        ("training: single process", r["training"]["single_process"]["series_per_s"]),
        ("training: Dask 1 worker", r["training"]["dask_1"]["series_per_s"]),
        ("training: Dask 2 workers", r["training"]["dask_2"]["series_per_s"]),
        ("batch forecast: Dask 1 worker", r["batch_forecast"]["dask_1"]["series_per_s"]),
        ("batch forecast: Dask 2 workers", r["batch_forecast"]["dask_2"]["series_per_s"]),
        (f"batch forecast, {r['series_forecast']:,} series, per core", r["series_per_s_per_core"]),
        ("statsforecast AutoETS per core (here)", r["statsforecast_series_per_s_per_core"]),
        (
            "statsforecast AutoARIMA per core (published)",
            r["statsforecast_published_series_per_s_per_core"],
        ),
    ]
    head = "| step | series/s |\n|---|---|\n"
    body = "".join(f"| {a} | {b:,} |\n" for a, b in rows)
    tail_ = (
        f"\nscale_out_ratio {r['scale_out_ratio']} (training {r['training_scale_out_ratio']}), "
        f"same results as single process: {r['same_metrics_as_single_process']}, "
        f"{r['series_forecast']:,} {r['series_source']}\n"
    )
    return head + body + tail_


if __name__ == "__main__":
    raise SystemExit(main())
