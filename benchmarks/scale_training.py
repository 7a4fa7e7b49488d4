"""Phase 1 of ``benchmarks/scale.py``: backtest + training in one process and on Dask with 1
and 2 workers, as ``shelfcast train`` runs them (:func:`training.train.train` without MLflow).

The single process runs once: its bundle's backtest metrics and its 28-day forecast of every
training series are the reference. The 1- and 2-worker clusters then train alternately over
``rounds`` rounds (1 then 2, 2 then 1, ...), both clusters up throughout, so a change in the
machine's load falls on both sides; ``training_scale_out_ratio`` is the median of the rounds'
1-worker over 2-worker seconds. Every Dask run's metrics and forecasts are compared with the
reference within ``RTOL``/``ATOL`` (``differences``).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

# Bundle metrics and forecasts compared between engines: each series and each fit is computed by
# the same code on the same rows wherever it runs; the tolerance allows only for float
# summation order.
RTOL, ATOL = 1e-9, 1e-12
HORIZON = 28


def load() -> dict:
    """The machine's load when a run starts: ``uptime``'s three load averages."""
    return {"load_average": [round(x, 2) for x in os.getloadavg()]}


def train_once(history, engine, config) -> tuple[dict, object, float]:
    """``shelfcast train`` (no MLflow) on ``engine``: the bundle's backtest metrics, its
    forecaster, and the wall seconds."""
    from training.forecast import Forecaster
    from training.train import train

    out = Path(tempfile.mkdtemp(prefix="scale-bundle-"))
    t0 = time.perf_counter()
    result = train(history, out, config, "online_retail", track=False, engine=engine)
    seconds = time.perf_counter() - t0
    forecaster = Forecaster.from_bundle(result.bundle)
    return result.metadata["backtest"], forecaster, seconds


def metric_differences(a: dict, b: dict) -> list[str]:
    """The bundle metrics that differ beyond ``RTOL``/``ATOL`` (timings are not metrics)."""
    out = []
    for key in sorted(set(a) | set(b)):
        if "seconds" in key:
            continue
        x, y = a.get(key), b.get(key)
        if isinstance(x, float) and isinstance(y, float):
            if not np.isclose(x, y, rtol=RTOL, atol=ATOL, equal_nan=True):
                out.append(f"{key}: {x!r} vs {y!r}")
        elif x != y:
            out.append(f"{key}: {x!r} vs {y!r}")
    return out


def table_differences(a, b) -> list[str]:
    """Where two forecast tables differ beyond ``RTOL``/``ATOL``, if anywhere."""
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(a, b, rtol=RTOL, atol=ATOL)
    except AssertionError as exc:
        return [" ".join(str(exc).split())[:300]]
    return []


def training_scale_out(history, engines: dict, config, rounds: int, say, n_series: int) -> dict:
    """Single process once, then 1 and 2 workers alternated over ``rounds``; seconds and
    series/s per run, the median ratio, and every difference from the single process."""
    from training.engine import LocalEngine

    say(f"training on {n_series} real SKUs in one process")
    reference, fc_local, sec = train_once(history, LocalEngine(), config)
    single = {"seconds": round(sec, 2), "series_per_s": round(n_series / sec, 3), **load()}
    table = fc_local.forecast(history, HORIZON)  # the reference forecast
    runs: dict[int, list[dict]] = {1: [], 2: []}
    differences: list[str] = []
    for r in range(rounds):
        for workers in (1, 2) if r % 2 == 0 else (2, 1):
            say(f"round {r + 1}/{rounds}: training on {n_series} real SKUs, {workers} worker(s)")
            at_start = load()
            metrics, fc, sec = train_once(history, engines[workers], config)
            runs[workers].append(
                {"seconds": round(sec, 2), "series_per_s": round(n_series / sec, 3), **at_start}
            )
            found = metric_differences(reference, metrics)
            found += table_differences(
                table, fc.forecast(history, HORIZON, engine=engines[workers])
            )
            differences += [f"dask {workers}, round {r + 1}: {d}" for d in found]
    ratios = [a["seconds"] / b["seconds"] for a, b in zip(runs[1], runs[2], strict=True)]
    return {
        "training_scale_out_ratio": round(float(np.median(ratios)), 3),
        "ratios_per_round": [round(x, 3) for x in ratios],
        "median_seconds": {
            "single_process": single["seconds"],
            "dask_1": round(float(np.median([x["seconds"] for x in runs[1]])), 2),
            "dask_2": round(float(np.median([x["seconds"] for x in runs[2]])), 2),
        },
        "same_metrics_as_single_process": not differences,
        "differences_from_single_process": differences,
        "single_process": single,
        "dask_1": runs[1],
        "dask_2": runs[2],
        "reference_forecaster": fc_local,  # for the caller, not the report
    }
