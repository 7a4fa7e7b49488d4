"""End to end: `shelfcast train` on a canonical file cut from real data, into a real MLflow
SQLite store; the bundle loads, its ONNX models run, and `champion` moves only on improvement."""

from __future__ import annotations

import json

import numpy as np
import pytest

from feature_store.spec import FEATURE_STORE_VERSION, names
from models.bundle import load_bundle
from models.onnx_export import run_onnx
from shelfcast.cli import main

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_train_writes_bundle_and_tracks_champion(real_data_dir, tmp_path, tracking, capsys):
    from mlflow import MlflowClient

    from training.datasets import m5_sample
    from training.tracking import ANOMALY_MODEL, CHAMPION, DEMAND_MODEL, log_training_run

    data = tmp_path / "sales.parquet"
    m5_sample().to_parquet(data)
    out = tmp_path / "bundle"
    key = tmp_path / "keys" / "signing.key"
    assert main(["keygen", "--out", str(key)]) == 0
    signed = ["--signing-key", str(key)]
    assert main(["train", "--data", str(data), "--out", str(out), "--quick", *signed]) == 0
    err = capsys.readouterr().err
    assert "backtest: 1 fold(s)" in err and "bundle written" in err  # progress was shown
    # A gateway trusting the key accepts it: signature and held-out reference rows check out.
    from edge_runtime.bundles import BundleTrust, verify

    assert verify(out, BundleTrust(public_key=str(key.with_suffix(".pub")))).model_version == "1"

    bundle = load_bundle(out, FEATURE_STORE_VERSION)
    meta = bundle.metadata
    assert meta["model_version"] == "1" and meta["mlflow_run_id"]
    assert meta["training_data"] == {"start": "2011-01-29", "end": "2016-04-24", "series": 10}
    assert meta["backtest"]["rmsse_model"] > 0
    assert [f["name"] for f in bundle.feature_spec["features"]] == names()
    X = np.random.default_rng(0).random((5, len(names())), dtype=np.float32) * 5
    X[:, names().index("horizon")] = 3
    out_demand = run_onnx(bundle.model_bytes("demand"), X)
    assert set(out_demand) == {"mean", "p50", "p90"}

    client = MlflowClient(tracking)
    assert str(client.get_model_version_by_alias(DEMAND_MODEL, CHAMPION).version) == "1"
    assert str(client.get_model_version_by_alias(ANOMALY_MODEL, CHAMPION).version) == "1"
    run = client.get_run(meta["mlflow_run_id"])
    assert "rmsse_model" in run.data.metrics and "onnx_max_abs_diff" in run.data.metrics
    assert run.data.params["n_estimators"] == "60"

    # The same training again is not better: version 2 is registered, champion stays at 1.
    assert main(["train", "--data", str(data), "--out", str(out), "--quick", *signed]) == 0
    assert load_bundle(out, FEATURE_STORE_VERSION).model_version == "2"
    assert str(client.get_model_version_by_alias(DEMAND_MODEL, CHAMPION).version) == "1"

    # A run with a lower backtest RMSSE takes the alias.
    champion_rmsse = run.data.metrics["rmsse_model"]
    spec = json.loads((out / "feature_spec.json").read_text())
    logged = log_training_run(
        params={"note": "better"},
        metrics={"rmsse_model": champion_rmsse * 0.5},
        onnx_models={"demand": bundle.model_bytes("demand")},
        n_features={"demand": len(names())},
        feature_spec=spec,
    )
    assert logged.champion_moved and logged.previous_champion == "1"
    assert (
        str(client.get_model_version_by_alias(DEMAND_MODEL, CHAMPION).version)
        == logged.versions["demand"]
        == "3"
    )


def test_train_reports_bad_input_clearly(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("store_id,sku,date,units\nS,A,2024-01-01,-3\n")
    assert main(["train", "--data", str(bad), "--out", str(tmp_path / "b"), "--no-mlflow"]) == 1
    err = capsys.readouterr().err
    assert "bad.csv: column units is negative" in err and "Traceback" not in err


def test_train_names_the_known_data_sets_for_an_unknown_name(tmp_path, capsys):
    assert (
        main(["train", "--data", "no_such_set", "--out", str(tmp_path / "b"), "--no-mlflow"]) == 1
    )
    assert "neither a file nor a data set name; data sets: favorita" in capsys.readouterr().err
