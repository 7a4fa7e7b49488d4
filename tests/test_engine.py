"""The distributed engine gives the single-process results: a real Dask cluster (2 worker
processes, one thread each, on loopback) runs the training feature rows (byte for byte the
single-process rows), the backtest's statsforecast baselines and the batch forecast of real
series, partitioned by whole series, and every metric and forecast
matches the single-process run within ``TOLERANCE``; the cluster is stopped afterwards."""

from __future__ import annotations

import dataclasses
import os

import dask
import distributed  # noqa: F401  (its config defaults, before the fixture sets one)
import numpy as np
import pandas as pd
import pytest

from feature_store.batch import (
    Panel,
    close_features,
    forecast_rows,
    panel_from_frame,
    training_rows,
)
from feature_store.spec import names
from models.demand import DemandModel
from models.onnx_export import max_abs_diff, run_onnx
from training.backtest import backtest
from training.datasets import m5_sample, online_retail
from training.engine import (
    DaskEngine,
    LocalEngine,
    engine_for,
    panel_series,
    partitions_for,
    series_partitions,
)
from training.forecast import Forecaster
from training.loss_weights import weighted_training_rows

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

# Each series is computed by the same code on the same days wherever it runs; the tolerance
# only allows for a different BLAS/float path on another machine of a real cluster.
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def cluster():
    # Dask's memory manager wakes every 2 s by default; every 5 ms here, so a replica of the
    # shared panel it could drop between two fits is dropped in every run, not only when the
    # machine is slow enough for a fit to span one of its passes.
    with dask.config.set({"distributed.scheduler.active-memory-manager.interval": "5ms"}):
        engine = DaskEngine(workers=2, pin=True)
    yield engine
    engine.close()
    assert engine.client.status == "closed"


@pytest.fixture(scope="module")
def history(real_data_dir):
    m5 = m5_sample()
    retail = online_retail(top_skus=30)
    return pd.concat([m5, retail], ignore_index=True)


def test_cluster_is_two_local_worker_processes(cluster):
    workers = cluster.client.scheduler_info()["workers"]
    assert cluster.workers == 2 and len(workers) == 2
    assert all(address.startswith("tcp://127.0.0.1:") for address in workers)
    assert len(set(cluster.client.run(lambda: __import__("os").getpid()).values())) == 2


def test_each_worker_has_a_cpu_share_and_a_core_of_its_own(cluster):
    # A session each: the kernel's autogroup scheduler shares the CPU between sessions, so
    # workers left in the driver's session would split one share on a busy machine.
    sessions = cluster.client.run(os.getsid, 0)
    assert len(set(sessions.values())) == 2 and os.getsid(0) not in sessions.values()
    cores = list(cluster.client.run(os.sched_getaffinity, 0).values())
    assert all(len(c) == 1 for c in cores)
    assert len(set().union(*cores)) == min(2, len(os.sched_getaffinity(0)))


def test_workers_keep_glibcs_adaptive_malloc_and_run_without_the_profiler(cluster):
    # Dask's fixed trim threshold made every array a fresh mmap; with the profiler, twice the
    # CPU time per forecast series.
    env = cluster.client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
    assert list(env.values()) == [None, None]
    profiling = cluster.client.run(_profiling_enabled)
    assert list(profiling.values()) == [False, False]


def _profiling_enabled() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def test_backtest_metrics_do_not_depend_on_the_engine(cluster, history):
    m5 = history[history["store_id"] != "United Kingdom"]
    panel = panel_from_frame(m5[m5["date"] >= "2015-01-01"])
    kw = dict(folds=2, horizon=28, model_params={"n_estimators": 20}, stride=28)
    single = backtest(panel, **kw).frame()
    spread = backtest(panel, engine=cluster, **kw).frame()
    assert len(partitions_for(cluster, len(panel.keys))) > 1  # it really was spread
    assert set(single["method"]) >= {"shelfcast", "AutoETS", "TSB"}
    pd.testing.assert_frame_equal(single, spread, rtol=TOLERANCE, atol=TOLERANCE)


def test_batch_forecasts_do_not_depend_on_the_engine(cluster, history):
    history = history[history["date"] < "2011-08-01"]
    panel = panel_from_frame(history)
    X, y = training_rows(panel, close_features(panel), panel.n_days - 1, stride=14)
    model = DemandModel(n_estimators=20, num_leaves=15).fit(X, y)
    forecaster = Forecaster(model.to_onnx(len(names())))
    start = "2011-06-01"  # both data sets have history before it; 35 days reach the recursion
    single = forecaster.forecast(history, horizon=35, start=start, skip_short=True)
    spread = forecaster.forecast(history, horizon=35, start=start, skip_short=True, engine=cluster)
    n = single.groupby(["store_id", "sku"]).ngroups
    assert n > 30 and single["store_id"].nunique() > 1 and len(single) == n * 35
    pd.testing.assert_frame_equal(single, spread, rtol=TOLERANCE, atol=TOLERANCE)


def test_training_rows_do_not_depend_on_the_engine(cluster, history):
    # Byte for byte: the fit then sees the very same matrix, labels and weights.
    panel = panel_from_frame(history[history["date"] >= "2011-01-01"])
    last = panel.n_days - 1
    single = weighted_training_rows(panel, close_features(panel), last_day=last, stride=14)
    spread = weighted_training_rows(panel, None, last_day=last, stride=14, engine=cluster)
    parts = partitions_for(cluster, len(panel.keys))
    assert len(parts) >= 8 and len(single[0]) > 10_000
    pairs = [(single[0], spread[0]), (single[1], spread[1]), (single[2].mean, spread[2].mean)]
    for a, b in pairs:
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_demand_model_fits_on_both_workers_and_forecasts_as_well(cluster, history):
    # LightGBM's data-parallel learner: each worker bins its own rows and draws its own bagging
    # sample, so the trees differ from one process's; the accuracy must not.
    m5 = history[history["store_id"] != "United Kingdom"]
    panel = panel_from_frame(m5[m5["date"] >= "2014-01-01"])
    kw = dict(folds=1, horizon=28, model_params={"n_estimators": 40}, stride=7, baselines=False)
    single = backtest(panel, **kw)
    cluster.fit_on_cluster = True
    try:
        spread = backtest(panel, engine=cluster, **kw)
    finally:
        cluster.fit_on_cluster = False
    for name, booster in spread.models[0].boosters.items():
        text = booster.model_to_string()
        assert "[num_machines: 2]" in text and "[tree_learner: data]" in text, name
        assert text != single.models[0].boosters[name].model_to_string()
    a, b = single.summary(), spread.summary()
    assert b["rmsse_model"] == pytest.approx(a["rmsse_model"], rel=0.05)
    assert 0.7 <= b["p90_coverage"] <= 1.0
    X, _series, _h = forecast_rows(panel, close_features(panel), panel.n_days - 1)
    model = spread.models[0]
    assert max_abs_diff(model.predict(X), run_onnx(model.to_onnx(len(names())), X)) < 1e-3


def test_a_fit_on_the_cluster_needs_the_dask_engine():
    with pytest.raises(ValueError, match="--fit-on-cluster needs --engine dask"):
        engine_for("local", fit_on_cluster=True)


def test_a_partition_task_holds_its_own_series_only(history):
    panel = panel_from_frame(history[history["date"] >= "2015-01-01"])
    part = series_partitions(len(panel.keys), 4)[2]
    own = panel_series(panel, part)
    assert own.keys == [panel.keys[i] for i in part] and own.units.shape[0] == len(part)
    assert np.shares_memory(own.units, panel.units)  # a view of its rows, shipped alone


def test_partitions_hold_whole_series_in_order():
    parts = series_partitions(10, 4)
    assert np.concatenate(parts).tolist() == list(range(10))
    assert len(partitions_for(LocalEngine(), 10)) == 1
    assert len(series_partitions(2, 8)) == 2  # never an empty partition


def test_forecast_command_on_dask_writes_the_same_table(history, tmp_path):
    from feature_store.spec import spec_dict
    from models.bundle import write_bundle
    from shelfcast.cli import main

    m5 = history[(history["store_id"] != "United Kingdom") & (history["date"] >= "2015-06-01")]
    panel = panel_from_frame(m5)
    X, y = training_rows(panel, close_features(panel), panel.n_days - 1, stride=28)
    model = DemandModel(n_estimators=10, num_leaves=7).fit(X, y)
    bundle = write_bundle(
        tmp_path / "bundle", {"demand": model.to_onnx(len(names()))}, spec_dict(), {}
    )
    m5.to_parquet(tmp_path / "sales.parquet")
    argv = ["forecast", "--bundle", str(bundle), "--data", str(tmp_path / "sales.parquet")]
    assert main([*argv, "--out", str(tmp_path / "local.csv")]) == 0
    dask = ["--engine", "dask", "--workers", "2"]
    assert main([*argv, "--out", str(tmp_path / "dask.csv"), *dask]) == 0
    local, spread = pd.read_csv(tmp_path / "local.csv"), pd.read_csv(tmp_path / "dask.csv")
    assert len(local) == 10 * 28
    pd.testing.assert_frame_equal(local, spread, rtol=TOLERANCE, atol=TOLERANCE)


# Each worker process unpickles a ``CountedPanel`` here: how many times it was sent there.
_PANEL_LOADS: list[int] = []


class CountedPanel(Panel):
    """A panel that counts, in each process, how many times it was unpickled."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        _PANEL_LOADS.append(1)


def _panel_loads() -> int:
    return len(_PANEL_LOADS)


def test_backtest_folds_and_final_fit_run_on_the_workers_with_the_same_trees(cluster, history):
    # Each fold's rows, fit and forecast and the final fit are tasks; on one LightGBM thread a
    # worker grows the very trees this process grows. Which worker runs which fit is the
    # scheduler's choice (on a busy machine one worker may run them all), so the test asserts
    # only what holds either way: every fit done on a worker, the same trees, and the panel
    # sent to each worker once - three fits on two workers, so a worker runs two of them.
    from training.backtest_and_fit import backtest_and_final_fit
    from training.train import TrainConfig

    m5 = history[history["store_id"] != "United Kingdom"]
    base = panel_from_frame(m5[m5["date"] >= "2015-01-01"])
    panel = CountedPanel(**{f.name: getattr(base, f.name) for f in dataclasses.fields(Panel)})
    close = close_features(panel)
    config = TrainConfig(folds=2, n_estimators=20, stride=28, baselines=False)
    lines: list[str] = []
    single = backtest_and_final_fit(panel, close, config, None, lambda m: None)
    before = cluster.client.run(_panel_loads)
    spread = backtest_and_final_fit(panel, close, config, cluster, lines.append)
    after = cluster.client.run(_panel_loads)
    workers = set(cluster.client.scheduler_info()["workers"])
    assert single[0].fitted_on == ["this process"] * 2 and single[2].where == "this process"
    assert len(spread[0].fitted_on) == 2 and {*spread[0].fitted_on, spread[2].where} <= workers
    assert {w: after[w] - before[w] for w in after} == dict.fromkeys(workers, 1)
    for a, b in [
        *zip(single[0].models, spread[0].models, strict=True),
        (single[2].model, spread[2].model),
    ]:
        for name, booster in a.boosters.items():
            assert booster.model_to_string() == b.boosters[name].model_to_string(), name
    pd.testing.assert_frame_equal(single[0].frame(), spread[0].frame(), rtol=0, atol=0)
    assert {k: v for k, v in single[1].items() if "seconds" not in k} == {
        k: v for k, v in spread[1].items() if "seconds" not in k
    }
    done = [m for m in lines if "rows fitted in" in m]  # a line per fit as it finishes
    names = sorted(m.strip().split(":")[0] for m in done)
    assert names == ["final fit", "fold 1/2", "fold 2/2"]
    assert all(" on tcp://127.0.0.1:" in m for m in done)
