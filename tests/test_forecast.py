"""`shelfcast forecast` and the MLflow pyfunc: same numbers, clear refusals, Parquet and CSV.

A small demand model is trained here on synthetic weekly-seasonal series (LightGBM, exported to
ONNX, written as a real bundle) so these tests run anywhere; the real-data holdout test is in
``tests/test_forecast_realdata.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_store.batch import close_features, panel_from_frame, training_rows
from feature_store.spec import names, spec_dict
from models.bundle import write_bundle
from models.demand import DemandModel
from shelfcast.cli import main
from training.forecast import Forecaster, ForecastError, HistoryTooShort


def synthetic_history(n_series: int = 4, days: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    weekly = np.array([1.0, 0.8, 0.9, 1.0, 1.3, 1.8, 1.5])
    rows = []
    for s in range(n_series):
        level = 2.0 + 3.0 * s
        lam = level * weekly[dates.dayofweek.to_numpy()]
        rows.append(
            pd.DataFrame(
                {
                    "store_id": f"S{s % 2}",
                    "sku": f"SKU{s}",
                    "date": dates,
                    "units": rng.poisson(lam).astype(float),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return synthetic_history()


@pytest.fixture(scope="module")
def bundle(history, tmp_path_factory):
    panel = panel_from_frame(history)
    close = close_features(panel)
    X, y = training_rows(panel, close, last_day=panel.n_days - 1, stride=7)
    model = DemandModel(n_estimators=20, num_leaves=7).fit(X, y)
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    return write_bundle(
        out, {"demand": model.to_onnx(len(names()))}, spec_dict(), {"model_version": "t1"}
    )


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_logging_a_run_names_the_onnx_requirements_instead_of_inferring_them(
    bundle, history, tmp_path, tracking, monkeypatch
):
    """MLflow infers a model's requirements by loading it in a fresh Python process, seconds per
    logged model; the raw ONNX graphs name theirs, so a training run starts no such process."""
    import mlflow
    import mlflow.models

    from edge_runtime.forecast.scoring import identity_model
    from feature_store.spec import ANOMALY_FEATURES
    from training.lineage import RunLineage
    from training.tracking import log_training_run, onnx_requirements

    inferred: list[str] = []
    infer = mlflow.models.infer_pip_requirements

    def spy(model_uri, *args, **kwargs):
        inferred.append(str(model_uri))
        return infer(model_uri, *args, **kwargs)

    monkeypatch.setattr(mlflow.models, "infer_pip_requirements", spy)
    logged = log_training_run(
        params={"note": "test"},
        metrics={"rmsse_model": 0.8},
        onnx_models={
            "demand": (bundle / "demand.onnx").read_bytes(),
            "anomaly": identity_model(len(ANOMALY_FEATURES)),  # any graph: only logged here
        },
        n_features={"demand": len(names()), "anomaly": len(ANOMALY_FEATURES)},
        feature_spec=spec_dict(),
        lineage=RunLineage.of(history, "h.parquet", folds=1, horizon=28, quick=True),
    )
    assert inferred == []
    mlflow.set_tracking_uri(tracking)
    for raw_graph in ("demand_onnx", "anomaly"):  # the pyfunc names its own (training/pyfunc.py)
        raw = Path(mlflow.artifacts.download_artifacts(f"runs:/{logged.run_id}/{raw_graph}"))
        assert (raw / "requirements.txt").read_text().split() == onnx_requirements()


def test_cli_and_pyfunc_give_identical_numbers(bundle, history, tmp_path, tracking, capsys):
    import mlflow

    from training.lineage import RunLineage
    from training.tracking import log_training_run

    data = tmp_path / "sales.parquet"
    history.to_parquet(data)
    out_pq, out_csv = tmp_path / "fc.parquet", tmp_path / "fc.csv"
    for out in (out_pq, out_csv):
        argv = ["forecast", "--bundle", str(bundle), "--data", str(data), "--horizon", "35"]
        assert main([*argv, "--out", str(out)]) == 0
    assert "forecasts (4 series x 35 days)" in capsys.readouterr().err

    # Registered as a training run registers it: the pyfunc is the shelfcast-demand version.
    logged = log_training_run(
        params={"note": "test"},
        metrics={"rmsse_model": 0.8},
        onnx_models={"demand": (bundle / "demand.onnx").read_bytes()},
        n_features={"demand": len(names())},
        feature_spec=spec_dict(),
        lineage=RunLineage.of(history, str(data), folds=1, horizon=28, quick=True),
        history=history,  # its last rows become the pyfunc's input example
    )
    assert logged.champion_moved and logged.versions["demand"] == "1"
    mlflow.set_tracking_uri(tracking)
    model = mlflow.pyfunc.load_model("models:/shelfcast-demand@champion")
    local = Path(mlflow.artifacts.download_artifacts("models:/shelfcast-demand/1"))
    assert not list(local.rglob("*.pkl"))  # logged from code: no pickle
    assert sorted(p.name for p in local.rglob("*.onnx")) == ["demand.onnx"]
    schema_cols = [c.name for c in model.metadata.get_input_schema().inputs]
    assert schema_cols[:4] == ["store_id", "sku", "date", "units"]
    from_pyfunc = model.predict(history, params={"horizon": 35})

    from_cli = pd.read_parquet(out_pq)
    assert list(from_cli.columns) == ["store_id", "sku", "date", "p50", "p90", "mean"]
    assert len(from_cli) == 4 * 35
    pd.testing.assert_frame_equal(from_pyfunc, from_cli, check_exact=True)
    csv = pd.read_csv(
        out_csv,
        dtype={"store_id": str, "sku": str},
        parse_dates=["date"],
        float_precision="round_trip",  # the CSV holds every digit; read them all back
    )
    pd.testing.assert_frame_equal(csv, from_cli, check_exact=True, check_dtype=False)
    # A forecast starts the day after the file's last date.
    assert from_cli["date"].min() == history["date"].max() + pd.Timedelta(days=1)
    assert (from_cli["p90"] >= from_cli["p50"]).all() and (from_cli["mean"] > 0).all()


def test_short_history_is_refused_naming_the_series(bundle, history, tmp_path, capsys):
    young = pd.DataFrame(
        {
            "store_id": "S9",
            "sku": "NEW",
            "date": pd.date_range(end=history["date"].max(), periods=10),
            "units": 1.0,
        }
    )
    data = tmp_path / "sales.csv"
    pd.concat([history, young]).to_csv(data, index=False)
    argv = [
        "forecast",
        "--bundle",
        str(bundle),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "o.csv"),
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "S9/NEW: 10 day(s)" in err and "fewer than 28 days" in err and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()
    with pytest.raises(HistoryTooShort) as info:
        Forecaster.from_bundle(bundle).forecast(pd.concat([history, young]), 7)
    assert info.value.series == ["S9/NEW"]
    # --skip-short leaves them out, named on stderr, and forecasts the rest.
    assert main([*argv, "--skip-short"]) == 0
    assert "skipped 1 series" in capsys.readouterr().err
    kept = pd.read_csv(tmp_path / "o.csv", dtype={"sku": str})
    assert sorted(kept["sku"].unique()) == ["SKU0", "SKU1", "SKU2", "SKU3"]


def test_direct_block_then_recursive_beyond_28_days(bundle, history):
    f = Forecaster.from_bundle(bundle)
    short, long = f.forecast(history, 28), f.forecast(history, 60)
    assert len(long) == 4 * 60
    first = long.groupby(["store_id", "sku"]).head(28).reset_index(drop=True)
    pd.testing.assert_frame_equal(first, short, check_exact=True)
    # Days 29..60 exist, are contiguous and follow the weekly pattern the model learnt.
    one = long[long["sku"] == "SKU3"].set_index("date")["mean"]
    assert (one.index.to_series().diff().dropna() == pd.Timedelta(days=1)).all()
    late = one.iloc[28:]
    assert late.groupby(late.index.dayofweek).mean().idxmax() in (4, 5, 6)


def test_blocks_of_series_give_the_table_of_one_call_and_show_progress(
    bundle, history, monkeypatch, capsys
):
    whole = Forecaster.from_bundle(bundle).forecast(history, 35)
    monkeypatch.setattr("training.forecast.SERIES_PER_BLOCK", 3)
    monkeypatch.setenv("SHELFCAST_PROGRESS", "1")
    blocks = Forecaster.from_bundle(bundle).forecast(history, 35)
    pd.testing.assert_frame_equal(blocks, whole, check_exact=True)
    err = capsys.readouterr().err
    assert "forecast: 100%" in err and "4/4 [" in err  # the bar advanced by series, to the end


def test_start_cuts_the_history_and_a_late_start_is_refused(bundle, history):
    f = Forecaster.from_bundle(bundle)
    start = history["date"].max() - pd.Timedelta(days=27)
    cut = history[history["date"] < start]
    pd.testing.assert_frame_equal(f.forecast(history, 28, start=start), f.forecast(cut, 28))
    with pytest.raises(ForecastError, match="can start at"):
        f.forecast(history, 7, start=history["date"].max() + pd.Timedelta(days=5))
    with pytest.raises(ForecastError, match="horizon must be at least 1"):
        f.forecast(history, 0)


def test_bad_output_extension_and_bad_bundle_are_clear(bundle, history, tmp_path, capsys):
    data = tmp_path / "sales.csv"
    history.to_csv(data, index=False)
    argv = ["forecast", "--bundle", str(bundle), "--data", str(data)]
    assert main([*argv, "--out", str(tmp_path / "o.xlsx")]) == 2  # a usage error, found first
    assert "unknown output format" in capsys.readouterr().err
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for p in bundle.iterdir():
        (tampered / p.name).write_bytes(p.read_bytes())
    (tampered / "demand.onnx").write_bytes(b"not onnx")
    argv = ["forecast", "--bundle", str(tampered), "--data", str(data)]
    assert main([*argv, "--out", str(tmp_path / "o.csv")]) == 1
    assert "cannot use bundle" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module", ["training.forecast", "training.forecast_command", "training.pyfunc"]
)
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_tail_keeps_every_feature_of_the_last_day():
    from feature_store.batch import forecast_rows
    from training.forecast import FEATURE_DAYS, tail

    rng = np.random.default_rng(1)
    days = FEATURE_DAYS + 200
    dates = pd.date_range("2022-01-01", periods=days, freq="D")
    frames = []
    for s, (begin, dead_from) in enumerate([(0, days), (0, 150), (300, days), (0, days)]):
        units = rng.poisson(2.0, days - begin).astype(float)
        units[max(dead_from - begin, 0) :] = 0.0  # series 1: no sale for the last 400+ days
        price = np.where(rng.random(days - begin) < 0.3, rng.uniform(1, 5, days - begin), np.nan)
        if s == 3:
            price[20:] = np.nan  # only an old price, long before the tail
        frames.append(
            pd.DataFrame(
                {
                    "store_id": "S",
                    "sku": f"K{s}",
                    "date": dates[begin:],
                    "units": units,
                    "price": price,
                    "event": (dates[begin:].dayofweek == 6).astype(float),
                }
            )
        )
    future = [str(dates[-1].date() + pd.Timedelta(days=3))]
    panel = panel_from_frame(pd.concat(frames), calendar_events=future)
    short = tail(panel)
    assert short.n_days == FEATURE_DAYS < panel.n_days
    full_x, _, _ = forecast_rows(panel, close_features(panel), panel.n_days - 1)
    tail_x, _, _ = forecast_rows(short, close_features(short), short.n_days - 1)
    np.testing.assert_array_equal(tail_x, full_x)
    assert full_x[:, names().index("target_event")].any()  # the future event survived


def test_a_weekly_history_is_forecast_in_weeks(bundle):
    """One row per week after the last week, never days padded between weeks."""
    weeks = pd.date_range("2023-01-06", periods=60, freq="7D")  # Fridays
    rng = np.random.default_rng(2)
    history = pd.DataFrame(
        {"store_id": "S", "sku": "A", "date": weeks, "units": rng.poisson(40.0, 60).astype(float)}
    )
    table = Forecaster.from_bundle(bundle).forecast(history, 4)
    assert table["date"].tolist() == list(pd.date_range("2024-03-01", periods=4, freq="7D"))
    assert (table["mean"] > 0).all()
